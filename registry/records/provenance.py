"""Provenance `add` can see for itself: the training code's commit, and the GPUs of this host.

Both are read by running commands (`git`, `nvidia-smi`) through a `run` function passed in, so
that tests can give a host without GPUs, or with some, without faking our own code.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

from registry.errors import RegistryError
from registry.records.record import FILE, Hardware, Record, SourceInfo, parse_record

Run = Callable[[Sequence[str], Path | None], "subprocess.CompletedProcess[str]"]


def run_command(args: Sequence[str], cwd: Path | None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(args), cwd=cwd, capture_output=True, text=True, check=False, timeout=30
    )


def source_info(path: Path, run: Run = run_command) -> SourceInfo:
    """The commit checked out in the git repository at `path`, its origin, and whether its
    work tree has changes.

    Raises:
        RegistryError: `path` is not in a git repository with a commit.
    """
    head = run(["git", "rev-parse", "HEAD"], path)
    if head.returncode != 0:
        raise RegistryError(
            f"--source '{path}' is not a git repository with a commit "
            f"({head.stderr.strip() or 'git rev-parse HEAD failed'}): pass the training "
            "code's checkout"
        )
    origin = run(["git", "config", "--get", "remote.origin.url"], path)
    top = run(["git", "rev-parse", "--show-toplevel"], path)
    repo = origin.stdout.strip() or top.stdout.strip() or str(path.resolve())
    status = run(["git", "status", "--porcelain", "--untracked-files=no"], path)
    dirty = bool(status.stdout.strip()) if status.returncode == 0 else None
    return SourceInfo(repo=repo, commit=head.stdout.strip(), dirty=dirty)


def gpu_info(
    run: Run = run_command, which: Callable[[str], str | None] = shutil.which
) -> Hardware | None:
    """The GPU model and count from `nvidia-smi`, or None when it is absent or says nothing."""
    if which("nvidia-smi") is None:
        return None
    try:
        out = run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], None)
    except (OSError, subprocess.SubprocessError):
        return None
    names = [line.strip() for line in out.stdout.splitlines() if line.strip()]
    if out.returncode != 0 or not names:
        return None
    return Hardware(gpu=names[0], count=len(names))


def fill(
    record: Record | None, *, source: SourceInfo | None, hardware: Hardware | None
) -> Record | None:
    """`record` with `source` and `hardware` added where it records none (it wins)."""
    if source is None and hardware is None:
        return record
    base = record or Record()
    update: dict[str, object] = {}
    if base.source is None and source is not None:
        update["source"] = source
    if base.hardware is None and hardware is not None:
        update["hardware"] = hardware
    return base.model_copy(update=update) if update else base


def gather(
    folder: Path,
    *,
    code: Path | None,
    detect_gpu: bool,
    run: Run = run_command,
    which: Callable[[str], str | None] = shutil.which,
) -> Record | None:
    """The record `add` writes for the version in `folder`: its meta.yaml (validated), with the
    provenance filled in; None when there is nothing to write (the folder's file, if any, is
    then copied unchanged).

    Raises:
        RecordError: the folder's meta.yaml is invalid.
        RegistryError: `code` is not a git checkout.
    """
    meta = folder / FILE
    existing = parse_record(meta.read_bytes(), str(meta)) if meta.is_file() else None
    source = source_info(code, run) if code is not None else None
    hardware = gpu_info(run, which) if detect_gpu else None
    filled = fill(existing, source=source, hardware=hardware)
    return None if filled == existing else filled
