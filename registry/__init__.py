"""model-registry: a model registry that is a Git repository with its checkpoints in Git LFS.

    from registry import resolve
    model = resolve("YOLOX-l/base/1", root="path/to/model-registry")
    model.files["checkpoint.pth"]      # the newest 1.x, pulled if it was not

Versions (`base/X.Y`, `{project}/X.Y.Z`, `pretrained/YYYY-MM-DD`) are immutable values that
parse and print round-trip; `check` enforces the registry's rules. A version's `meta.yaml`
records metrics and provenance (`Record`); `compare`, `gate` and `history` reason about them.

The package's parts (ARCHITECTURE.md tells more):

- `refs`, `selector`: the version grammar, and what an application asks for;
- `resolve`, `resolved`: a selector to the files of one version, from a checkout or from S3;
- `repo/`: the git-backed registry (layout, checks, `add`, `init`, `next`);
- `records/`: what versions record (`meta.yaml`, `yanks.yaml`) and `compare`/`gate`/`history`;
- `releases/`: published releases in S3 (formats, `publish`, remote resolve);
- `cache/`: the local cache of verified objects and version folders;
- `cli/`: the `model-registry` command line over all of them.

Errors, all in `registry.errors` and exported here; every one carries its context as
attributes, and its message says what to do:

```
RegistryError
+ InvalidReference (ValueError)    a version, selector or name that does not parse
+ NotFound (LookupError)           no such model / scope / version; lists what exists
+ NotPulled                        the files are LFS pointers; names the command to run
+ VersionExists (FileExistsError)  `add` would overwrite a released version
+ NotARegistry                     the path is not a registry checkout or repository
+ RepoError                        git failed; carries git's own message
+ UnsafeContent                    a file to read is a symlink, special, too large or bad YAML
+ RecordError                      a version's meta.yaml is invalid; lists the problems
+ NoGate                           the scope has no gate thresholds
+ OfflineMiss (LookupError)        offline, and what is asked for is not cached
+ StoreObjectMismatch              the store's object does not have the manifest's size
+ IndexConflict                    a model's index changed between read and conditional write
+ PublishedVersionChanged          a published version's files differ; nothing was written
+ ObjectsUnavailable               objects neither in the store nor local; nothing written
+ CacheError                       the file system refused a write to the cache
+ CorruptDownload                  a download does not match its oid or size; not cached
+ NotCached (LookupError)          a version folder needs an object not in the cache
YankedWarning (UserWarning)        a yanked version resolved because it was named exactly
```
"""

from __future__ import annotations

from registry.errors import (
    CacheError,
    CorruptDownload,
    IndexConflict,
    InvalidReference,
    NoGate,
    NotARegistry,
    NotCached,
    NotFound,
    NotPulled,
    ObjectsUnavailable,
    OfflineMiss,
    PublishedVersionChanged,
    RecordError,
    RegistryError,
    RepoError,
    StoreObjectMismatch,
    UnsafeContent,
    VersionExists,
    YankedWarning,
)
from registry.records.compare import Comparison, compare
from registry.records.gate import GateResult, gate
from registry.records.history import History, history
from registry.records.record import Record
from registry.refs import (
    BaseVersion,
    ModelRef,
    PretrainedVersion,
    ProjectVersion,
    Version,
    parse_ref,
    parse_version,
)
from registry.repo.checks import check
from registry.repo.findings import Finding
from registry.resolve import resolve
from registry.resolved import ResolvedModel
from registry.selector import Exact, Latest, Prefix, Selector, parse_selector

__all__ = [
    "BaseVersion",
    "CacheError",
    "Comparison",
    "CorruptDownload",
    "Exact",
    "Finding",
    "GateResult",
    "History",
    "IndexConflict",
    "InvalidReference",
    "Latest",
    "ModelRef",
    "NoGate",
    "NotARegistry",
    "NotCached",
    "NotFound",
    "NotPulled",
    "ObjectsUnavailable",
    "OfflineMiss",
    "Prefix",
    "PretrainedVersion",
    "ProjectVersion",
    "PublishedVersionChanged",
    "Record",
    "RecordError",
    "RegistryError",
    "RepoError",
    "ResolvedModel",
    "Selector",
    "StoreObjectMismatch",
    "UnsafeContent",
    "Version",
    "VersionExists",
    "YankedWarning",
    "check",
    "compare",
    "gate",
    "history",
    "parse_ref",
    "parse_selector",
    "parse_version",
    "resolve",
]
