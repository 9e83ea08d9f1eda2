"""sources.load against real git repositories in tmp_path, isolated from the user's config."""

from __future__ import annotations

from pathlib import Path

import pytest

from lfs_agent import sources
from lfs_agent.errors import ConfigError
from lfs_agent.gitenv import ConfigEntry, _parse_list, guess_toplevel, read_git_config
from tests.gitrepos import URL, git


def test_bucket_and_prefix_from_committed_lfsconfig(repo: Path) -> None:
    loaded = sources.load({}, cwd=repo)
    assert loaded.config.bucket == "committed-bucket"
    assert loaded.config.prefix == "reg"
    assert loaded.values["bucket"].source == ".lfsconfig lfs.url"
    assert loaded.repo.toplevel == repo
    assert loaded.repo.git_dir == repo / ".git"
    assert loaded.repo.common_dir == repo / ".git"
    assert loaded.lfs_dir == repo / ".git" / "lfs"


def test_git_config_overrides_lfsconfig(repo: Path) -> None:
    git(repo, "config", "lfs-s3.bucket", "local-bucket")
    loaded = sources.load({}, cwd=repo)
    assert loaded.config.bucket == "local-bucket"
    assert loaded.values["bucket"].source == "git config (local) lfs-s3.bucket"
    assert loaded.config.prefix == "reg"  # still from .lfsconfig's lfs.url


def test_local_config_overrides_global(repo: Path) -> None:
    git(repo, "config", "--global", "lfs-s3.region", "us-east-1")
    assert sources.load({}, cwd=repo).values["region"].source == "git config (global) lfs-s3.region"
    git(repo, "config", "lfs-s3.region", "eu-west-3")
    loaded = sources.load({}, cwd=repo)
    assert loaded.config.region == "eu-west-3"
    assert loaded.values["region"].source == "git config (local) lfs-s3.region"


def test_environment_overrides_git_config_and_lfsconfig(repo: Path) -> None:
    git(repo, "config", "lfs-s3.bucket", "local-bucket")
    loaded = sources.load({"LFS_S3_BUCKET": "env-bucket", "LFS_S3_PREFIX": "p"}, cwd=repo)
    assert (loaded.config.bucket, loaded.config.prefix) == ("env-bucket", "p")
    assert loaded.values["bucket"].source == "environment LFS_S3_BUCKET"


def test_committed_settings_file(repo: Path) -> None:
    (repo / ".lfs-s3config").write_text(
        "[lfs-s3]\n\tendpoint = https://s3.example.com/\n\taddressing-style = path\n"
    )
    loaded = sources.load({}, cwd=repo)
    assert loaded.config.endpoint == "https://s3.example.com"
    assert loaded.config.addressing_style == "path"
    assert loaded.values["endpoint"].source == ".lfs-s3config lfs-s3.endpoint"
    git(repo, "config", "lfs-s3.endpoint", "http://127.0.0.1:9000")
    assert sources.load({}, cwd=repo).config.endpoint == "http://127.0.0.1:9000"


def test_committed_settings_file_may_not_name_the_bucket(repo: Path) -> None:
    (repo / ".lfs-s3config").write_text("[lfs-s3]\n\tbucket = elsewhere\n")
    with pytest.raises(ConfigError, match="'lfs-s3.bucket' may not be committed"):
        sources.load({}, cwd=repo)


def test_unparsable_committed_settings_file(repo: Path) -> None:
    (repo / ".lfs-s3config").write_text("[lfs-s3\nendpoint = x\n")
    with pytest.raises(ConfigError, match="cannot parse .*\\.lfs-s3config"):
        sources.load({}, cwd=repo)


def test_unknown_key_in_git_config(repo: Path) -> None:
    git(repo, "config", "--global", "lfs-s3.secret-access-key", "xyz")
    with pytest.raises(
        ConfigError, match="unknown setting 'lfs-s3.secret-access-key' in git config \\(global\\)"
    ):
        sources.load({}, cwd=repo)


def test_lfsconfig_from_the_index_when_the_work_tree_has_none(repo: Path) -> None:
    """As during a clone's checkout, before .lfsconfig is written."""
    (repo / ".lfsconfig").write_text(f"[lfs]\n\turl = {URL}/staged-bucket/reg\n")
    git(repo, "add", ".lfsconfig")
    (repo / ".lfsconfig").unlink()
    assert sources.load({}, cwd=repo).config.bucket == "staged-bucket"


def test_lfsconfig_from_head_when_neither_work_tree_nor_index_has_it(repo: Path) -> None:
    """git-lfs's order (git-lfs-config(5)): work tree, then index, then HEAD."""
    git(repo, "rm", "-q", ".lfsconfig")
    assert sources.load({}, cwd=repo).config.bucket == "committed-bucket"


