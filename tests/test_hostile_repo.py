"""A hostile or broken registry repository (issue 11, rows 1-4): nothing hangs, nothing is
read through a link, one bad file hides no other problem, and `add` copies regular files only.

Each run that could hang or eat memory runs `model-registry` in its own process with a time
and a memory limit (tests/hostile.py). Inputs are generated: a 200 MB config.yaml is a sparse
file, which costs no disk.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from registry import RegistryError, check, resolve
from registry.releases.publish import build_manifests
from registry.repo.gitrepo import GitRepo
from registry.repo.layout import CheckoutSource, TreeSource
from tests.hostile import modes, run_cli
from tests.registry_repos import (
    commit_all,
    git,
    make_registry,
    staged_names,
    version_files,
    write,
)

pytestmark = pytest.mark.usefixtures("isolated_git")

V12 = "YOLOX-l/base/1.2"


@pytest.fixture
def registry(tmp_path: Path) -> Path:
    return make_registry(tmp_path / "registry")


def findings_of(result: subprocess.CompletedProcess[str]) -> dict[str, str]:
    """`check --format json` output, by path: the rule."""
    return {f["path"]: f["rule"] for f in json.loads(result.stdout)}


# --- row 1: a 200 MB config.yaml -------------------------------------------------------------


def test_huge_config_is_a_finding_not_a_hang(registry: Path) -> None:
    config = registry / V12 / "config.yaml"
    with config.open("r+b") as f:
        f.truncate(200 << 20)  # sparse: 200 MB to stat, nothing on disk
    (registry / V12 / "log.txt").unlink()  # another problem, which must still be reported

    started = time.monotonic()
    result = run_cli("check", "--format", "json", registry, timeout=60)

    assert time.monotonic() - started < 30
    assert result.returncode == 1, result.stderr
    assert findings_of(result) == {
        f"{V12}/config.yaml": "config",
        f"{V12}/log.txt": "missing-file",
    }
    message = json.loads(result.stdout)[0]["message"]
    assert "209,715,200 bytes, over the limit of 1,048,576" in message
    assert "max_text_size" in message


def test_text_cap_is_a_setting_and_holds_for_revisions_and_show(registry: Path) -> None:
    write(registry, "model-registry.toml", "[check]\nmax_text_size = 2048\n")
    write(registry, f"{V12}/config.yaml", "a: " + "x" * 4000 + "\n")
    write(registry, "YOLOX-l/base/README.md", "# base\n" + "y" * 4000 + "\n")
    commit_all(registry, "big config")
    repo = GitRepo(registry)

    for source in (CheckoutSource(registry), TreeSource(repo, "HEAD")):
        found = check(source, repo=repo)
        assert [(f.path, f.rule) for f in found] == [(f"{V12}/config.yaml", "config")]
        assert "4,004 bytes, over the limit of 2,048" in found[0].message
    shown = run_cli("show", V12, "--root", registry)
    assert shown.returncode == 1
    assert "YOLOX-l/base/README.md is 4," in shown.stderr and "Traceback" not in shown.stderr


# --- row 2: nested 100,000 / 50,000 deep ----------------------------------------------------


def test_deeply_nested_files_are_findings_and_hide_nothing(registry: Path) -> None:
    write(registry, f"{V12}/config.yaml", "[" * 100_000)
    write(registry, "model-registry.toml", "[check]\nrequired = " + "[" * 50_000)
    (registry / "YOLOX-l/pretrained/2024-05-01/log.txt").unlink()

    result = run_cli("check", "--format", "json", registry, timeout=60)

    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr and "RecursionError" not in result.stderr
    assert findings_of(result) == {
        "model-registry.toml": "settings",
        f"{V12}/config.yaml": "config",
        "YOLOX-l/pretrained/2024-05-01/log.txt": "missing-file",
    }
    messages = " ".join(f["message"] for f in json.loads(result.stdout))
    assert "model-registry.toml is not valid TOML" in messages
    assert "config.yaml does not parse" in messages


def test_add_reports_a_deeply_nested_config_by_name(registry: Path, tmp_path: Path) -> None:
    run = version_files(tmp_path / "run")
    write(run, "config.yaml", "{a: " * 100_000)
    result = run_cli("add", "YOLOX-l/base/1.3", "--from", run, "--root", registry)
    assert result.returncode == 1
    assert f"'{run / 'config.yaml'}' does not parse" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (registry / "YOLOX-l/base/1.3").exists()


# --- row 3: committed symlinks, and other things that are not regular files ------------------


def commit_links(registry: Path) -> str:
    """Commit config.yaml -> /dev/zero and log.txt -> /etc/passwd (mode 120000) in 1.2."""
    for name, target in (("config.yaml", "/dev/zero"), ("log.txt", "/etc/passwd")):
        (registry / V12 / name).unlink()
        (registry / V12 / name).symlink_to(target)
    return commit_all(registry, "links")


def test_committed_symlinks_are_reported_in_a_checkout_and_a_revision(registry: Path) -> None:
    commit_links(registry)
    clone = registry.parent / "clone"
    git(registry.parent, "clone", "-q", str(registry), str(clone))
    assert (clone / V12 / "config.yaml").is_symlink()

    result = run_cli("check", "--format", "json", clone, timeout=60)
    assert result.returncode == 1, result.stderr
    assert findings_of(result) == {
        f"{V12}/config.yaml": "not-regular",
        f"{V12}/log.txt": "not-regular",
    }
    assert "a symlink to '/dev/zero'" in result.stdout
    assert "a symlink to '/etc/passwd'" in result.stdout

    repo = GitRepo(clone)
    at_rev = check(TreeSource(repo, "HEAD"), repo=repo)
    assert [(f.path, f.rule) for f in at_rev] == [
        (f"{V12}/config.yaml", "not-regular"),
        (f"{V12}/log.txt", "not-regular"),
    ]


def test_resolve_and_show_refuse_a_version_with_symlinks(registry: Path) -> None:
    commit_links(registry)

    resolved = run_cli("resolve", V12, "--json", "--root", registry)
    assert resolved.returncode == 1
    assert resolved.stdout == ""
    assert f"{V12}/config.yaml is a symlink to '/dev/zero'" in resolved.stderr
    assert f"{V12}/log.txt is a symlink to '/etc/passwd'" in resolved.stderr
    with pytest.raises(RegistryError, match="holds something other than regular files"):
        resolve(V12, root=registry, fetch=False)

    shown = run_cli("show", V12, "--root", registry)
    assert shown.returncode == 1 and "a symlink to '/etc/passwd'" in shown.stderr
    bare = registry.parent / "bare.git"
    git(registry.parent, "clone", "-q", "--bare", str(registry), str(bare))
    shown = run_cli("show", V12, "--root", bare)
    assert shown.returncode == 1 and "a symlink to '/dev/zero'" in shown.stderr


def test_publish_refuses_a_revision_with_symlinks(registry: Path) -> None:
    commit_links(registry)
    with pytest.raises(RegistryError, match="cannot publish versions holding") as caught:
        build_manifests(TreeSource(GitRepo(registry)))
    assert f"{V12}/config.yaml is a symlink to '/dev/zero'" in str(caught.value)


def test_symlinked_folders_and_fifos_are_reported_not_followed(registry: Path) -> None:
    private = registry.parent / "private"
    version_files(private)
    (registry / "YOLOX-l/base/1.3").symlink_to(private)  # a version that is a link
    (registry / V12 / "sub").symlink_to(private)  # a folder inside a version that is a link
    os.mkfifo(registry / "YOLOX-l/pretrained/2024-05-01/log.txt.fifo")
    (registry / "YOLOX-l/pretrained/2024-05-01/config.yaml").unlink()
    os.mkfifo(registry / "YOLOX-l/pretrained/2024-05-01/config.yaml")  # nobody ever writes

    result = run_cli("check", "--format", "json", registry, timeout=60)

    assert result.returncode == 1, result.stderr
    assert findings_of(result) == {
        "YOLOX-l/base/1.3": "not-regular",
        f"{V12}/sub": "not-regular",
        "YOLOX-l/pretrained/2024-05-01/config.yaml": "not-regular",
        "YOLOX-l/pretrained/2024-05-01/log.txt.fifo": "not-regular",
    }
    assert "a FIFO" in result.stdout
    refused = run_cli("resolve", "YOLOX-l/pretrained/2024-05-01", "--root", registry, timeout=60)
    assert refused.returncode == 1 and "is a FIFO" in refused.stderr


# --- row 4: add --from a folder with links, FIFOs, and interrupted adds ----------------------


def test_add_refuses_links_and_special_files_before_copying_anything(
    registry: Path, tmp_path: Path
) -> None:
    run = version_files(tmp_path / "run")
    private = tmp_path / "private"
    write(private, "id_rsa", "not for the registry\n")
    (run / "log.txt").unlink()
    (run / "log.txt").symlink_to("/etc/passwd")
    (run / "sub").symlink_to(private)
    (run / "zeros.bin").symlink_to("/dev/zero")
    os.mkfifo(run / "pipe")

    result = run_cli("add", "YOLOX-l/base/1.3", "--from", run, "--root", registry, timeout=60)

    assert result.returncode == 1, result.stderr
    for shown in (
        "log.txt (a symlink to '/etc/passwd')",
        f"sub (a symlink to '{private}')",
        "zeros.bin (a symlink to '/dev/zero')",
        "pipe (a FIFO)",
        "Nothing was copied",
    ):
        assert shown in result.stderr
    assert sorted(p.name for p in (registry / "YOLOX-l/base").iterdir()) == ["1.2", "README.md"]
    assert staged_names(registry) == []


# Runs `add` with a copy that stops after its first file (a seam of our own), so the test can
# signal it mid-copy without writing gigabytes.
_SLOW_ADD = """
import sys, time
import registry.repo.add
real = registry.repo.add._copy_file
def slow(src, dest):
    real(src, dest)
    print("copying", flush=True)
    time.sleep(60)
