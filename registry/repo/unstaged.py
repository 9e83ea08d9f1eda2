"""Changes in a work tree that the index does not hold yet, for `check --against`.

`check --against REV` compares the index with REV (what the next commit would hold), so an
edit that was never staged would pass unseen; these are compared separately. git's own
comparison is used (`git diff`, `git ls-files --others`): it runs git-lfs's clean filter where
a checkpoint's bytes must be compared, and trusts the index's stat data elsewhere.
"""

from __future__ import annotations

from collections.abc import Sequence

from registry.repo.gitrepo import GitRepo

_WHAT = {"M": "was modified", "D": "was removed", "T": "changed type", "A": "was added"}


def unstaged_changes(repo: GitRepo, folders: Sequence[str]) -> dict[str, str]:
    """Paths under `folders` whose work-tree state differs from the index: path -> what."""
    if not folders or repo.bare:
        return {}
    specs = ["--", *(f":(literal){folder}/" for folder in folders)]
    found: dict[str, str] = {}
    diff = repo.run("diff", "--name-status", "-z", "--no-renames", *specs)
    fields = diff.stdout.decode("utf-8", "surrogateescape").split("\0")
    for status, path in zip(fields[0::2], fields[1::2], strict=False):
        if path:
            found[path] = _WHAT.get(status[:1], "was changed")
    others = repo.run("ls-files", "-z", "--others", "--exclude-standard", *specs)
    for path in others.stdout.decode("utf-8", "surrogateescape").split("\0"):
        if path:
            found[path] = "was added"
    return found
