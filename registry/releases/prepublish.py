"""What `publish` says before it publishes: versions left out, and commits no remote has.

Publishing reads versions as committed (at `--rev`, HEAD by default), so a version that was
added but not committed is silently left out; and each manifest names the commit it was
published from, which is useless to the team when that commit was never pushed.
"""

from __future__ import annotations

from pathlib import Path

from registry.refs import ModelRef
from registry.repo import layout
from registry.repo.gitrepo import GitRepo


def uncommitted_versions(root: Path, repo: GitRepo, rev: str) -> list[ModelRef]:
    """Versions in the work tree at `root` that `rev` does not hold, when `rev` is what is
    checked out (publishing an older revision leaves newer versions out on purpose)."""
    head = repo.head()
    if repo.bare or head is None or repo.rev_parse(rev) != head:
        return []
    on_disk = set(layout.scan(layout.CheckoutSource(root)).refs())
    committed = set(layout.scan(layout.TreeSource(repo, rev)).refs())
    return sorted(on_disk - committed, key=str)


def uncommitted_warning(ref: ModelRef, rev: str) -> str:
    return (
        f"warning: {ref} is in the work tree but not committed at {rev}, so it is not "
        f"published: commit it ('git add {ref.path} && git commit'), push, and publish again"
    )


def remote_branches_with(repo: GitRepo, rev: str) -> list[str]:
    """The remote-tracking branches that contain `rev`'s commit."""
    commit = repo.rev_parse(rev)
    proc = repo.run("branch", "-r", "--format=%(refname:short)", "--contains", commit)
    return [line.strip() for line in proc.stdout.decode().splitlines() if line.strip()]


def unpushed_refusal(repo: GitRepo, rev: str) -> str | None:
    """Why `rev` must not be published yet, or None when a remote has it.

    A bare repository is the shared one itself: what it holds, the team can fetch.
    """
    if repo.bare or remote_branches_with(repo, rev):
        return None
    commit = repo.rev_parse(rev)
    return (
        f"{rev} ({commit[:12]}) is on no remote-tracking branch: its manifests would name a "
        "commit the team cannot check out. Push it first ('git push'), then publish; or pass "
        "--allow-unpushed to publish it anyway"
    )
