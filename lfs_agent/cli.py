"""Entry point of `lfs-s3-agent`.

`lfs-s3-agent serve` is what git-lfs runs once per worker and it must answer init fast, so it is
dispatched before click (and the set-up commands) are imported.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if args == ["serve"]:
        from .agent import exit_now, run

        exit_now(run())
    from .commands import cli

    cli.main(args=args, prog_name="lfs-s3-agent")
