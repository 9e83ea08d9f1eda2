"""The registry's errors: one tree, context on the exception, messages that say what to do.

Every exception a caller of the library can meet is defined here and exported from `registry`
(the tree as httpx documents its own):

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
+ NoGate                           the scope has no gate thresholds (CLI: usage error)
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
S3 failures are RegistryErrors worded by `registry.releases.storeerrors` from the agent's own
classification (`lfs_agent.errors`), with the agent's error as `__cause__`. The CLI maps
InvalidReference and NoGate to a usage error (exit 2) and every other one to exit 1.
"""

from __future__ import annotations

from collections.abc import Sequence


class RegistryError(Exception):
    """Base class of every error the registry raises on purpose."""


class InvalidReference(RegistryError, ValueError):
    """A model name, scope, version or selector that does not follow the grammar."""

    def __init__(self, message: str, *, value: str = "") -> None:
        super().__init__(message)
        self.value = value


class NotFound(RegistryError, LookupError):
    """Nothing matches; `available` lists what does exist, `closest` the likeliest intent."""

    def __init__(
        self,
        message: str,
        *,
        wanted: str = "",
        available: Sequence[str] = (),
        closest: str | None = None,
    ) -> None:
        super().__init__(message)
        self.wanted = wanted
        self.available = tuple(available)
        self.closest = closest


class NotPulled(RegistryError):
    """The version's files are LFS pointers and could not be fetched; `command` fetches them."""

    def __init__(self, message: str, *, command: str = "") -> None:
        super().__init__(message)
        self.command = command


class VersionExists(RegistryError, FileExistsError):
    """A version folder already exists: released versions are immutable."""


class NotARegistry(RegistryError):
    """The path is not inside a git repository that could hold a registry."""


class RepoError(RegistryError):
    """A git command failed; the message carries git's own explanation."""


class UnsafeContent(RegistryError):
    """A file we were asked to read is not a regular file, too large, or does not parse."""

    def __init__(self, message: str, *, path: str, reason: str) -> None:
        super().__init__(message)
        self.path = path
        self.reason = reason  # "symlink", "special", "too-large", "unreadable", "parse"


class RecordError(RegistryError):
    """A meta.yaml that is not a valid record; `problems` has one line per bad field."""

    def __init__(self, message: str, *, problems: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.problems = problems


class NoGate(RegistryError):
    """The scope has no thresholds in model-registry.toml (a usage error: exit 2)."""


class OfflineMiss(RegistryError, LookupError):
    """Offline, and what was asked for is not in the cache."""


class StoreObjectMismatch(RegistryError):
    """The store's object does not have the size the manifest gives."""


class IndexConflict(RegistryError):
    """The index changed between our read and our write (HTTP 412 on a conditional PUT)."""


class PublishedVersionChanged(RegistryError):
    """Versions whose files differ from their published manifests; nothing was written."""

    def __init__(self, message: str, *, refs: Sequence[str]) -> None:
        super().__init__(message)
        self.refs = tuple(refs)


class ObjectsUnavailable(RegistryError):
    """Objects that are neither in the store nor local (`oids`); nothing was written."""

    def __init__(self, message: str, *, oids: Sequence[str]) -> None:
        super().__init__(message)
        self.oids = tuple(oids)


class CacheError(RegistryError):
    """The file system refused a write to the cache: read-only, permissions, or disk full."""

    def __init__(self, message: str, *, path: str, errno: int | None) -> None:
        super().__init__(message)
        self.path = path
        self.errno = errno


class CorruptDownload(RegistryError):
    """A downloaded object does not match its oid or size; nothing was added to the cache."""

    def __init__(
        self,
        message: str,
        *,
        oid: str,
        expected_size: int,
        actual_size: int,
        actual_sha256: str | None = None,
    ) -> None:
        super().__init__(message)
        self.oid = oid
        self.expected_size = expected_size
        self.actual_size = actual_size
        self.actual_sha256 = actual_sha256


class NotCached(RegistryError, LookupError):
    """An object that a version folder needs is not in the cache (call `Cache.ensure` first)."""

    def __init__(self, message: str, *, oid: str, name: str = "") -> None:
        super().__init__(message)
        self.oid = oid
        self.name = name


class YankedWarning(UserWarning):
    """A yanked version was resolved by its exact name."""
