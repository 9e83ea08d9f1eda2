"""Version records (meta.yaml): validation, metrics from log patterns, provenance on `add`,
the `meta` and `yank` rules of `check`, and `show`. Real git repositories in tmp_path."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest

from registry.errors import RecordError
from registry.records.provenance import gather, gpu_info
from registry.records.record import Record, metrics_from_log, parse_record, record_of
from registry.refs import parse_ref
from registry.repo.layout import CheckoutSource
from registry.repo.settings import MetricsSettings, parse_settings
from tests.registry_repos import (
    MODEL,
    commit_all,
    git,
    invoke,
    make_registry,
    run_check,
    version_files,
    write,
)

pytestmark = [
    pytest.mark.skipif(shutil.which("git-lfs") is None, reason="git-lfs not installed"),
    pytest.mark.usefixtures("isolated_git"),
]

GOOD = """\
schema: 1
metrics: {mAP: 0.412, latency_ms: 31}
source: {repo: git@example.com:team/train.git, commit: 3f2a9c1, dirty: false}
hardware: {gpu: NVIDIA A100, count: 8, nodes: 1}
dataset: {name: coco-cars, schema_version: 2.1.0}
trained_from: YOLOX-l/pretrained/2024-05-01
notes: lr warm-up doubled
"""


@pytest.fixture
def registry(tmp_path: Path) -> Path:
    return make_registry(tmp_path / "registry")


# --- the record -----------------------------------------------------------------------------


def test_a_full_record_parses_and_prints_round_trip() -> None:
    record = parse_record(GOOD)
    assert record.metrics == {"mAP": 0.412, "latency_ms": 31.0}
    assert record.source is not None and record.source.commit == "3f2a9c1"
    assert record.hardware is not None and record.hardware.count == 8
    assert record.dataset is not None and record.dataset.schema_version == "2.1.0"
    assert record.lookup("metrics.mAP") == 0.412
    assert record.lookup("hardware.gpu") == "NVIDIA A100"
    assert record.lookup("source.nope") is None
    assert parse_record(record.to_yaml()) == record
    assert record.to_yaml().startswith("schema: 1\n")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("metrics: {mAP: 0.4}\n", "schema: missing; add 'schema: 1'"),
        ("schema: 2\n", "schema: is 2, must be 1"),
        ("schema: 1\nmetrics: {mAP: high}\n", "metric mAP is 'high', not a number"),
        ("schema: 1\nmetrics: {mAP: .nan}\n", "metric mAP is nan, not a finite number"),
        ("schema: 1\nmetrics: {mAP: .inf}\n", "metric mAP is inf, not a finite number"),
        ("schema: 1\nmetrics: {best: true}\n", "metric best is True, not a number"),
        ("schema: 1\nsource: {repo: r}\n", "source.commit: missing"),
        ("schema: 1\nhardware: {gpu: A100, count: 0}\n", "hardware.count:"),
        (
            "schema: 1\ndataset: {name: d, schema_version: '1.02.3'}\n",
            "invalid version '1.02.3' in dataset schema version: leading zeros are not allowed "
            "(write '1.2.3')",
        ),
        (
            "schema: 1\ndataset: {name: d, schema_version: '1.2'}\n",
            "invalid version '1.2' in dataset schema version: expected X.Y.Z",
        ),
        (
            "schema: 1\ndataset: {name: d, schema_version: 1.2}\n",
            "1.2 is not X.Y.Z: write it as a quoted string",
        ),
        (
            "schema: 1\ndataset: {name: d, schema_version: 'v1.2.3'}\n",
            "invalid version 'v1.2.3' in dataset schema version: drop the 'v'",
        ),
        ("schema: 1\ntrained_from: base/1.2\n", "trained_from: invalid reference 'base/1.2'"),
        ("schema: 1\nmetric: {mAP: 0.4}\n", "metric: unknown key (value {'mAP': 0.4})"),
        ("- a\n- b\n", "must be a mapping"),
        ("schema: [1\n", "is not YAML"),
    ],
)
def test_every_bad_field_gets_a_message_quoting_the_value(text: str, expected: str) -> None:
    with pytest.raises(RecordError) as raised:
        parse_record(text, "YOLOX-l/base/1.2/meta.yaml")
    assert expected in str(raised.value)
    assert "YOLOX-l/base/1.2/meta.yaml" in str(raised.value)


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(RecordError) as raised:
        parse_record("metrics: {mAP: x}\nhardware: {gpu: a}\nfoo: 1\n")
    assert len(raised.value.problems) == 4  # schema, mAP, hardware.count, foo


# --- metrics from log.txt -------------------------------------------------------------------


def test_log_patterns_last_match_wins() -> None:
    settings = MetricsSettings(patterns={"mAP": r"bbox_mAP: ([0-9.]+)", "loss": r"loss=([0-9.]+)"})
    log = "epoch 1 bbox_mAP: 0.301\nepoch 2 bbox_mAP: 0.352 loss=0.9\nepoch 3 bbox_mAP: 0.355\n"
    assert metrics_from_log(log, settings) == {"mAP": 0.355, "loss": 0.9}
    assert metrics_from_log("nothing here", settings) == {}


def test_a_bad_pattern_is_refused_naming_it() -> None:
    with pytest.raises(Exception, match="pattern '\\(' of mAP is not a regex"):
        parse_settings("[metrics.patterns]\nmAP = '('\n")
    with pytest.raises(Exception, match="must have exactly one group"):
        parse_settings("[metrics.patterns]\nmAP = 'mAP [0-9]+'\n")


def test_meta_yaml_wins_over_the_log(registry: Path) -> None:
    write(registry, "model-registry.toml", "[metrics.patterns]\nmAP = 'mAP: ([0-9.]+)'\n"
          "loss = 'loss ([0-9.]+)'\n")  # fmt: skip
    write(registry, f"{MODEL}/base/1.2/log.txt", "mAP: 0.30\nloss 0.7\nmAP: 0.31\n")
    settings = parse_settings((registry / "model-registry.toml").read_text()).metrics
    ref = parse_ref(f"{MODEL}/base/1.2")
    source = CheckoutSource(registry)
    assert record_of(source, ref, settings) == Record(metrics={"mAP": 0.31, "loss": 0.7})
    write(registry, f"{MODEL}/base/1.2/meta.yaml", "schema: 1\nmetrics: {mAP: 0.4}\n")
    assert record_of(source, ref, settings) == Record(metrics={"mAP": 0.4, "loss": 0.7})
    other = parse_ref(f"{MODEL}/projectA/1.2.3")  # its log says "epoch 1 loss 0.5"
    assert record_of(source, other, settings) == Record(metrics={"loss": 0.5})
    # A version with neither a meta.yaml nor a matching pattern has no record.
    assert record_of(source, other, MetricsSettings()) is None


# --- add: keeps meta.yaml, fills provenance -------------------------------------------------


def training_repo(path: Path, *, dirty: bool) -> str:
    git(path.parent, "init", "-q", str(path))
    write(path, "train.py", "print('train')\n")
    git(path, "add", "train.py")
    git(path, "commit", "-q", "-m", "train")
    git(path, "remote", "add", "origin", "git@example.com:team/train.git")
    if dirty:
        write(path, "train.py", "print('changed')\n")
    return git(path, "rev-parse", "HEAD")


def test_add_keeps_meta_yaml_and_records_the_training_code_commit(
    registry: Path, tmp_path: Path
) -> None:
    commit = training_repo(tmp_path / "train", dirty=True)
    run = version_files(tmp_path / "run")
    write(run, "meta.yaml", "schema: 1\nmetrics: {mAP: 0.42}\n")

    result = invoke("add", f"{MODEL}/base/1.3", "--from", run, "--root", registry,
                    "--source", tmp_path / "train", "--no-detect-gpu")  # fmt: skip

    assert result.exit_code == 0, result.output
    record = parse_record((registry / MODEL / "base/1.3/meta.yaml").read_text())
    assert record.metrics == {"mAP": 0.42}
    assert record.source is not None
    assert record.source.model_dump() == {
        "repo": "git@example.com:team/train.git",
        "commit": commit,
        "dirty": True,
    }
    assert record.hardware is None
    assert "YOLOX-l/base/1.3/meta.yaml" in git(registry, "diff", "--cached", "--name-only")
    # The folder given to add is untouched.
    assert (run / "meta.yaml").read_text() == "schema: 1\nmetrics: {mAP: 0.42}\n"


def test_add_refuses_an_invalid_meta_yaml_and_writes_nothing(
    registry: Path, tmp_path: Path
) -> None:
    run = version_files(tmp_path / "run")
    write(run, "meta.yaml", "schema: 1\nmetrics: {mAP: '0.4x'}\n")
    result = invoke("add", f"{MODEL}/base/1.3", "--from", run, "--root", registry)
    assert result.exit_code == 1
    assert "metric mAP is '0.4x', not a number" in result.stderr
    assert not (registry / MODEL / "base/1.3").exists()


def test_add_source_that_is_not_a_git_repository(registry: Path, tmp_path: Path) -> None:
    run = version_files(tmp_path / "run")
    (tmp_path / "plain").mkdir()
    result = invoke("add", f"{MODEL}/base/1.3", "--from", run, "--root", registry,
                    "--source", tmp_path / "plain")  # fmt: skip
    assert result.exit_code == 1
    assert "is not a git repository with a commit" in result.stderr
    assert not (registry / MODEL / "base/1.3").exists()


class Smi:
    """A host's `nvidia-smi` at our `run` seam: the GPUs it lists."""

    def __init__(self, names: Sequence[str], returncode: int = 0) -> None:
        self.names = names
        self.returncode = returncode
        self.calls: list[list[str]] = []

    def __call__(self, args: Sequence[str], cwd: Path | None) -> subprocess.CompletedProcess[str]:
        self.calls.append(list(args))
        out = "".join(f"{n}\n" for n in self.names)
        return subprocess.CompletedProcess(list(args), self.returncode, out, "")