def test_bare_repository_reads_lfsconfig_from_head(repo: Path, root: Path) -> None:
    (repo / ".lfs-s3config").write_text("[lfs-s3]\n\tregion = eu-north-1\n")
    git(repo, "add", ".lfs-s3config")
    git(repo, "commit", "-q", "-m", "settings")
    bare = root / "bare.git"
    git(root, "clone", "-q", "--bare", str(repo), str(bare))
    loaded = sources.load({}, cwd=bare)
    assert loaded.repo.toplevel is None
    assert loaded.repo.common_dir == bare
    assert loaded.lfs_dir == bare / "lfs"
    assert (loaded.config.bucket, loaded.config.prefix) == ("committed-bucket", "reg")
    assert loaded.config.region == "eu-north-1"


def test_bare_repository_without_lfsconfig_has_no_bucket(root: Path, home: Path) -> None:
    bare = root / "empty.git"
    git(root, "init", "-q", "--bare", str(bare))
    with pytest.raises(ConfigError, match="no S3 bucket"):
        sources.load({}, cwd=bare)


def test_load_from_a_subdirectory(repo: Path) -> None:
    sub = repo / "YOLOX-l" / "base"
    sub.mkdir(parents=True)
    loaded = sources.load({}, cwd=sub)
    assert loaded.config.bucket == "committed-bucket"
    assert loaded.repo.toplevel == repo
    assert loaded.lfs_dir == repo / ".git" / "lfs"


def test_load_from_a_linked_worktree(repo: Path, root: Path) -> None:
    worktree = root / "wt"
    git(repo, "worktree", "add", "-q", "-b", "feature", str(worktree))
    git(worktree, "config", "lfs-s3.region", "eu-west-2")  # shared config of the repository
    loaded = sources.load({}, cwd=worktree / ".")
    assert loaded.repo.toplevel == worktree
    assert loaded.repo.git_dir == repo / ".git" / "worktrees" / "wt"
    assert loaded.repo.common_dir == repo / ".git"
    assert loaded.lfs_dir == repo / ".git" / "lfs"
    assert loaded.config.bucket == "committed-bucket"
    assert loaded.config.region == "eu-west-2"


def test_lfs_storage_relative_to_the_common_dir(repo: Path) -> None:
    git(repo, "config", "lfs.storage", "lfs-objects")
    assert sources.load({}, cwd=repo).lfs_dir == repo / ".git" / "lfs-objects"


def test_lfs_storage_absolute(repo: Path, root: Path) -> None:
    storage = root / "shared-lfs"
    git(repo, "config", "--global", "lfs.storage", "ignored")
    git(repo, "config", "lfs.storage", str(storage))
    assert sources.load({}, cwd=repo).lfs_dir == storage


def test_upload_uses_lfs_pushurl_before_lfs_url(repo: Path) -> None:
    git(repo, "config", "lfs.url", f"{URL}/pull-bucket/pull")
    git(repo, "config", "lfs.pushurl", f"{URL}/push-bucket/push")
    upload = sources.load({}, operation="upload", cwd=repo)
    assert (upload.config.bucket, upload.config.prefix) == ("push-bucket", "push")
    assert upload.values["bucket"].source == "git config (local) lfs.url"
    download = sources.load({}, operation="download", cwd=repo)
    assert (download.config.bucket, download.config.prefix) == ("pull-bucket", "pull")


def test_lfs_url_in_git_config_beats_lfsconfig(repo: Path) -> None:
    git(repo, "config", "lfs.url", f"{URL}/mine/x")
    assert sources.load({}, cwd=repo).config.bucket == "mine"


def test_pushurl_in_lfsconfig_beats_lfs_url_in_git_config_for_upload(repo: Path) -> None:
    """git-lfs looks keys up in order, each in git config then .lfsconfig."""
    (repo / ".lfsconfig").write_text(
        f"[lfs]\n\turl = {URL}/committed-bucket/reg\n\tpushurl = {URL}/push-bucket/p\n"
    )
    git(repo, "config", "lfs.url", f"{URL}/mine/x")
    assert sources.load({}, operation="upload", cwd=repo).config.bucket == "push-bucket"
    assert sources.load({}, operation="download", cwd=repo).config.bucket == "mine"


def test_remote_lfsurl_when_lfs_url_is_unset(repo: Path) -> None:
    git(repo, "rm", "-q", ".lfsconfig")
    git(repo, "commit", "-q", "-m", "no .lfsconfig")
    git(repo, "config", "remote.origin.lfsurl", f"{URL}/origin-bucket/o")
    git(repo, "config", "remote.upstream.lfsurl", f"{URL}/upstream-bucket/u")
    git(repo, "config", "remote.upstream.lfspushurl", f"{URL}/upstream-push/u")
    assert sources.load({}, cwd=repo).config.bucket == "origin-bucket"
    assert sources.load({}, remote="upstream", cwd=repo).config.bucket == "upstream-bucket"
    upload = sources.load({}, operation="upload", remote="upstream", cwd=repo)
    assert upload.config.bucket == "upstream-push"
    # A remote given as a URL names no remote.<name>.* keys.
    with pytest.raises(ConfigError, match="no S3 bucket"):
        sources.load({}, remote="https://git.example.com/registry.git", cwd=repo)


def test_no_remote_in_init_means_origin(repo: Path) -> None:
    git(repo, "rm", "-q", ".lfsconfig")
    git(repo, "commit", "-q", "-m", "no .lfsconfig")
    git(repo, "config", "remote.origin.lfsurl", f"{URL}/origin-bucket/o")
    assert sources.load({}, remote="", cwd=repo).config.bucket == "origin-bucket"


