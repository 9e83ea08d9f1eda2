"""The local cache of published model versions: content-addressed, verified and process-safe.

Split by job: `store` (objects, their use, cached release metadata, locks), `versions` (version
folders), `upkeep` (`entries`, `verify`, `prune`), `meta` (what cached metadata must be),
`partial` (a download in progress), `fsops` (file-system plumbing). `Cache` is all of them.

No S3 code lives here: `Cache.ensure` takes the download as a callable, so the cache works with
any store (and with fakes in tests). Layout under `root`:

```
objects/<oid[0:2]>/<oid[2:4]>/<oid>   every object, verified by SHA-256 and size, read-only
partial/<oid>.partial[.upto]          an interrupted download and how far it got, resumed by
                                      the next `ensure`
versions/<key>/<name>                 a version's files by name, hard links to their objects
links/<key>.json                      which objects each version folder links (for prune/verify)
releases/<key>                        cached index and manifest JSON (`read_meta`/`write_meta`)
used/<oid>                            mtime = when the object was last used (`mark_used`)
locks/                                `cache.lock` and one `<oid>.lock` per download
tmp/                                  temporary files and folders, renamed into place
CACHEDIR.TAG                          tells backup tools to skip the cache
```

Guarantees:

- Nothing unverified is ever under `objects/`: a download goes to `partial/`, its size and
  SHA-256 are checked, and only then is it renamed into place (atomically, read-only).
- A download that fails half-way, or whose process is killed, is resumed from where it
  stopped, not restarted; the bytes kept are hashed again first (`registry.cache.partial`).
- The SHA-256 is computed while the bytes arrive (in order, even when ranges arrive out of
  order), not by reading the object back afterwards.
- Processes share the cache safely: one `flock` per object means an object is downloaded once
  even when several processes ask for it at once; the others wait and then use it. Version
  folders are built in `tmp/` and renamed into place, so a reader sees all of one or none.
  Locks held by a process that dies are released by the kernel.
- Maintenance (`verify`, `prune`) takes `locks/cache.lock` exclusively and every writer takes
  it shared, so an object is never removed while another process is linking or fetching it.
- Use is recorded in `used/<oid>` (its mtime), not in atime, which `noatime`/`relatime` mounts
  do not keep and which `verify` would disturb; `prune(older_than=...)` reads it.
- Nothing in the cache is trusted blindly: a hit is a regular file (`lstat`: a symlink put in
  place of an object is a miss, never followed); cached metadata is read capped and no-follow,
  and `verify`/`prune` remove metadata that no longer validates (`registry.cache.meta`).
- Folders and files honour the umask (objects read-only), so a team sharing a cache with a
  group-writable umask (002) can all use and fill it. A complete version is served from a
  read-only cache (a baked image) without taking any lock; a write the file system refuses
  (read-only, permissions, disk full) is a `CacheError` naming the path and the fix.

`flock` is advisory and a no-op on some network file systems (NFS without lock support,
Lustre, GPFS): there two processes may fetch the same object at once, but verification still
keeps a corrupt result out of `objects/`.

>>> import hashlib, tempfile
>>> from pathlib import Path
>>> data = b"weights"
>>> oid = hashlib.sha256(data).hexdigest()
>>> def fetch(out, offset):
...     out.write(offset, data[offset:])
>>> with tempfile.TemporaryDirectory() as tmp:
...     cache = Cache(Path(tmp))
...     path = cache.ensure(oid, len(data), fetch)
...     path.read_bytes(), cache.has(oid, len(data))
(b'weights', True)
"""

from __future__ import annotations

from registry.cache.store import Fetch
from registry.cache.upkeep import CacheEntry, Upkeep
from registry.errors import CacheError, CorruptDownload, NotCached

__all__ = ["Cache", "CacheEntry", "CacheError", "CorruptDownload", "Fetch", "NotCached"]


class Cache(Upkeep):
    """A content-addressed cache of model files under `root` (see the module docstring).

    Creating a Cache touches no files: folders are made when something is written.
    """