def test_gpus_come_from_nvidia_smi_when_present(tmp_path: Path) -> None:
    smi = Smi(["NVIDIA A100-SXM4-80GB"] * 4)
    hardware = gpu_info(smi, which=lambda name: "/usr/bin/nvidia-smi")
    assert hardware is not None
    assert (hardware.gpu, hardware.count) == ("NVIDIA A100-SXM4-80GB", 4)
    assert smi.calls == [["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"]]
    # Absent, failing or silent: left out.
    assert gpu_info(smi, which=lambda name: None) is None
    assert gpu_info(Smi(["x"], returncode=9), which=lambda name: "/bin/x") is None
    assert gpu_info(Smi([]), which=lambda name: "/bin/x") is None


def test_gather_fills_only_what_meta_yaml_does_not_record(tmp_path: Path) -> None:
    run = version_files(tmp_path / "run")
    smi = Smi(["RTX 4090"])
    assert gather(run, code=None, detect_gpu=True, run=smi, which=lambda n: "/x") == Record(
        hardware={"gpu": "RTX 4090", "count": 1}
    )
    write(run, "meta.yaml", "schema: 1\nhardware: {gpu: H100, count: 2}\n")
    # Nothing to add: the folder's meta.yaml is copied as it is.
    assert gather(run, code=None, detect_gpu=True, run=smi, which=lambda n: "/x") is None
    assert gather(run, code=None, detect_gpu=False) is None


