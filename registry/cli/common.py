"""What every `model-registry` command shares: the error wording, the reference type, the
`--root`/`--rev` options and the registry they name.

Exit codes: 0 success; 1 a registry error (one clear line) or, for `check`, problems found;
2 a usage error, including a reference that does not parse.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from registry.errors import InvalidReference, RegistryError, YankedWarning
from registry.refs import ModelRef, parse_ref
from registry.repo import detect, layout
from registry.repo.location import Location, locate


class RefType(click.ParamType[ModelRef]):
    """One exact version such as YOLOX-l/base/1.2."""

    name = "REF"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> ModelRef:
        if isinstance(value, ModelRef):
            return value
        try:
            return parse_ref(str(value))
        except InvalidReference as exc:
            self.fail(str(exc), param, ctx)


@contextmanager
def registry_errors() -> Iterator[None]:
    """Registry errors become one line on stderr and exit 1; bad references exit 2. A yanked
    version named exactly is a warning line on stderr."""
    caught: list[warnings.WarningMessage] = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", YankedWarning)
            yield
    except InvalidReference as exc:
        raise click.UsageError(str(exc)) from exc
    except RegistryError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        for warning in caught:
            if issubclass(warning.category, YankedWarning):
                click.echo(f"warning: {warning.message}", err=True)
            else:
                warnings.warn_explicit(
                    warning.message, warning.category, warning.filename, warning.lineno
                )


root_option = click.option(
    "--root",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="The registry checkout (default: the current directory).",
)
rev_option = click.option(
    "--rev",
    default=None,
    metavar="REV",
    help="Read the registry as committed at this git revision (works in a bare repository).",
)


def registry_source(root: Path | None, rev: str | None) -> tuple[layout.Source, Location]:
    """The registry at `root`: as committed at `rev` (or in a bare repository), else on disk."""
    where = locate(root)
    if rev is not None or (where.repo is not None and where.repo.bare):
        if where.repo is None:
            raise RegistryError(f"'{where.root}' is not a git repository: --rev needs one")
        source: layout.Source = layout.TreeSource(where.repo, rev or "HEAD")
    else:
        source = layout.CheckoutSource(where.root)
    detect.require(source, where.root)
    return source, where
