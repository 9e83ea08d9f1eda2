"""`compare`, `gate` and `history` on real git repositories: tables, formats and exit codes."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

import registry
from registry.errors import NoGate
from registry.records.gate import GateResult
from tests.registry_repos import (
    MODEL,
    commit_all,
    git,
    invoke,
    make_registry,
    version_files,
    write,
)

pytestmark = [
    pytest.mark.skipif(shutil.which("git-lfs") is None, reason="git-lfs not installed"),
    pytest.mark.usefixtures("isolated_git"),
]

SETTINGS = """\
[metrics.patterns]
mAP = 'bbox_mAP: ([0-9.]+)'

[gate."YOLOX-l/base"]
min = { mAP = 0.35 }
max = { latency_ms = 40 }
max_regression = { mAP = 0.005, latency_ms = 2.0 }
lower_is_better = ["latency_ms"]
"""
# version -> (mAP in the log, latency in meta.yaml, lr in config.yaml)
RUNS = {
    "1.3": (0.400, 30.0, "0.01"),
    "1.4": (0.402, 31.5, "0.01"),  # passes against 1.3
    "1.5": (0.396, 31.0, "0.02"),  # regresses mAP by 0.006 against 1.4
    "1.6": (0.340, 30.0, "0.01"),  # below the absolute minimum, and regresses
    "1.7": (0.396, 42.0, "0.01"),  # above the max latency; latency up 11 (lower is better)
}


@pytest.fixture
def reg(tmp_path: Path) -> Path:
    root = make_registry(tmp_path / "registry")
    write(root, "model-registry.toml", SETTINGS)
    for version, (mean_ap, latency, lr) in RUNS.items():
        folder = version_files(root / MODEL / "base" / version, version)
        write(folder, "config.yaml", f"model: yolox\nlr: {lr}\ntrain: {{epochs: 300}}\n")
        write(folder, "log.txt", f"bbox_mAP: 0.1\nbbox_mAP: {mean_ap}\n")
        write(folder, "checkpoint.pth", b"w" * (1000 + int(version[-1])))
        write(folder, "meta.yaml", f"schema: 1\nmetrics: {{latency_ms: {latency}}}\n"
              f"dataset: {{name: cars, schema_version: '1.{version[-1]}.0'}}\n")  # fmt: skip
    commit_all(root, "versions 1.3 to 1.7")
    return root


# --- compare --------------------------------------------------------------------------------


def test_compare_lists_every_metric_and_what_else_differs(reg: Path) -> None:
    result = registry.compare(f"{MODEL}/base/1.4", f"{MODEL}/base/1.5", reg)
    assert [(m.name, m.a, m.b) for m in result.metrics] == [
        ("latency_ms", 31.5, 31.0),
        ("mAP", 0.402, 0.396),
    ]
    assert result.metrics[1].delta == pytest.approx(-0.006)
    assert result.metrics[1].relative == pytest.approx(-0.006 / 0.402)
    changes = {(c.what, c.key): (c.a, c.b) for c in result.changes}
    assert changes[("config", "lr")] == ("0.01", "0.02")
    assert ("config", "train.epochs") not in changes  # equal keys are not listed
    assert changes[("dataset", "dataset.schema_version")] == ("1.4.0", "1.5.0")
    assert changes[("file", "checkpoint.pth")] == ("1,004 bytes", "1,005 bytes")


@pytest.mark.parametrize("fmt", ["table", "json", "markdown"])
def test_compare_formats_take_selectors(reg: Path, fmt: str) -> None:
    result = invoke("compare", "base/1.4", "base/1", "--root", reg / MODEL, "--format", fmt)
    assert result.exit_code == 0, result.output
    if fmt == "json":
        data = json.loads(result.stdout)
        assert (data["a"], data["b"]) == (f"{MODEL}/base/1.4", f"{MODEL}/base/1.7")
        assert {m["name"]: m["delta"] for m in data["metrics"]} == pytest.approx(
            {"latency_ms": 10.5, "mAP": -0.006}
        )
    elif fmt == "markdown":
        assert result.stdout.startswith(f"### {MODEL}/base/1.4 → {MODEL}/base/1.7\n")
        assert "| latency_ms | 31.5 | 42 | +10.5 | +33.33% |" in result.stdout
    else:
        assert "latency_ms  31.5" in result.stdout and "+33.33%" in result.stdout


def test_compare_of_a_selector_that_matches_nothing(reg: Path) -> None:
    result = invoke("compare", f"{MODEL}/base/1.4", f"{MODEL}/base/3", "--root", reg)
    assert result.exit_code == 1
    assert "no version of YOLOX-l/base matches 'YOLOX-l/base/3'" in result.stderr
    assert invoke("compare", f"{MODEL}/base/x", f"{MODEL}/base/1", "--root", reg).exit_code == 2


# --- gate -----------------------------------------------------------------------------------


def gate_cli(reg: Path, *args: str) -> tuple[int, str]:
    result = invoke("gate", *args, "--root", reg)
    return result.exit_code, result.stdout + result.stderr


def test_gate_passes_against_the_previous_version(reg: Path) -> None:
    result = registry.gate(f"{MODEL}/base/1.4", reg)
    assert isinstance(result, GateResult)
    assert result.passed and str(result.against) == f"{MODEL}/base/1.3"
    assert [(c.metric, c.kind) for c in result.checks] == [
        ("mAP", "min"),
        ("latency_ms", "max"),
        ("latency_ms", "regression"),  # 30 -> 31.5 is up 1.5, within 2
        ("mAP", "regression"),
    ]
    code, out = gate_cli(reg, f"{MODEL}/base/1.4")
    assert code == 0
    assert out.startswith(f'{MODEL}/base/1.4 passes the gate [gate."{MODEL}/base"] against')


def test_gate_fails_on_a_regression_saying_by_how_much(reg: Path) -> None:
    code, out = gate_cli(reg, f"{MODEL}/base/1.5")
    assert code == 1
    assert "FAILS (1 of 4)" in out
    assert (
        "FAIL: mAP 0.396 is down 0.006 from 0.402 (YOLOX-l/base/1.4), more than the 0.005 "
        "allowed" in out
    )


def test_gate_fails_on_the_absolute_minimum(reg: Path) -> None:
    result = registry.gate(f"{MODEL}/base/1.6", reg)
    assert [(c.metric, c.kind) for c in result.failures] == [("mAP", "min"), ("mAP", "regression")]
    assert result.failures[0].detail == "mAP 0.34 is 0.01 below the minimum 0.35"


def test_lower_is_better_fails_when_it_goes_up(reg: Path) -> None:
    result = registry.gate(f"{MODEL}/base/1.7", reg)
    assert [(c.metric, c.kind) for c in result.failures] == [
        ("latency_ms", "max"),
        ("latency_ms", "regression"),
    ]
    assert result.failures[0].detail == "latency_ms 42 is 2 above the maximum 40"
    assert "latency_ms 42 is up 12 from 30 (YOLOX-l/base/1.6)" in result.failures[1].detail
    # Against 1.3, mAP 0.396 is down 0.004: within 0.005; latency is still up 12.
    explicit = registry.gate(f"{MODEL}/base/1.7", reg, against=f"{MODEL}/base/1.3")
    assert str(explicit.against) == f"{MODEL}/base/1.3"
    assert [(c.metric, c.kind) for c in explicit.failures] == [
        ("latency_ms", "max"),
        ("latency_ms", "regression"),
    ]
    code, out = gate_cli(reg, f"{MODEL}/base/1.5", "--against", f"{MODEL}/base/1.3")
    assert code == 0, out  # 0.396 vs 0.400: down 0.004


def test_a_version_without_metrics_fails_naming_them(reg: Path) -> None:
    code, out = gate_cli(reg, f"{MODEL}/base/1.2")
    assert code == 1
    assert "missing metrics: latency_ms, mAP (record them in meta.yaml)" in out
    assert "note: mAP: no previous version to compare with; regression not checked" in out


def test_the_previous_version_skips_yanked_ones(reg: Path) -> None:
    assert invoke("yank", f"{MODEL}/base/1.4", "--reason", "bad", "--root", reg).exit_code == 0
    assert str(registry.gate(f"{MODEL}/base/1.5", reg).against) == f"{MODEL}/base/1.3"


def test_gate_usage_errors_exit_2(reg: Path) -> None:
    code, out = gate_cli(reg, f"{MODEL}/projectA/1.2.3")
    assert code == 2
    assert 'no thresholds for YOLOX-l/projectA: add [gate."YOLOX-l/projectA"]' in out
    with pytest.raises(NoGate):
        registry.gate(f"{MODEL}/projectA/1.2.3", reg)
    assert gate_cli(reg, f"{MODEL}/base/one")[0] == 2


def test_gate_on_a_bare_repository_by_revision(reg: Path, tmp_path: Path) -> None:
    bare = tmp_path / "bare.git"
    git(tmp_path, "clone", "-q", "--bare", str(reg), str(bare))
    assert gate_cli(bare, f"{MODEL}/base/1.4")[0] == 0
    assert gate_cli(bare, f"{MODEL}/base/1.5", "--rev", "HEAD")[0] == 1


# --- history --------------------------------------------------------------------------------


def test_history_lists_versions_in_order_with_metrics(reg: Path) -> None:
    invoke("yank", f"{MODEL}/base/1.6", "--reason", "mAP collapsed", "--root", reg)
    result = invoke("history", f"{MODEL}/base", "--root", reg, "--metric", "mAP")
    assert result.exit_code == 0
    assert result.stdout.splitlines() == [
        "version  mAP    yanked",
        "1.2      -",
        "1.3      0.4",
        "1.4      0.402",
        "1.5      0.396",
        "1.6      0.34   mAP collapsed",
        "1.7      0.396",
    ]


def test_history_plot_writes_a_png(reg: Path, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    out = tmp_path / "plots" / "base.png"
    result = invoke("history", f"{MODEL}/base", "--root", reg, "--plot", out)
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert out.stat().st_size > 10_000


def test_history_plot_without_matplotlib_names_the_extra(
    reg: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # an import of it raises ImportError
    result = invoke("history", f"{MODEL}/base", "--root", reg, "--plot", tmp_path / "x.png")
    assert result.exit_code == 1
    assert "pip install 'lfs-s3-registry[plot]'" in result.stderr
    assert not (tmp_path / "x.png").exists()
