"""`model-registry check`: every rule of the registry, every problem reported with its path.

Rules (README, "The registry"):
- `name`: folders follow `{algorithm}-{option}/{scope}/{version}`;
- `missing-file`: each version has the required files (`model-registry.toml` can change them);
- `empty`: a version folder holds files;
- `config`: `config.yaml` parses as YAML (and is no larger than `max_text_size`);
- `not-regular`: a version holds regular files only: no symlinks (mode 120000 in a revision),
  FIFOs, devices or submodules, which would be followed or waited on by whoever reads them;
- `settings`: `model-registry.toml` parses (when it does not, the defaults apply to the rest);
- `leftover`: no `.VERSION.adding-*` folder left by an `add` that was killed;
- `readme`: each model scope has a README.md for the application developers;
- `base-missing`: a project version X.Y.Z is fine-tuned from a base X.Y that exists;
- `not-lfs`: checkpoints are stored as Git LFS pointers, not as raw blobs in git;
- `meta`, `yank`: version records and the yank list (`registry.records.recordcheck`);
- `changed`: with `against`, versions that existed there are unchanged (released versions are
  immutable) and still exist.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping

from registry.errors import RegistryError
from registry.records.recordcheck import record_findings, yank_findings
from registry.refs import ModelRef, ProjectVersion
from registry.repo import layout
from registry.repo.findings import Finding
from registry.repo.gitrepo import GitRepo
from registry.repo.pointer import MAX_POINTER_SIZE, parse_pointer
from registry.repo.settings import FILE as SETTINGS_FILE
from registry.repo.settings import MAX_SETTINGS_SIZE, Settings, parse_settings
from registry.repo.unstaged import unstaged_changes
from registry.safeio import parse_yaml

STAGING_MARK = ".adding-"
"""`add` stages a version in `.<version>.adding-<random>` next to where it goes."""


def load_settings(source: layout.Source) -> Settings:
    """The registry's `model-registry.toml`, or the defaults when it has none.

    Raises:
        RegistryError: the file is not a regular file, too large, or invalid; names it.
    """
    if SETTINGS_FILE not in source.files(""):
        return Settings()
    return parse_settings(source.read(SETTINGS_FILE, MAX_SETTINGS_SIZE))


def check(
    source: layout.Source, *, repo: GitRepo | None = None, against: str | None = None
) -> list[Finding]:
    """Every problem in the registry, sorted by path.

    Args:
        source: the registry to check (a checkout or a revision).
        repo: its git repository, to know how files are stored and to compare with `against`.
        against: a revision whose versions must be unchanged.
    """
    findings: list[Finding] = []
    try:
        settings = load_settings(source)
    except RegistryError as exc:
        # One bad file must not hide the other problems: check the rest with the defaults.
        settings = Settings()
        findings.append(Finding(SETTINGS_FILE, "settings", f"{exc}; checked with the defaults"))
    scan = layout.scan(source)
    findings += [
        Finding(p.path, p.rule, p.message)
        for p in scan.problems
        if p.path.split("/")[0] not in settings.check.ignore
    ]
    findings += _leftover_findings(source, scan)
    refs = list(scan.refs())
    files = {ref: layout.files(source, ref) for ref in refs}
    for ref in refs:
        findings += _version_findings(source, ref, files[ref], settings)
    findings += _readme_findings(source, scan)
    findings += _base_findings(scan)
    findings += _lfs_findings(source, repo, files, settings)
    findings += record_findings(source, refs, settings)
    findings += yank_findings(source, scan)
    if against is not None:
        if repo is None:
            raise RegistryError(
                "--against needs a git repository to read the released versions from; "
                "run the check in a clone of the registry"
            )
        findings += _changed_findings(repo, against, source)
    return sorted(findings, key=lambda f: (f.path, f.rule))


def _version_findings(
    source: layout.Source,
    ref: ModelRef,
    found: Mapping[str, layout.FileInfo],
    settings: Settings,
) -> list[Finding]:
    if not found:
        return [
            Finding(
                ref.path, "empty", "the version folder has no files; add them or remove the folder"
            )
        ]
    out = [
        Finding(
            f"{ref.path}/{name}",
            "missing-file",
            f"{ref} has no {name}; every version needs " + ", ".join(settings.check.required),
        )
        for name in settings.check.required
        if name not in found
    ]
    out += [
        Finding(
            info.path,
            "not-regular",
            f"{info.name} is {info.describe()}; a version holds regular files only (a link "
            "would hand out whatever it points at): replace it with the file itself",
        )
        for info in found.values()
        if info.kind != "file"
    ]
    config = found.get("config.yaml")
    if config is not None and config.kind == "file" and config.lfs is None:
        try:
            parse_yaml(source.read(config.path, settings.check.max_text_size), "config.yaml")
        except RegistryError as exc:
            out.append(Finding(config.path, "config", str(exc)))
    return out


def _leftover_findings(source: layout.Source, scan: layout.Scan) -> list[Finding]:
    """Staging folders of an `add` that was killed (SIGKILL, power loss): hidden, so nothing
    else would ever mention them, and the next `add` of that version removes them."""
    if not isinstance(source, layout.CheckoutSource):
        return []  # staging folders are never staged: `add` stages the renamed folder
    out = []
    for model, scopes in sorted(scan.versions.items()):
        for scope in sorted(scopes):
            folder = source.root / model / scope
            try:
                names = sorted(p.name for p in folder.iterdir())
            except OSError:
                continue
            for name in names:
                if name.startswith(".") and STAGING_MARK in name:
                    version = name[1:].split(STAGING_MARK, 1)[0]
                    out.append(
                        Finding(
                            f"{model}/{scope}/{name}",
                            "leftover",
                            f"an interrupted 'model-registry add' of {model}/{scope}/{version} "
                            f"left this staging folder; delete it ('rm -rf {model}/{scope}/"
                            f"{name}') or run the add again, which removes it",
                        )
                    )
    return out


def _readme_findings(source: layout.Source, scan: layout.Scan) -> list[Finding]:
    return [
        Finding(
            f"{model}/{scope}/README.md",
            "readme",
            f"{model}/{scope} has no README.md: say what these models are for the "
            "application developers",
        )
        for model, scopes in sorted(scan.versions.items())
        for scope in sorted(scopes)
        if "README.md" not in source.files(f"{model}/{scope}")
    ]


def _base_findings(scan: layout.Scan) -> list[Finding]:
    out = []
    for model, scopes in sorted(scan.versions.items()):
        bases = set(scopes.get("base", {}))
        for scope, versions in sorted(scopes.items()):
            for version in sorted(versions):
                if isinstance(version, ProjectVersion) and version.base not in bases:
                    out.append(
                        Finding(
                            f"{model}/{scope}/{version}",
                            "base-missing",
                            f"project version {version} is fine-tuned from base {version.base}, "
                            f"but {model}/base/{version.base} does not exist; register that base "
                            "version first, or fix the project version's X.Y",
                        )
                    )
    return out


def _lfs_findings(
    source: layout.Source,
    repo: GitRepo | None,
    files: Mapping[ModelRef, Mapping[str, layout.FileInfo]],
    settings: Settings,
) -> list[Finding]:
    wanted: dict[str, tuple[layout.FileInfo, str]] = {}
    for found in files.values():
        for info in found.values():
            base = info.name.rsplit("/", 1)[-1]
            pattern = next((p for p in settings.check.lfs if fnmatch.fnmatch(base, p)), None)
            if pattern is not None and info.lfs is None and info.kind == "file":
                wanted[info.path] = (info, pattern)
    if not wanted:
        return []
    out = []
    for path, storage in _storage(source, repo, list(wanted)).items():
        info, pattern = wanted[path]
        track = f'git lfs track "{pattern}"'
        if storage == "raw":
            message = (
                f"{info.name} ({info.size} bytes) is stored in git itself, not in Git LFS; "
                f"run '{track}', then 'git rm --cached {path}' and 'git add {path}'"
            )
        elif storage == "untracked":
            message = (
                f"{info.name} ({info.size} bytes) would be stored in git itself: no "
                f".gitattributes rule sends it to Git LFS; run '{track}' before 'git add {path}'"
            )
        else:
            continue
        out.append(Finding(path, "not-lfs", message))
    return out


def _storage(source: layout.Source, repo: GitRepo | None, paths: list[str]) -> dict[str, str]:
    """How git stores each path: "lfs", "raw" (the bytes themselves), or "untracked" (not
    staged, and no LFS attribute covers it)."""
    if isinstance(source, layout.TreeSource):
        # A revision's blobs are what is stored: a checkpoint that is not a pointer is raw.
        return {p: "raw" for p in paths}
    if repo is None:
        return {}
    staged = repo.index_entries(paths)
    blobs = repo.read_blobs(
        sorted({e.object_id for e in staged.values() if 0 <= e.size <= MAX_POINTER_SIZE})
    )
    result = {}
    for path, entry in staged.items():
        pointer = entry.object_id in blobs and parse_pointer(blobs[entry.object_id]) is not None
        result[path] = "lfs" if pointer else "raw"
    untracked = [p for p in paths if p not in staged]
    for path, attr in repo.check_attr("filter", untracked).items():
        result[path] = "lfs" if attr == "lfs" else "untracked"
    return result


def _changed_findings(repo: GitRepo, against: str, source: layout.Source) -> list[Finding]:
    old = layout.TreeSource(repo, against)
    old_scan = layout.scan(old)
    # A checkout is compared through its index (what the next commit holds); a revision
    # (a bare repository) through its own tree.
    if isinstance(source, layout.TreeSource):
        current = {e.path: e for e in repo.ls_tree(source.commit)}
    else:
        current = repo.index_entries(None)
    out = []
    for ref in old_scan.refs():
        before = {f.path: f for f in old.walk_files(ref.path)}
        now = {p: e for p, e in current.items() if p.startswith(f"{ref.path}/")}
        if not now:
            out.append(
                Finding(
                    ref.path,
                    "changed",
                    f"released version {ref} (in {against}) was removed; released "
                    "versions are immutable: restore it "
                    f"('git checkout {against} -- {ref.path}')",
                )
            )
            continue
        old_ids = {p: old.object_id(p) for p in before}
        for path in sorted(set(before) | set(now)):
            if path not in now:
                what = "was removed"
            elif path not in before:
                what = "was added"
            elif now[path].object_id != old_ids[path]:
                what = "was modified"
            else:
                continue
            out.append(
                Finding(
                    path,
                    "changed",
                    f"{path.rsplit('/', 1)[-1]} {what} in released version {ref} "
                    f"(as of {against}); released versions are immutable: restore it "
                    f"('git checkout {against} -- {ref.path}') and register the "
                    "change as a new version",
                )
            )
    if isinstance(source, layout.CheckoutSource):
        seen = {f.path for f in out}
        unstaged = _unstaged_findings(repo, against, list(old_scan.refs()))
        out += [f for f in unstaged if f.path not in seen]
    return out


def _unstaged_findings(repo: GitRepo, against: str, refs: list[ModelRef]) -> list[Finding]:
    """Edits not staged yet under released versions: the index comparison cannot see them."""
    changed = unstaged_changes(repo, [ref.path for ref in refs])
    out = []
    for path, what in sorted(changed.items()):
        ref = next(r for r in refs if path.startswith(f"{r.path}/"))
        out.append(
            Finding(
                path,
                "changed",
                f"{path.rsplit('/', 1)[-1]} {what} (not staged) in released version {ref} "
                f"(as of {against}); released versions are immutable: restore it "
                f"('git checkout {against} -- {ref.path}') and register the change as a new "
                "version",
            )
        )
    return out
