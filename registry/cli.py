"""The `model-registry` command line (its commands arrive with the registry library)."""

from __future__ import annotations

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="lfs-s3-registry", prog_name="model-registry")
def cli() -> None:
    """A model registry that is a Git repository, with checkpoints in Git LFS on S3."""


def main() -> None:
    cli.main(prog_name="model-registry")
