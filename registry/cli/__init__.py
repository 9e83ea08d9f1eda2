"""`model-registry`: a thin command line over the library.

- `app`: the command group and `main`; each command is registered there with `add_command`.
- `repo`, `records`, `release`: the commands, by the part of the library they drive;
  `common`: what they share (error wording, options); `progress`: the transfer counter.
"""

from __future__ import annotations

from registry.cli.app import cli, main

__all__ = ["cli", "main"]
