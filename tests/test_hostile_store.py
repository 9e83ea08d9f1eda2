"""A hostile or broken store, and caches that are shared, tampered with, read-only or full
(issue 11, rows 5 (manifest checks), 6, 7, 9, 10 and 11; issue 13, finding 2's modes).

`model-registry fetch` runs in its own process (tests/hostile.py) against a moto server, with
a time and a memory limit, and where the row needs it under another umask, a file-size limit
(a full disk) or as another user (the second member of a team; a read-only cache).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest

from devtools.s3servers import S3Bucket
from registry import RegistryError, resolve
from registry.cache import Cache
from registry.refs import parse_ref
from registry.releases.formats import RemoteRoot
from tests.hostile import NOBODY, can_switch_user, modes, run_cli, shared_folder
from tests.s3releases import PREFIX, files_of, publish_by_hand, put

REF = "YOLOX-l/base/1.2"
ROOT = RemoteRoot(bucket="-", prefix=PREFIX)


@pytest.fixture
def store(moto_s3: S3Bucket, monkeypatch: pytest.MonkeyPatch) -> S3Bucket:
    for key, value in moto_s3.server.env().items():
        monkeypatch.setenv(key, value)
    publish_by_hand(moto_s3, {REF: files_of("1.2"), "YOLOX-l/base/1.3": files_of("1.3")})
    return moto_s3


def url(store: S3Bucket) -> str:
    return f"s3://{store.name}/{PREFIX}/YOLOX-l"


def fetch(
    store: S3Bucket, cache: Path, spec: str = "base/1.2", *more: str | Path, **kw: Any
) -> Any:
    return run_cli("fetch", spec, "--root-url", url(store), "--cache-dir", cache, "-q", *more, **kw)


def manifest_key(spec: str = REF) -> str:
    return ROOT.manifest_key(parse_ref(spec))


def entry(name: str, data: bytes) -> dict[str, Any]:
    return {"name": name, "oid": hashlib.sha256(data).hexdigest(), "size": len(data)}


def put_manifest(store: S3Bucket, files: list[dict[str, Any]], ref: str = REF) -> None:
    body = {"schema_version": 1, "ref": ref, "commit": None, "files": files}
    put(store, manifest_key(), json.dumps(body).encode())


def cached_meta(cache: Path) -> list[str]:
    releases = cache / "releases"
    return sorted(p.relative_to(releases).as_posix() for p in releases.rglob("*.json"))


def leftovers(cache: Path) -> list[str]:
    return sorted(
        p.relative_to(cache).as_posix()
        for p in cache.rglob("*")
        if p.name.endswith(".tmp") or (p.parent.name == "tmp" and p.parent.parent == cache)
    )


# --- rows 5 (the manifest's part), 6 and 7: bad manifests fail cleanly, are never cached ------

A = b"a payload\n"
BAD_MANIFESTS = {
    "name-twice": ([entry("a", A), entry("a", A)], REF, "files listed more than once: a"),
    "file-and-folder": (
        [entry("a", A), entry("a/b", A)],
        REF,
        "files that are also folders of other files: a",
    ),
    "size-10^15": (
        [{**entry("a", A), "size": 10**15}],
        REF,
        "size 1000000000000000 is outside 0 to 53687091200000 bytes",
    ),
    "another-model": ([entry("a", A)], "YOLOX-s/base/1.2", "is for YOLOX-s/base/1.2, not"),
}


@pytest.mark.parametrize("case", sorted(BAD_MANIFESTS))
def test_bad_manifest_fails_cleanly_is_never_cached_and_a_repair_heals(
    store: S3Bucket, tmp_path: Path, case: str
) -> None:
    files, ref, message = BAD_MANIFESTS[case]
    put(store, ROOT.object_key(hashlib.sha256(A).hexdigest()), A)
    put_manifest(store, files, ref)
    cache = tmp_path / "cache"

    failed = fetch(store, cache, timeout=60)

    assert failed.returncode == 1
    assert message in failed.stderr
    assert "nothing from it was used or cached" in failed.stderr
    assert "Traceback" not in failed.stderr
    assert not any(p.endswith("1.2/manifest.json") for p in cached_meta(cache))
    assert not (cache / "objects").exists() and not (cache / "partial").exists()

    publish_by_hand(store, {REF: {"a": A}})  # the store is repaired
    healed = fetch(store, cache)
    assert healed.returncode == 0, healed.stderr
    assert (cache / "versions" / store.name / PREFIX / REF / "a").read_bytes() == A


def test_manifest_and_index_byte_caps(
    store: S3Bucket, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("registry.releases.remote.MAX_META_SIZE", 4096)  # 16 MiB by default
    manifest = json.dumps({"schema_version": 1, "ref": REF, "commit": None, "files": []})
    put(store, manifest_key(), (manifest + " " * 5000).encode())
    put(store, ROOT.index_key("YOLOX-l"), b" " * 5000)

    with pytest.raises(RegistryError, match=r"is 5,[0-9]{3} bytes or more, over the 4,096"):
        resolve("base/1.2", root=url(store), cache_dir=tmp_path / "cache")
    with pytest.raises(RegistryError, match=r"index.json is 5,000 bytes or more"):
        resolve("base/latest", root=url(store), cache_dir=tmp_path / "cache")
    assert cached_meta(tmp_path / "cache") == []


def test_index_for_another_model_is_refused_and_not_cached(store: S3Bucket, tmp_path: Path) -> None:
    index = {"schema_version": 1, "model": "YOLOX-s", "versions": {"base": ["1.2"]}}
    put(store, ROOT.index_key("YOLOX-l"), json.dumps(index).encode())
    failed = fetch(store, tmp_path / "cache", "base/latest")
    assert failed.returncode == 1
    assert "is for model YOLOX-s, not YOLOX-l" in failed.stderr
    assert cached_meta(tmp_path / "cache") == []


def seed_bad_manifest(cache: Path, store: S3Bucket) -> Path:
    """What an older version left: a manifest for another version, cached as this one's."""
    path = cache / "releases" / store.name / manifest_key()
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {"schema_version": 1, "ref": "YOLOX-l/base/9.9", "commit": None, "files": []}
    path.write_text(json.dumps(body))
    return path


