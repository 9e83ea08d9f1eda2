"""`registry.check`: every rule fires with its path and a message that says what to do, and
stays quiet on a clean registry. Real git repositories in tmp_path, git's configuration isolated.

The shared helpers (an isolated git HOME with git-lfs's filters, a small registry) are in
tests/registry_repos.py.
"""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from registry import Finding, RegistryError, check
from registry.repo.gitrepo import GitRepo
from registry.repo.layout import TreeSource
from tests.registry_repos import (
    LFS_ATTRIBUTES,
    MODEL,
    VERSIONS,
    commit_all,
    git,
    invoke,
    make_registry,
    run_check,
    staged_pointer,
    version_files,
    write,
)

pytestmark = [
    pytest.mark.skipif(shutil.which("git-lfs") is None, reason="git-lfs not installed"),
    pytest.mark.usefixtures("isolated_git"),
]

# --- this module's helpers ------------------------------------------------------------------


@pytest.fixture
def registry(tmp_path: Path) -> Path:
    return make_registry(tmp_path / "registry")


def by_rule(findings: list[Finding], rule: str) -> list[Finding]:
    return [f for f in findings if f.rule == rule]


def paths(findings: list[Finding]) -> list[str]:
    return [f.path for f in findings]


# --- a clean registry -----------------------------------------------------------------------


def test_clean_registry_has_no_findings(registry: Path) -> None:
    assert run_check(registry) == []
    assert run_check(registry, against="HEAD") == []


def test_clean_registry_at_a_revision_has_no_findings(registry: Path) -> None:
    repo = GitRepo(registry)
    assert check(TreeSource(repo, "HEAD"), repo=repo) == []


def test_finding_prints_path_rule_and_message() -> None:
    finding = Finding("YOLOX-l/base/1.2/log.txt", "missing-file", "add it")
    assert str(finding) == "YOLOX-l/base/1.2/log.txt: [missing-file] add it"
    assert finding.as_dict() == {
        "path": "YOLOX-l/base/1.2/log.txt",
        "rule": "missing-file",
        "message": "add it",
    }


# --- name -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("folder", "reported", "hint"),
    [
        ("yolox/base/1.0", "yolox", "{algorithm}-{option}"),
        ("YOLOX-l/Base/1.0", "YOLOX-l/Base", "write 'base'"),
        ("YOLOX-l/latest/1.0", "YOLOX-l/latest", "'base', 'pretrained' or a project name"),
        ("YOLOX-l/base/v1.3", "YOLOX-l/base/v1.3", "drop the 'v' (write '1.3')"),
        ("YOLOX-l/base/1.2.0", "YOLOX-l/base/1.2.0", "Base versions are X.Y"),
        ("YOLOX-l/projectA/1.2", "YOLOX-l/projectA/1.2", "projectA/1.2.0"),
        ("YOLOX-l/pretrained/2024-5-1", "YOLOX-l/pretrained/2024-5-1", "YYYY-MM-DD"),
    ],
)
def test_name_rule_at_each_level(registry: Path, folder: str, reported: str, hint: str) -> None:
    version_files(registry / folder)
    names = by_rule(run_check(registry), "name")
    assert paths(names) == [reported]
    assert hint in names[0].message


def test_name_rule_is_silenced_for_ignored_top_level_folders(registry: Path) -> None:
    write(registry, "docs/guide.md", "how to register a model\n")
    write(registry, "tools/export/run.py", "print('export')\n")
    assert paths(run_check(registry)) == ["docs", "tools"]

    write(registry, "model-registry.toml", '[check]\nignore = ["docs", "tools"]\n')
    assert run_check(registry) == []


def test_ignore_only_silences_the_folders_it_names(registry: Path) -> None:
    write(registry, "docs/guide.md", "guide\n")
    version_files(registry / "YOLOX-l/base/v2.0")
    write(registry, "model-registry.toml", '[check]\nignore = ["docs"]\n')
    assert paths(run_check(registry)) == ["YOLOX-l/base/v2.0"]