registry.repo.add._copy_file = slow
sys.argv = ["model-registry", *sys.argv[1:]]
registry.cli.main()
"""


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_an_interrupted_add_leaves_no_staging_folder(
    registry: Path, tmp_path: Path, signum: int
) -> None:
    run = version_files(tmp_path / "run")
    proc = subprocess.Popen(
        [sys.executable, "-c", "import registry.cli\n" + _SLOW_ADD, "add", "YOLOX-l/base/1.3",
         "--from", str(run), "--root", str(registry)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == "copying\n"
        assert list((registry / "YOLOX-l/base").glob(".1.3.adding-*"))
        proc.send_signal(signum)
        proc.wait(timeout=30)
    finally:
        proc.kill()
        proc.communicate()
    assert proc.returncode != 0
    assert sorted(p.name for p in (registry / "YOLOX-l/base").iterdir()) == ["1.2", "README.md"]


def test_check_reports_a_killed_adds_leftovers_and_add_removes_them(
    registry: Path, tmp_path: Path
) -> None:
    leftover = registry / "YOLOX-l/base/.1.3.adding-k1ll3d"
    version_files(leftover)  # what SIGKILL leaves

    found = check(CheckoutSource(registry), repo=GitRepo(registry))
    assert [(f.path, f.rule) for f in found] == [("YOLOX-l/base/.1.3.adding-k1ll3d", "leftover")]
    assert "rm -rf YOLOX-l/base/.1.3.adding-k1ll3d" in found[0].message

    result = run_cli("add", "YOLOX-l/base/1.3", "--from", version_files(tmp_path / "run"),
                     "--root", registry)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert not leftover.exists()
    assert check(CheckoutSource(registry), repo=GitRepo(registry)) == []


# --- issue 13, finding 2: `add` writes what `cp` would --------------------------------------


@pytest.mark.parametrize(
    ("umask", "folder", "file"), [(0o022, 0o755, 0o644), (0o077, 0o700, 0o600)]
)
def test_add_honours_the_umask(
    registry: Path, tmp_path: Path, umask: int, folder: int, file: int
) -> None:
    run = version_files(tmp_path / "run")
    write(run, "extras/labels.txt", "person\n")
    for path in run.rglob("*"):
        os.chmod(path, 0o755 if path.is_dir() else 0o644)

    result = run_cli("add", "YOLOX-l/base/1.3", "--from", run, "--root", registry, umask=umask)

    assert result.returncode == 0, result.stderr
    version = registry / "YOLOX-l/base/1.3"
    assert version.stat().st_mode & 0o777 == folder
    assert modes(version) == {
        "checkpoint.pth": file,
        "config.yaml": file,
        "extras": folder,
        "extras/labels.txt": file,
        "log.txt": file,
    }