def test_cache_verify_and_prune_remove_metadata_that_fails(store: S3Bucket, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    assert fetch(store, cache, "base/1.3").returncode == 0  # good metadata stays
    good = cached_meta(cache)
    bad = seed_bad_manifest(cache, store)

    verified = run_cli("cache", "verify", "--cache-dir", cache)
    assert verified.returncode == 1
    assert f"invalid metadata, removed: {store.name}/{manifest_key()}" in verified.stdout
    assert not bad.exists() and cached_meta(cache) == good

    seed_bad_manifest(cache, store)
    assert run_cli("cache", "prune", "--older-than", "30", "--cache-dir", cache).returncode == 0
    assert not bad.exists() and cached_meta(cache) == good

    seed_bad_manifest(cache, store)  # and a resolve drops it and reads the store's again
    offline = fetch(store, cache, "base/1.2", "--offline")
    assert offline.returncode == 1 and "offline, and no index" in offline.stderr
    assert fetch(store, cache).returncode == 0
    assert f"{store.name}/{manifest_key()}" in cached_meta(cache)


# --- row 9: a cached object replaced by a symlink --------------------------------------------


def test_symlinked_object_is_a_miss_never_served(store: S3Bucket, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    assert fetch(store, cache).returncode == 0
    wanted = files_of("1.2")  # random: read back what was published instead
    model = resolve("base/1.2", root=url(store), cache_dir=cache)
    real = model.files["checkpoint.pth"].read_bytes()
    obj = Cache(cache).object_path(model.objects["checkpoint.pth"].oid)
    other = tmp_path / "other"
    other.write_bytes(os.urandom(len(real)))  # other bytes, the same size
    obj.unlink()
    obj.symlink_to(other)
    Cache(cache)._remove_tree(model.path)  # the next resolve builds the folder again
    assert len(wanted["checkpoint.pth"]) == len(real)

    offline = fetch(store, cache, "base/1.2", "--offline")
    assert offline.returncode == 1
    assert "checkpoint.pth" in offline.stderr and "is not in the cache" in offline.stderr

    verified = run_cli("cache", "verify", "--cache-dir", cache)
    assert verified.returncode == 1 and f"corrupt, removed: {obj.name}" in verified.stdout
    assert not obj.is_symlink() and other.exists()  # the link went, not what it pointed at

    online = fetch(store, cache)
    assert online.returncode == 0, online.stderr
    assert model.files["checkpoint.pth"].read_bytes() == real


# --- row 10: a cache shared by a team; issue 13: modes --------------------------------------


@pytest.mark.parametrize(
    ("umask", "folder", "file", "obj"),
    [(0o022, 0o755, 0o644, 0o444), (0o077, 0o700, 0o600, 0o400)],
)
def test_fetch_dest_and_cache_honour_the_umask(
    store: S3Bucket, tmp_path: Path, umask: int, folder: int, file: int, obj: int
) -> None:
    cache, dest = tmp_path / "cache", tmp_path / "dest"
    result = fetch(store, cache, "base/1.2", "--dest", dest, umask=umask)
    assert result.returncode == 0, result.stderr

    assert modes(dest) == {
        "checkpoint.pth": file,
        "config.yaml": file,
        "sub": folder,
        "sub/extra.onnx": file,
    }
    version = cache / "versions" / store.name / PREFIX / REF
    assert version.stat().st_mode & 0o777 == folder
    assert modes(version) == {
        "checkpoint.pth": obj,
        "config.yaml": obj,
        "sub": folder,
        "sub/extra.onnx": obj,
    }
    assert {m for p, m in modes(cache).items() if (cache / p).is_dir()} == {folder}


needs_root = pytest.mark.skipif(not can_switch_user(), reason="needs root to act as another user")


@needs_root
def test_a_second_user_of_a_group_writable_cache(store: S3Bucket) -> None:
    with shared_folder() as shared:
        cache = shared / "cache"
        cache.mkdir(mode=0o775)
        os.chmod(cache, 0o2775)  # setgid: everything in it belongs to the team's group (0)
        assert fetch(store, cache, "base/1.2", umask=0o002).returncode == 0
        assert fetch(store, cache, "base/1.3", umask=0o002).returncode == 0
        Cache(cache)._remove_tree(cache / "versions" / store.name / PREFIX / "YOLOX-l/base/1.3")

        other = (NOBODY, 0)
        used = fetch(store, cache, "base/1.2", "--offline", umask=0o002, user=other)
        built = fetch(store, cache, "base/1.3", "--offline", umask=0o002, user=other)

        assert used.returncode == 0, used.stderr
        assert built.returncode == 0, built.stderr  # it built the version folder itself
        assert (cache / "versions" / store.name / PREFIX / "YOLOX-l/base/1.3").stat().st_uid == (
            NOBODY
        )


# --- row 11: a read-only cache, a full disk --------------------------------------------------


@needs_root
def test_read_only_cache_serves_complete_versions_and_explains_the_rest(store: S3Bucket) -> None:
    with shared_folder() as shared:
        cache = shared / "cache"
        assert fetch(store, cache, "base/1.2").returncode == 0
        assert fetch(store, cache, "base/1.3").returncode == 0
        reader = (NOBODY, NOBODY)  # may read the cache, not write it: a read-only mount
        before = modes(cache)
        selected = fetch(store, cache, "base/1", user=reader)  # reads the index, caches nothing
        assert modes(cache) == before
        partial = resolve("base/1.3", root=url(store), cache_dir=cache)
        Cache(cache)._remove_tree(partial.path)
        Cache(cache).object_path(partial.objects["checkpoint.pth"].oid).unlink()
        before = modes(cache)

        offline = fetch(store, cache, "base/1.2", "--offline", user=reader)
        online = fetch(store, cache, "base/1.2", user=reader)
        missing = fetch(store, cache, "base/1.3", "--offline", user=reader)
        refused = fetch(store, cache, "base/1.3", user=reader)

        assert offline.returncode == 0, offline.stderr
        assert online.returncode == 0, online.stderr
        assert selected.returncode == 0, selected.stderr
        assert "YOLOX-l/base/1.3" in selected.stdout
        assert f"{REF}/checkpoint.pth" in offline.stdout
        assert missing.returncode == 1 and "is not in the cache" in missing.stderr
        assert refused.returncode == 1
        assert "this user may not write there" in refused.stderr
        assert "MODEL_REGISTRY_CACHE" in refused.stderr
        for result in (offline, online, selected, missing, refused):
            assert "Traceback" not in result.stderr
        assert modes(cache) == before


@pytest.mark.parametrize("limit", [0, 64 * 1024])
def test_full_disk_is_an_error_that_leaves_no_temporary_files(
    store: S3Bucket, tmp_path: Path, limit: int
) -> None:
    publish_by_hand(store, {REF: files_of("1.2", size=300 * 1024)})
    cache = tmp_path / "cache"

    full = fetch(store, cache, file_size_limit=limit, timeout=60)

    assert full.returncode == 1
    assert "File too large" in full.stderr and "MODEL_REGISTRY_CACHE" in full.stderr, full.stderr
    assert "Traceback" not in full.stderr
    assert leftovers(cache) == []
    assert not any(p.endswith("manifest.json") for p in cached_meta(cache))

    again = fetch(store, cache)  # space freed: the next fetch completes (and resumes)
    assert again.returncode == 0, again.stderr
    assert leftovers(cache) == []
