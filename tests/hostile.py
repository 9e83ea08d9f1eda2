"""Run `model-registry` the way a hostile input would meet it: in its own process, with a time
limit and a memory limit (a regression fails in seconds instead of eating the machine), under
a chosen umask, a file-size limit (a "full disk"), or as another user (a shared or read-only
cache). Shared by the hostile-repository and hostile-store tests.
"""

from __future__ import annotations

import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

MEMORY_LIMIT = 1536 << 20  # address space: the 1.4-3.8 GB runs of the issue die at once
NOBODY = 65534

# Imported before privileges are dropped: the interpreter's own files may not be readable by
# the other user (pyenv under /root), so everything a run needs is loaded first, including
# what botocore loads on a client's first use.
_AS_USER = """
import os, sys
import registry.cli, registry.cli.release, registry.releases.remote
from registry.releases import s3fetch
s3fetch.default_client(s3fetch.registry_config("b", s3fetch.DEFAULT_SETTINGS, os.environ))
import lfs_agent.s3download, lfs_agent.s3upload, lfs_agent.s3errors, hmac
import click.exceptions, encodings.idna, json.decoder
uid, gid = int(sys.argv[1]), int(sys.argv[2])
os.setgroups([])
os.setgid(gid)
os.setuid(uid)
sys.argv = ["model-registry", *sys.argv[3:]]
registry.cli.main()
"""


def run_cli(
    *args: str | Path,
    cwd: Path | None = None,
    timeout: float = 60,
    umask: int | None = None,
    file_size_limit: int | None = None,
    user: tuple[int, int] | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """`model-registry ARGS` in a child process; raises TimeoutExpired past `timeout`."""
    argv = [str(a) for a in args]
    if user is None:
        command = [sys.executable, "-m", "registry", *argv]
    else:
        command = [sys.executable, "-c", _AS_USER, str(user[0]), str(user[1]), *argv]
    return subprocess.run(
        command,
        cwd=cwd,
        env=env if env is not None else dict(os.environ),
        capture_output=True,
        text=True,
        timeout=timeout,
        umask=-1 if umask is None else umask,
        preexec_fn=_limits(file_size_limit),
        check=False,
    )


def _limits(file_size_limit: int | None) -> Callable[[], None]:
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
        if file_size_limit is not None:
            # Past the limit a write fails with EFBIG, as it would with ENOSPC on a full disk;
            # SIGXFSZ would kill the process instead of letting it report that.
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (file_size_limit, file_size_limit))

    return apply


def can_switch_user() -> bool:
    return os.geteuid() == 0


@contextmanager
def shared_folder() -> Iterator[Path]:
    """A folder another user can reach (pytest's tmp_path is under a 0700 folder)."""
    path = Path(tempfile.mkdtemp(prefix="registry-shared-", dir="/tmp"))
    os.chmod(path, 0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def modes(root: Path) -> dict[str, int]:
    """The permission bits of everything under `root`, by relative path."""
    return {
        p.relative_to(root).as_posix(): p.lstat().st_mode & 0o7777 for p in sorted(root.rglob("*"))
    }
