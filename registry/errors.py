"""The registry's errors: one tree, context on the exception, messages that say what to do.

```
RegistryError
+ InvalidReference (ValueError)   a version, selector or name that does not parse
+ NotFound (LookupError)          no such model / scope / version; lists what exists
+ NotPulled                       the files are LFS pointers; names the command to run
+ VersionExists                   `add` would overwrite a released version
+ NotARegistry                    the path is not a registry checkout or repository
+ RepoError                       git failed; carries git's own message
```
The CLI maps InvalidReference to a usage error (exit 2) and every other one to exit 1.
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
