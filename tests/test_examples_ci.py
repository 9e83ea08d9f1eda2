"""The CI example (examples/ci): its workflow's command runs on a real registry repository with
a target branch, and its report is what the pull request gets."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.registry_repos import (
    MODEL,
    commit_all,
    git,
    make_registry,
    version_files,
    write,
)

pytestmark = [
    pytest.mark.skipif(shutil.which("git-lfs") is None, reason="git-lfs not installed"),
    pytest.mark.usefixtures("isolated_git"),
]

CI = Path(__file__).resolve().parent.parent / "examples" / "ci"
SETTINGS = """\
[gate."YOLOX-l/base"]
min = { mAP = 0.35 }
max_regression = { mAP = 0.005 }
"""


def add(root: Path, version: str, mean_ap: float) -> None:
    folder = version_files(root / MODEL / "base" / version, version)
    write(folder, "meta.yaml", f"schema: 1\nmetrics: {{mAP: {mean_ap}}}\n")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = make_registry(tmp_path / "registry", commit=False)
    write(root, "model-registry.toml", SETTINGS)
    add(root, "1.3", 0.40)
    commit_all(root, "released")
    git(root, "branch", "-M", "main")
    return root


def report(repo: Path) -> tuple[int, str]:
    """What the workflow's step runs, with the target branch `main`."""
    workflow = yaml.safe_load((CI / "registry-ci.yml").read_text())
    steps = workflow["jobs"]["release-gate"]["steps"]
    command = next(s["run"] for s in steps if "release_report.py" in s.get("run", ""))
    assert command == (
        'python .github/release_report.py "origin/${{ github.base_ref }}" registry-report.md'
    )
    (repo / ".github").mkdir(exist_ok=True)
    shutil.copy(CI / "release_report.py", repo / ".github" / "release_report.py")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.run(
        [sys.executable, ".github/release_report.py", "main", "registry-report.md"],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    return proc.returncode, (repo / "registry-report.md").read_text()


def test_a_change_whose_new_version_passes(repo: Path) -> None:
    git(repo, "checkout", "-q", "-b", "new-model")
    add(repo, "1.4", 0.402)
    commit_all(repo, "1.4")
    code, text = report(repo)
    assert code == 0, text
    assert "YOLOX-l/base/1.4: gate passes" in text
    assert f"### {MODEL}/base/1.3 → {MODEL}/base/1.4" in text
    assert "| mAP | 0.4 | 0.402 | +0.002 | +0.50% |" in text


def test_a_regression_fails_the_check_and_says_why(repo: Path) -> None:
    git(repo, "checkout", "-q", "-b", "worse-model")
    add(repo, "1.4", 0.39)
    commit_all(repo, "1.4")
    code, text = report(repo)
    assert code == 1
    assert "YOLOX-l/base/1.4: gate **FAILS**" in text
    assert "mAP 0.39 is down 0.01 from 0.4 (YOLOX-l/base/1.3)" in text


def test_a_changed_released_version_fails_the_check(repo: Path) -> None:
    git(repo, "checkout", "-q", "-b", "rewrite")
    write(repo, f"{MODEL}/base/1.3/meta.yaml", "schema: 1\nmetrics: {mAP: 0.5}\n")
    commit_all(repo, "rewrite history")
    code, text = report(repo)
    assert code == 1
    assert "**check failed:**" in text
    assert "meta.yaml was modified in released version YOLOX-l/base/1.3" in text
    assert "No new versions." in text