# --- check and show -------------------------------------------------------------------------


def test_check_reports_each_bad_field_and_what_the_rules_require(registry: Path) -> None:
    required = '["metrics.mAP", "source.commit", "dataset.schema_version"]'
    write(registry, "model-registry.toml", f"[check]\nmeta = {required}\n")
    bad = "schema: 1\nmetrics: {mAP: .nan}\ndataset: {name: d, schema_version: '2.0'}\n"
    write(registry, f"{MODEL}/base/1.2/meta.yaml", bad)
    write(registry, f"{MODEL}/pretrained/2024-05-01/meta.yaml", GOOD)
    findings = [f for f in run_check(registry) if f.rule == "meta"]
    fields = "metrics.mAP, source.commit, dataset.schema_version"
    assert [(f.path, f.message.split(":")[0]) for f in findings] == [
        (f"{MODEL}/base/1.2/meta.yaml", "metrics"),
        (f"{MODEL}/base/1.2/meta.yaml", "dataset.schema_version"),
        (
            f"{MODEL}/projectA/1.2.3/meta.yaml",
            f"{MODEL}/projectA/1.2.3 does not record {fields}; model-registry.toml requires "
            f"{fields} of every version (write them in meta.yaml, or let 'model-registry add "
            "--source' fill the provenance)",
        ),
    ]
    assert "nan" in findings[0].message and "'2.0'" in findings[1].message
    result = invoke("check", registry)
    assert result.exit_code == 1
    assert "[meta]" in result.stdout


def test_show_prints_the_record(registry: Path) -> None:
    write(registry, f"{MODEL}/base/1.2/meta.yaml", GOOD)
    result = invoke("show", f"{MODEL}/base/1.2", "--root", registry)
    assert result.exit_code == 0
    assert "record (meta.yaml, log metrics):" in result.stdout
    assert "    mAP: 0.412" in result.stdout
    assert "    schema_version: 2.1.0" in result.stdout
    write(registry, f"{MODEL}/base/1.2/meta.yaml", "schema: 1\nmetrics: {mAP: x}\n")
    result = invoke("show", f"{MODEL}/base/1.2", "--root", registry)
    assert result.exit_code == 0
    assert "invalid: invalid YOLOX-l/base/1.2/meta.yaml: metrics: metric mAP is 'x'" in (
        result.stdout
    )
    commit_all(registry, "records")
