"""The `check` rules of version records and yanks.

- `meta`: every meta.yaml is a valid record (schema, finite numbers, dataset version grammar),
  and each version records what `[check] meta` in model-registry.toml names;
- `yank`: yanks.yaml parses, and each entry names a version that exists.
"""

from __future__ import annotations

from collections.abc import Iterable

from registry.errors import RecordError, RegistryError
from registry.records.record import FILE, record_of
from registry.records.yank import FILE as YANKS
from registry.records.yank import load_yanks
from registry.refs import ModelRef
from registry.repo import layout
from registry.repo.findings import Finding
from registry.repo.settings import Settings


def record_findings(
    source: layout.Source, refs: Iterable[ModelRef], settings: Settings
) -> list[Finding]:
    out: list[Finding] = []
    for ref in refs:
        try:
            record = record_of(source, ref, settings.metrics)
        except RecordError as exc:
            out += [Finding(f"{ref.path}/{FILE}", "meta", p) for p in exc.problems or (str(exc),)]
            continue
        missing = [
            path for path in settings.check.meta if record is None or record.lookup(path) is None
        ]
        if missing:
            out.append(
                Finding(
                    f"{ref.path}/{FILE}",
                    "meta",
                    f"{ref} does not record {', '.join(missing)}; model-registry.toml requires "
                    f"{', '.join(settings.check.meta)} of every version (write them in "
                    f"{FILE}, or let 'model-registry add --source' fill the provenance)",
                )
            )
    return out


def yank_findings(source: layout.Source, scan: layout.Scan) -> list[Finding]:
    try:
        yanks = load_yanks(source)
    except RegistryError as exc:
        return [Finding(YANKS, "yank", str(exc))]
    known = {str(ref) for ref in scan.refs()}
    return [
        Finding(
            YANKS,
            "yank",
            f"{ref} is yanked but is not a version of the registry; remove its entry "
            f"('model-registry unyank {ref}') or fix the reference",
        )
        for ref in sorted(yanks.entries)
        if ref not in known
    ]