# --- missing-file, empty, config, readme, base-missing ------------------------------------------


def test_missing_file_names_the_file_and_the_required_set(registry: Path) -> None:
    (registry / "YOLOX-l/base/1.2/log.txt").unlink()
    (registry / "YOLOX-l/projectA/1.2.3/config.yaml").unlink()
    findings = run_check(registry)
    assert [(f.path, f.rule) for f in findings] == [
        ("YOLOX-l/base/1.2/log.txt", "missing-file"),
        ("YOLOX-l/projectA/1.2.3/config.yaml", "missing-file"),
    ]
    assert "YOLOX-l/base/1.2 has no log.txt" in findings[0].message
    assert "config.yaml, checkpoint.pth, log.txt" in findings[0].message


def test_missing_file_follows_required_in_model_registry_toml(registry: Path) -> None:
    write(
        registry, "model-registry.toml", '[check]\nrequired = ["config.yaml", "checkpoint.onnx"]\n'
    )
    (registry / "YOLOX-l/base/1.2/log.txt").unlink()  # no longer required
    findings = run_check(registry)
    assert [(f.path, f.rule) for f in findings] == [
        ("YOLOX-l/pretrained/2024-05-01/checkpoint.onnx", "missing-file"),
        ("YOLOX-l/projectA/1.2.3/checkpoint.onnx", "missing-file"),
    ]
    assert findings[0].message.endswith("every version needs config.yaml, checkpoint.onnx")


def test_empty_version_folder(registry: Path) -> None:
    (registry / "YOLOX-l/base/1.3").mkdir()
    findings = run_check(registry)
    assert [(f.path, f.rule) for f in findings] == [("YOLOX-l/base/1.3", "empty")]
    assert "add them or remove the folder" in findings[0].message


def test_config_that_does_not_parse_reports_the_yaml_error(registry: Path) -> None:
    bad = "model: yolox\nlr: [0.01, 0.02\n"
    write(registry, "YOLOX-l/base/1.2/config.yaml", bad)
    with pytest.raises(yaml.YAMLError) as error:
        yaml.load(bad, Loader=yaml.CSafeLoader)  # as check parses it: libyaml
    findings = run_check(registry)
    assert [(f.path, f.rule) for f in findings] == [("YOLOX-l/base/1.2/config.yaml", "config")]
    assert findings[0].message.startswith("config.yaml does not parse: ")
    assert str(error.value).replace("\n", " ") in findings[0].message
    assert "\n" not in findings[0].message


def test_readme_missing_for_a_scope(registry: Path) -> None:
    (registry / "YOLOX-l/projectA/README.md").unlink()
    findings = run_check(registry)
    assert [(f.path, f.rule) for f in findings] == [("YOLOX-l/projectA/README.md", "readme")]
    assert "YOLOX-l/projectA has no README.md" in findings[0].message


def test_base_missing_for_a_project_version(registry: Path) -> None:
    version_files(registry / "YOLOX-l/projectA/2.0.0")
    findings = run_check(registry)
    assert [(f.path, f.rule) for f in findings] == [("YOLOX-l/projectA/2.0.0", "base-missing")]
    assert "base 2.0" in findings[0].message
    assert "YOLOX-l/base/2.0 does not exist" in findings[0].message
    assert "register that base version first" in findings[0].message

    version_files(registry / "YOLOX-l/base/2.0")
    assert run_check(registry) == []


# --- not-lfs --------------------------------------------------------------------------------


def test_checkpoint_committed_as_a_raw_blob(tmp_path: Path) -> None:
    # .gitattributes tracks only *.onnx: the .pth files went into git itself.
    root = make_registry(tmp_path / "registry", attributes="*.onnx filter=lfs -text\n")
    findings = run_check(root)
    assert [(f.path, f.rule) for f in findings] == [
        (f"{MODEL}/{v}/checkpoint.pth", "not-lfs") for v in VERSIONS
    ]
    message = findings[0].message
    assert "checkpoint.pth" in message and "not in Git LFS" in message
    assert 'git lfs track "*.pth"' in message
    assert "git rm --cached YOLOX-l/base/1.2/checkpoint.pth" in message