def test_remote_lfspushurl_in_lfsconfig_is_ignored_as_git_lfs_does(repo: Path) -> None:
    (repo / ".lfsconfig").write_text(
        '[remote "origin"]\n'
        f"\tlfsurl = {URL}/origin-bucket/o\n"
        f"\tlfspushurl = {URL}/committed-push-bucket/p\n"
    )
    assert sources.load({}, operation="upload", cwd=repo).config.bucket == "origin-bucket"


def test_lfs_url_beats_remote_lfsurl(repo: Path) -> None:
    git(repo, "config", "remote.origin.lfsurl", f"{URL}/origin-bucket/o")
    assert sources.load({}, cwd=repo).config.bucket == "committed-bucket"


def test_a_non_placeholder_lfs_url_in_git_config_names_no_bucket(repo: Path) -> None:
    git(repo, "config", "lfs.url", "https://lfs.example.com/registry")
    with pytest.raises(ConfigError, match="no S3 bucket"):
        sources.load({}, cwd=repo)


def test_an_unparsable_lfs_url_is_a_config_error(repo: Path) -> None:
    git(repo, "config", "lfs.url", "https://[lfs-s3.invalid/models")
    with pytest.raises(ConfigError):
        sources.load({}, cwd=repo)


def test_not_a_repository(root: Path, home: Path) -> None:
    elsewhere = root / "not-a-repo"
    elsewhere.mkdir()
    with pytest.raises(ConfigError, match="is not inside a git repository") as info:
        sources.load({"LFS_S3_BUCKET": "models"}, cwd=elsewhere)
    assert str(elsewhere) in str(info.value)


# --- gitenv._parse_list -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("out", "scoped", "entries"),
    [
        ("", False, []),
        ("", True, []),
        ("a.b\nc\0", False, [ConfigEntry("", "a.b", "c")]),
        ("a.flag\0", False, [ConfigEntry("", "a.flag", "true")]),
        ("a.empty\n\0", False, [ConfigEntry("", "a.empty", "")]),
        ("a.multi\nline1\nline2\n\0", False, [ConfigEntry("", "a.multi", "line1\nline2\n")]),
        (
            "global\0lfs-s3.bucket\nb1\0local\0lfs-s3.flag\0local\0x.y\nv=1\n2\0",
            True,
            [
                ConfigEntry("global", "lfs-s3.bucket", "b1"),
                ConfigEntry("local", "lfs-s3.flag", "true"),
                ConfigEntry("local", "x.y", "v=1\n2"),
            ],
        ),
        ("command\0a.b\n\0", True, [ConfigEntry("command", "a.b", "")]),
    ],
)
def test_parse_list(out: str, scoped: bool, entries: list[ConfigEntry]) -> None:
    assert _parse_list(out, scoped=scoped) == entries


def test_read_git_config_round_trips_tricky_values(repo: Path) -> None:
    git(repo, "config", "test.multi", "line1\nline2")
    git(repo, "config", "test.spaces", "  padded = value  ")
    with (repo / ".git" / "config").open("a") as f:
        f.write("[test]\n\tflag\n\tempty =\n")
    entries = {e.key: e for e in read_git_config(repo)}
    local = "file:.git/config"
    assert entries["test.multi"] == ConfigEntry("local", "test.multi", "line1\nline2", local)
    assert entries["test.spaces"].value == "  padded = value  "
    assert entries["test.flag"] == ConfigEntry("local", "test.flag", "true", local)
    assert entries["test.empty"] == ConfigEntry("local", "test.empty", "", local)
    assert entries["user.name"].scope == "global"
    assert entries["user.name"].origin.startswith("file:") and entries["user.name"].origin.endswith(
        ".gitconfig"
    )


def test_a_bare_repository_inside_a_work_tree_reads_its_own_lfsconfig(
    repo: Path, root: Path
) -> None:
    # The committed files are read early, where the work tree is guessed to be (here the outer
    # repository's); git says otherwise, and the bare repository's own HEAD:.lfsconfig counts.
    other = root / "other"
    other.mkdir()
    git(other, "init", "-q")
    (other / ".lfsconfig").write_text(f"[lfs]\n\turl = {URL}/inner-bucket/inner\n")
    git(other, "add", ".")
    git(other, "commit", "-q", "-m", "init")
    inner = repo / "inner.git"
    git(root, "clone", "-q", "--bare", str(other), str(inner))
    loaded = sources.load({}, cwd=inner)
    assert (loaded.config.bucket, loaded.config.prefix) == ("inner-bucket", "inner")
    assert loaded.repo.toplevel is None
    assert guess_toplevel({}, inner) == repo


def test_the_work_tree_guess(repo: Path) -> None:
    (repo / "a" / "b").mkdir(parents=True)
    assert guess_toplevel({}, repo / "a" / "b") == repo
    assert guess_toplevel({"GIT_DIR": str(repo / ".git")}, repo / "a") is None
    assert guess_toplevel({"GIT_WORK_TREE": str(repo)}, repo) is None
