"""What an LFS object id is, and where an object lives in S3: one definition for the agent and
the registry (`registry.releases.formats`, `registry.cache`, `registry.repo.pointer` use these too).

Imports `re` only: the agent's serving start-up loads this module.

>>> is_oid("ab" * 32), is_oid("AB" * 32), is_oid("ab")
(True, False, False)
>>> object_key("team/reg", "0123" + "0" * 60)[:28]
'team/reg/objects/01/23/01230'
>>> object_key("", "0123" + "0" * 60)[:19]
'objects/01/23/01230'
"""

from __future__ import annotations

import re

OID_PATTERN = re.compile(r"[0-9a-f]{64}")
"""A SHA-256 as git-lfs writes it: 64 lowercase hex digits (explicit ASCII classes)."""


def is_oid(value: object) -> bool:
    """Whether `value` is a string of exactly 64 lowercase hex digits."""
    return isinstance(value, str) and OID_PATTERN.fullmatch(value) is not None


def object_key(prefix: str, oid: str) -> str:
    """The S3 key of object `oid` under `prefix`: `<prefix>/objects/<oid[0:2]>/<oid[2:4]>/<oid>`
    (no leading `/` when the prefix is empty)."""
    return "/".join(p for p in (prefix, "objects", oid[0:2], oid[2:4], oid) if p)