def advice(message: str) -> list[list[str]]:
    """The git commands a finding's message tells to run, quoted in it as 'git ...'."""
    return [shlex.split(command) for command in re.findall(r"'(git [^']+)'", message)]


def test_following_the_not_lfs_advice_fixes_a_raw_blob(tmp_path: Path) -> None:
    root = make_registry(tmp_path / "registry", attributes="*.onnx filter=lfs -text\n")
    finding = run_check(root)[0]
    commands = advice(finding.message)
    assert commands == [
        ["git", "lfs", "track", "*.pth"],
        ["git", "rm", "--cached", finding.path],
        ["git", "add", finding.path],
    ]
    for command in commands:
        subprocess.run(command, cwd=root, capture_output=True, check=True)
    assert staged_pointer(root, finding.path)
    assert finding.path not in paths(run_check(root))


def test_following_the_not_lfs_advice_for_an_untracked_file(registry: Path) -> None:
    version_files(registry / "YOLOX-l/base/1.3")
    write(registry, "YOLOX-l/base/1.3/weights.safetensors", b"\0\1\2")
    finding = by_rule(run_check(registry), "not-lfs")[0]
    for command in advice(finding.message):
        proc = subprocess.run(command, cwd=registry, capture_output=True, text=True)
        assert proc.returncode == 0, f"{command}: {proc.stderr}"
    assert run_check(registry) == []


def test_not_lfs_suggests_a_pattern_that_fits_the_file(registry: Path) -> None:
    write(registry, "model-registry.toml", '[check]\nlfs = ["*_weights"]\n')
    write(registry, "YOLOX-l/base/1.2/model_weights", b"\0\1")
    finding = by_rule(run_check(registry), "not-lfs")[0]
    track = [c[3] for c in advice(finding.message) if c[:3] == ["git", "lfs", "track"]]
    assert len(track) == 1
    assert fnmatch.fnmatch("model_weights", track[0])
    assert not fnmatch.fnmatch("config.yaml", track[0])


def test_tracking_added_after_the_commit_does_not_hide_a_raw_blob(tmp_path: Path) -> None:
    root = make_registry(tmp_path / "registry", attributes="*.onnx filter=lfs -text\n")
    write(root, ".gitattributes", LFS_ATTRIBUTES)  # too late: the index still has raw blobs
    assert paths(by_rule(run_check(root), "not-lfs")) == [
        f"{MODEL}/{v}/checkpoint.pth" for v in VERSIONS
    ]


def test_checkpoints_tracked_by_lfs_are_fine(registry: Path) -> None:
    assert staged_pointer(registry, "YOLOX-l/base/1.2/checkpoint.pth")
    assert staged_pointer(registry, "YOLOX-l/base/1.2/checkpoint.onnx")
    assert by_rule(run_check(registry), "not-lfs") == []


def test_untracked_checkpoint_covered_by_gitattributes_is_fine(registry: Path) -> None:
    version_files(registry / "YOLOX-l/base/1.3")  # not staged: .gitattributes decides
    assert run_check(registry) == []


def test_untracked_checkpoint_not_covered_by_gitattributes(registry: Path) -> None:
    version_files(registry / "YOLOX-l/base/1.3")
    write(registry, "YOLOX-l/base/1.3/weights.safetensors", b"\0\1\2")
    findings = run_check(registry)
    assert [(f.path, f.rule) for f in findings] == [
        ("YOLOX-l/base/1.3/weights.safetensors", "not-lfs")
    ]
    assert 'git lfs track "*.safetensors"' in findings[0].message


def test_lfs_patterns_come_from_model_registry_toml(registry: Path) -> None:
    write(registry, "model-registry.toml", '[check]\nlfs = ["*.txt"]\n')
    findings = run_check(registry)
    assert [(f.path, f.rule) for f in findings] == [
        (f"{MODEL}/{v}/log.txt", "not-lfs") for v in VERSIONS
    ]


