"""`model-registry`: a thin click layer over the library, its commands gathered in one group.

Exit codes: 0 success; 1 a registry error (one clear line) or, for `check`, problems found;
2 a usage error, including a reference that does not parse.
"""

from __future__ import annotations

import click

from registry.cli import records, release, repo


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="lfs-s3-registry", prog_name="model-registry")
def cli() -> None:
    """A model registry that is a Git repository, with checkpoints in Git LFS on S3."""


_COMMANDS: tuple[click.Command, ...] = (
    # The git-backed registry.
    repo.init,
    repo.list_models,
    repo.show,
    repo.resolve,
    repo.check,
    repo.add,
    repo.next_command,
    repo.doctor,
    # Version records and release decisions.
    records.compare,
    records.gate,
    records.history,
    records.yank,
    records.unyank,
    # Published releases and the local cache.
    release.publish,
    release.fetch,
    release.cache,
)
for _command in _COMMANDS:
    cli.add_command(_command)


def main() -> None:
    cli.main(prog_name="model-registry")