def test_raw_checkpoint_at_a_revision(tmp_path: Path) -> None:
    root = make_registry(tmp_path / "registry", attributes="")
    repo = GitRepo(root)
    findings = check(TreeSource(repo, "HEAD"), repo=repo)
    assert [(f.path, f.rule) for f in findings] == [
        ("YOLOX-l/base/1.2/checkpoint.onnx", "not-lfs"),
        *((f"{MODEL}/{v}/checkpoint.pth", "not-lfs") for v in VERSIONS),
    ]


# --- changed --------------------------------------------------------------------------------


def test_unchanged_released_versions_are_fine(registry: Path) -> None:
    released = git(registry, "rev-parse", "HEAD")
    version_files(registry / "YOLOX-l/base/1.3")
    version_files(registry / "YOLOX-l/projectA/1.2.4")
    version_files(registry / "YOLOX-l/pretrained/2024-06-01")
    git(registry, "add", "-A")
    assert run_check(registry, against=released) == []
    commit_all(registry, "new versions")
    assert run_check(registry, against=released) == []


def test_modified_file_of_a_released_version(registry: Path) -> None:
    released = git(registry, "rev-parse", "HEAD")
    write(registry, "YOLOX-l/base/1.2/config.yaml", "model: yolox\nlr: 0.02\n")
    unstaged = run_check(registry, against=released)  # caught before it is staged, too
    assert [(f.path, f.rule) for f in unstaged] == [("YOLOX-l/base/1.2/config.yaml", "changed")]
    assert "config.yaml was modified (not staged) in released version" in unstaged[0].message
    git(registry, "add", "-A")
    findings = run_check(registry, against=released)
    assert [(f.path, f.rule) for f in findings] == [("YOLOX-l/base/1.2/config.yaml", "changed")]
    message = findings[0].message
    assert "config.yaml was modified in released version YOLOX-l/base/1.2" in message
    assert f"as of {released}" in message
    assert f"git checkout {released} -- YOLOX-l/base/1.2" in message


def test_modified_checkpoint_of_a_released_version(registry: Path) -> None:
    write(registry, "YOLOX-l/projectA/1.2.3/checkpoint.pth", "retrained weights\n")
    git(registry, "add", "-A")
    findings = run_check(registry, against="HEAD")
    assert [(f.path, f.rule) for f in findings] == [
        ("YOLOX-l/projectA/1.2.3/checkpoint.pth", "changed")
    ]
    assert "checkpoint.pth was modified in released version YOLOX-l/projectA/1.2.3" in (
        findings[0].message
    )


def test_added_and_removed_files_of_a_released_version(registry: Path) -> None:
    write(registry, "YOLOX-l/base/1.2/notes.md", "late notes\n")
    git(registry, "rm", "-q", "YOLOX-l/base/1.2/log.txt")
    git(registry, "add", "-A")
    findings = run_check(registry, against="HEAD")
    assert [(f.path, f.rule) for f in findings] == [
        ("YOLOX-l/base/1.2/log.txt", "changed"),
        ("YOLOX-l/base/1.2/log.txt", "missing-file"),
        ("YOLOX-l/base/1.2/notes.md", "changed"),
    ]
    assert "log.txt was removed in released version YOLOX-l/base/1.2" in findings[0].message
    assert "notes.md was added in released version YOLOX-l/base/1.2" in findings[2].message


def test_removed_released_version(registry: Path) -> None:
    git(registry, "rm", "-r", "-q", "YOLOX-l/pretrained/2024-05-01")
    findings = run_check(registry, against="HEAD")
    assert [(f.path, f.rule) for f in findings] == [("YOLOX-l/pretrained/2024-05-01", "changed")]
    message = findings[0].message
    assert "released version YOLOX-l/pretrained/2024-05-01 (in HEAD) was removed" in message
    assert "git checkout HEAD -- YOLOX-l/pretrained/2024-05-01" in message


def test_change_committed_after_the_release_is_still_reported(registry: Path) -> None:
    released = git(registry, "rev-parse", "HEAD")
    write(registry, "YOLOX-l/base/1.2/log.txt", "rewritten history\n")
    commit_all(registry, "oops")
    assert paths(run_check(registry, against=released)) == ["YOLOX-l/base/1.2/log.txt"]
    assert run_check(registry, against="HEAD") == []
    assert run_check(registry) == []  # without --against, editing is not checked


def test_unstaged_edits_of_released_versions_are_caught(registry: Path) -> None:
    released = git(registry, "rev-parse", "HEAD")
    write(registry, "YOLOX-l/projectA/1.2.3/checkpoint.pth", "retrained, not staged\n")
    (registry / "YOLOX-l/base/1.2/log.txt").unlink()
    write(registry, "YOLOX-l/base/1.2/notes.md", "late notes\n")
    version_files(registry / "YOLOX-l/base/1.3")  # a new version is no change to a released one
    findings = [f for f in run_check(registry, against=released) if f.rule == "changed"]
    assert [(f.path, f.message.split(" (not staged)")[0]) for f in findings] == [
        ("YOLOX-l/base/1.2/log.txt", "log.txt was removed"),
        ("YOLOX-l/base/1.2/notes.md", "notes.md was added"),
        ("YOLOX-l/projectA/1.2.3/checkpoint.pth", "checkpoint.pth was modified"),
    ]
    result = invoke("check", registry, "--against", released)
    assert result.exit_code == 1
    assert "checkpoint.pth was modified (not staged) in released version" in result.stdout
    # Touched but not changed (a checkpoint rewritten with the same bytes) is no change.
    git(registry, "checkout", "--", ".")
    (registry / "YOLOX-l/base/1.2/notes.md").unlink()
    data = (registry / "YOLOX-l/base/1.2/checkpoint.pth").read_bytes()
    (registry / "YOLOX-l/base/1.2/checkpoint.pth").write_bytes(data)
    assert [f for f in run_check(registry, against=released) if f.rule == "changed"] == []


def test_against_an_unknown_revision(registry: Path) -> None:
    with pytest.raises(RegistryError, match="unknown revision 'no-such-branch'"):
        run_check(registry, against="no-such-branch")


# --- every problem, sorted; settings ----------------------------------------------------------


def test_every_problem_is_reported_sorted_by_path(registry: Path) -> None:
    (registry / "YOLOX-l/projectA/README.md").unlink()
    (registry / "YOLOX-l/base/1.2/log.txt").unlink()
    write(registry, "YOLOX-l/pretrained/2024-05-01/config.yaml", "a: [\n")
    (registry / "YOLOX-l/base/1.3").mkdir()
    version_files(registry / "YOLOX-l/projectA/3.1.0")
    version_files(registry / "Bad_Model/base/1.0")
    write(registry, "YOLOX-l/projectA/3.1.0/extra.bin", b"\0" * 10)
    git(registry, "rm", "-q", "--cached", "YOLOX-l/base/1.2/checkpoint.onnx")
    findings = run_check(registry, against="HEAD")
    assert [(f.path, f.rule) for f in findings] == [
        ("Bad_Model", "name"),
        ("YOLOX-l/base/1.2/checkpoint.onnx", "changed"),
        ("YOLOX-l/base/1.2/log.txt", "changed"),  # removed, not staged
        ("YOLOX-l/base/1.2/log.txt", "missing-file"),
        ("YOLOX-l/base/1.3", "empty"),
        ("YOLOX-l/pretrained/2024-05-01/config.yaml", "changed"),  # edited, not staged
        ("YOLOX-l/pretrained/2024-05-01/config.yaml", "config"),
        ("YOLOX-l/projectA/3.1.0", "base-missing"),
        ("YOLOX-l/projectA/3.1.0/extra.bin", "not-lfs"),
        ("YOLOX-l/projectA/README.md", "readme"),
    ]
    assert findings == sorted(findings, key=lambda f: (f.path, f.rule))
    assert all(f.message for f in findings)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[check\n", "model-registry.toml is not valid TOML"),
        ('[check]\nrequire = ["config.yaml"]\n', "invalid model-registry.toml: check.require"),
        ('[check]\nrequired = "config.yaml"\n', "invalid model-registry.toml: check.required"),
        ("ignore = []\n", "invalid model-registry.toml: ignore"),
        ("a = " + "[" * 50_000, "model-registry.toml is not valid TOML: nested too deeply"),
    ],
)
def test_invalid_settings_are_a_finding_and_the_rest_is_still_checked(
    registry: Path, text: str, expected: str
) -> None:
    write(registry, "model-registry.toml", text)
    (registry / "YOLOX-l/base/1.2/log.txt").unlink()
    findings = run_check(registry)
    assert [(f.path, f.rule) for f in findings] == [
        ("YOLOX-l/base/1.2/log.txt", "missing-file"),  # checked with the default rules
        ("model-registry.toml", "settings"),
    ]
    assert expected in findings[1].message
    assert "checked with the defaults" in findings[1].message


def test_invalid_settings_through_the_cli(registry: Path) -> None:
    write(registry, "model-registry.toml", "[check]\nrequired = 3\n")
    result = invoke("check", registry)
    assert result.exit_code == 1
    assert "model-registry.toml: [settings] invalid model-registry.toml: check.required" in (
        result.stdout
    )
    assert "Traceback" not in result.output


# --- a bare repository is checked at HEAD -----------------------------------------------------


@pytest.fixture
def bare_clone(registry: Path, tmp_path: Path) -> Iterator[Path]:
    bare = tmp_path / "registry.git"
    git(tmp_path, "clone", "-q", "--bare", str(registry), str(bare))
    yield bare


def test_bare_clone_of_a_clean_registry(bare_clone: Path) -> None:
    result = invoke("check", bare_clone)
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert "0 problems" in result.stderr


def test_bare_clone_reports_what_head_holds(registry: Path, tmp_path: Path) -> None:
    git(registry, "rm", "-q", "YOLOX-l/projectA/README.md")
    write(registry, "YOLOX-l/base/1.2/config.yaml", "a: [\n")
    write(registry, "YOLOX-l/base/1.3/config.yaml", "lr: 0.1\n")
    commit_all(registry, "broken")
    write(registry, "YOLOX-l/pretrained/2024-05-01/config.yaml", "a: [\n")  # not committed
    bare = tmp_path / "broken.git"
    git(tmp_path, "clone", "-q", "--bare", str(registry), str(bare))
    result = invoke("check", bare, "--format", "json")
    assert result.exit_code == 1
    assert [(f["path"], f["rule"]) for f in json.loads(result.stdout)] == [
        ("YOLOX-l/base/1.2/config.yaml", "config"),
        ("YOLOX-l/base/1.3/checkpoint.pth", "missing-file"),
        ("YOLOX-l/base/1.3/log.txt", "missing-file"),
        ("YOLOX-l/projectA/README.md", "readme"),
    ]


def test_bare_clone_reports_raw_checkpoints(tmp_path: Path) -> None:
    root = make_registry(tmp_path / "registry", attributes="*.pth filter=lfs -text\n")
    bare = tmp_path / "registry.git"
    git(tmp_path, "clone", "-q", "--bare", str(root), str(bare))
    result = invoke("check", bare)
    assert result.exit_code == 1
    assert result.stdout.splitlines()[0].startswith(
        "YOLOX-l/base/1.2/checkpoint.onnx: [not-lfs] checkpoint.onnx ("
    )
    assert len(result.stdout.splitlines()) == 1


def test_bare_clone_checked_against_an_earlier_revision(registry: Path, tmp_path: Path) -> None:
    version_files(registry / "YOLOX-l/base/1.3")
    commit_all(registry, "base 1.3")
    bare = tmp_path / "registry.git"
    git(tmp_path, "clone", "-q", "--bare", str(registry), str(bare))
    result = invoke("check", bare, "--against", "HEAD~1")
    assert result.stdout == ""
    assert result.exit_code == 0
