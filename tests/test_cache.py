"""registry.cache: verified downloads, resume, version folders, use tracking, verify and prune,
and two real processes sharing one cache (no S3: fetching is a fake callable)."""

from __future__ import annotations

import errno
import hashlib
import os
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import registry.cache.fsops
import registry.cache.versions
from registry.cache import Cache
from registry.cache.partial import PartialFile
from registry.errors import CorruptDownload, NotCached, RegistryError
from registry.releases.formats import FileEntry

REPO = Path(__file__).resolve().parents[1]
DATA = bytes(range(256)) * 40  # 10 KiB
OTHER = b"config: {depth: 1.0}\n"
THIRD = b"# README\n" * 100


def oid_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def entry(name: str, data: bytes) -> FileEntry:
    return FileEntry(name=name, oid=oid_of(data), size=len(data))


class FakeFetch:
    """Appends `data[offset:]`; records every offset. `fail_after=n` writes n bytes, then
    raises like a dropped connection (once)."""

    def __init__(self, data: bytes, *, fail_after: int | None = None) -> None:
        self.data = data
        self.fail_after = fail_after
        self.calls: list[int] = []

    def __call__(self, out: PartialFile, offset: int) -> None:
        self.calls.append(offset)
        rest = self.data[offset:]
        if self.fail_after is not None:
            out.write(offset, rest[: self.fail_after])
            self.fail_after = None
            raise ConnectionError("connection reset by peer")
        out.write(offset, rest)


def files_under(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*") if p.is_file()) if path.exists() else []


@pytest.fixture
def cache(tmp_path: Path) -> Cache:
    return Cache(tmp_path / "cache")


def put(cache: Cache, data: bytes) -> Path:
    return cache.ensure(oid_of(data), len(data), FakeFetch(data))


# -- ensure ------------------------------------------------------------------------------------


def test_ensure_fetches_once_verifies_and_stores_read_only(cache: Cache) -> None:
    fetch = FakeFetch(DATA)
    oid = oid_of(DATA)
    assert not cache.has(oid, len(DATA))

    path = cache.ensure(oid, len(DATA), fetch)

    assert fetch.calls == [0]
    assert path == cache.root / "objects" / oid[:2] / oid[2:4] / oid == cache.object_path(oid)
    assert path.read_bytes() == DATA
    assert stat.S_IMODE(path.stat().st_mode) == 0o444
    assert cache.has(oid, len(DATA))
    assert not cache.has(oid, len(DATA) + 1)
    assert files_under(cache.root / "partial") == []
    assert (cache.root / "CACHEDIR.TAG").read_bytes().startswith(b"Signature: 8a477f597d28d172")

    assert cache.ensure(oid, len(DATA), fetch) == path
    assert fetch.calls == [0]  # a cache hit does not fetch


def test_ensure_empty_object(cache: Cache) -> None:
    path = cache.ensure(oid_of(b""), 0, FakeFetch(b""))
    assert path.read_bytes() == b""


def test_wrong_bytes_raise_corrupt_download_and_cache_nothing(cache: Cache) -> None:
    oid = oid_of(DATA)
    wrong = DATA[:-1] + b"\x00"  # same size, one byte off
    with pytest.raises(CorruptDownload) as info:
        cache.ensure(oid, len(DATA), FakeFetch(wrong))

    error = info.value
    assert isinstance(error, RegistryError)
    assert oid in str(error) and "store's copy may be corrupt" in str(error)
    assert (error.oid, error.expected_size, error.actual_size) == (oid, len(DATA), len(DATA))
    assert error.actual_sha256 == oid_of(wrong)
    assert files_under(cache.root / "objects") == []
    assert files_under(cache.root / "partial") == []
    assert not cache.has(oid, len(DATA))


@pytest.mark.parametrize("served", [DATA[:-10], DATA + b"extra"], ids=["short", "long"])
def test_wrong_size_raises_corrupt_download(cache: Cache, served: bytes) -> None:
    oid = oid_of(DATA)
    with pytest.raises(CorruptDownload, match=f"expected {len(DATA)} bytes") as info:
        cache.ensure(oid, len(DATA), FakeFetch(served))
    assert info.value.actual_size == len(served)
    assert files_under(cache.root / "objects") == []
    assert files_under(cache.root / "partial") == []


def test_interrupted_download_resumes_from_the_partial(cache: Cache) -> None:
    half = len(DATA) // 2
    oid = oid_of(DATA)
    fetch = FakeFetch(DATA, fail_after=half)

    with pytest.raises(ConnectionError):
        cache.ensure(oid, len(DATA), fetch)
    partial = cache.root / "partial" / f"{oid}.partial"
    assert partial.stat().st_size == half
    assert files_under(cache.root / "objects") == []

    path = cache.ensure(oid, len(DATA), fetch)  # the lock was released by the failure

    assert fetch.calls == [0, half]
    assert path.read_bytes() == DATA
    assert not partial.exists()


def test_complete_partial_is_verified_without_fetching(cache: Cache) -> None:
    oid = oid_of(DATA)
    partial = cache.root / "partial" / f"{oid}.partial"
    partial.parent.mkdir(parents=True)
    partial.write_bytes(DATA)  # downloaded, then the process died before the rename
    fetch = FakeFetch(DATA)

    assert cache.ensure(oid, len(DATA), fetch).read_bytes() == DATA
    assert fetch.calls == []


def test_partial_longer_than_the_object_is_discarded(cache: Cache) -> None:
    oid = oid_of(DATA)
    partial = cache.root / "partial" / f"{oid}.partial"
    partial.parent.mkdir(parents=True)
    partial.write_bytes(DATA + b"junk")
    fetch = FakeFetch(DATA)

    assert cache.ensure(oid, len(DATA), fetch).read_bytes() == DATA
    assert fetch.calls == [0]


def test_corrupt_partial_gets_one_retry_from_the_start(cache: Cache) -> None:
    half = len(DATA) // 2
    oid = oid_of(DATA)
    partial = cache.root / "partial" / f"{oid}.partial"
    partial.parent.mkdir(parents=True)
    partial.write_bytes(b"\xff" * half)  # the kept bytes are the bad ones
    fetch = FakeFetch(DATA)

    assert cache.ensure(oid, len(DATA), fetch).read_bytes() == DATA
    assert fetch.calls == [half, 0]


def test_corrupt_store_copy_after_the_retry_raises(cache: Cache) -> None:
    half = len(DATA) // 2
    oid = oid_of(DATA)
    partial = cache.root / "partial" / f"{oid}.partial"
    partial.parent.mkdir(parents=True)
    partial.write_bytes(DATA[:half])
    fetch = FakeFetch(DATA[:-1] + b"\x00")

    with pytest.raises(CorruptDownload):
        cache.ensure(oid, len(DATA), fetch)
    assert fetch.calls == [half, 0]
    assert files_under(cache.root / "objects") == []
    assert not partial.exists()


@pytest.mark.parametrize("oid", ["", "abc", oid_of(b"x").upper(), "../" + oid_of(b"x")[3:]])
def test_invalid_oid_is_rejected(cache: Cache, oid: str) -> None:
    with pytest.raises(ValueError, match="64 lowercase hex digits"):
        cache.ensure(oid, 1, FakeFetch(b"x"))
    with pytest.raises(ValueError):
        cache.object_path(oid)


def test_negative_size_is_rejected(cache: Cache) -> None:
    with pytest.raises(ValueError, match="negative"):
        cache.ensure(oid_of(b"x"), -1, FakeFetch(b"x"))


# -- metadata ----------------------------------------------------------------------------------


def test_meta_round_trip(cache: Cache) -> None:
    key = "YOLOX-l/base/1.2/manifest.json"
    assert cache.read_meta(key) is None
    cache.write_meta(key, b'{"a": 1}')
    cache.write_meta(key, b'{"a": 2}')
    cache.write_meta("YOLOX-l/index.json", b"{}")

    assert cache.read_meta(key) == b'{"a": 2}'
    assert (cache.root / "releases" / key).read_bytes() == b'{"a": 2}'
    assert cache.read_meta("YOLOX-l/index.json") == b"{}"
    assert list((cache.root / "tmp").iterdir()) == []


@pytest.mark.parametrize("key", ["", "/etc/passwd", "a/../b", "a//b", ".", "a/", "a\\b"])
def test_bad_meta_keys_are_rejected(cache: Cache, key: str) -> None:
    with pytest.raises(ValueError, match="not a relative"):
        cache.write_meta(key, b"x")
    with pytest.raises(ValueError):
        cache.read_meta(key)


# -- version folders ---------------------------------------------------------------------------

FILES = (
    entry("checkpoint.pth", DATA),
    entry("config.yaml", OTHER),
    entry("onnx/model.onnx", THIRD),
)


def cached(cache: Cache, *datas: bytes) -> None:
    for data in datas:
        put(cache, data)


def test_version_dir_links_files_by_name(cache: Cache) -> None:
    cached(cache, DATA, OTHER, THIRD)

    folder = cache.version_dir("YOLOX-l/base/1.2", FILES)

    assert folder == cache.root / "versions" / "YOLOX-l" / "base" / "1.2"
    assert sorted(p.relative_to(folder).as_posix() for p in files_under(folder)) == [
        "checkpoint.pth",
        "config.yaml",
        "onnx/model.onnx",
    ]
    for f, data in zip(FILES, (DATA, OTHER, THIRD), strict=True):
        linked = folder / f.name
        assert linked.read_bytes() == data
        assert linked.stat().st_ino == cache.object_path(f.oid).stat().st_ino  # a hard link
        assert stat.S_IMODE(linked.stat().st_mode) == 0o444
    assert list((cache.root / "tmp").iterdir()) == []


def test_version_dir_is_idempotent(cache: Cache) -> None:
    cached(cache, DATA, OTHER, THIRD)
    first = cache.version_dir("YOLOX-l/base/1.2", FILES)
    inode = first.stat().st_ino

    again = cache.version_dir("YOLOX-l/base/1.2", list(reversed(FILES)))

    assert again == first
    assert again.stat().st_ino == inode  # the same folder, not a rebuilt one


def test_damaged_version_dir_is_rebuilt(cache: Cache) -> None:
    cached(cache, DATA, OTHER, THIRD)
    folder = cache.version_dir("YOLOX-l/base/1.2", FILES)
    (folder / "config.yaml").unlink()
    (folder / "stray.txt").write_text("x")

    folder = cache.version_dir("YOLOX-l/base/1.2", FILES)

    assert (folder / "config.yaml").read_bytes() == OTHER
    assert not (folder / "stray.txt").exists()


def test_version_dir_copies_where_hard_links_fail(
    cache: Cache, monkeypatch: pytest.MonkeyPatch
) -> None:
    cached(cache, DATA, OTHER, THIRD)

    def no_links(src: object, dst: object) -> None:
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", no_links)
    folder = cache.version_dir("YOLOX-l/base/1.2", FILES)

    copy = folder / "checkpoint.pth"
    assert copy.read_bytes() == DATA
    assert copy.stat().st_ino != cache.object_path(FILES[0].oid).stat().st_ino
    assert stat.S_IMODE(copy.stat().st_mode) == 0o444
    assert cache.version_dir("YOLOX-l/base/1.2", FILES) == folder


def test_version_dir_uses_a_folder_another_process_renamed_first(
    cache: Cache, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Lose the race deterministically: the other builder finishes while we are linking."""
    cached(cache, DATA, OTHER, THIRD)
    original: Callable[[Path, Path], None] = registry.cache.fsops.link_or_copy
    other = Cache(cache.root)
    started: list[bool] = []
    raced: list[Path] = []

    def link_and_race(source: Path, dest: Path) -> None:
        if not started:
            started.append(True)  # the other builder links with the real function
            raced.append(other.version_dir("YOLOX-l/base/1.2", FILES))
        original(source, dest)

    monkeypatch.setattr(registry.cache.versions, "link_or_copy", link_and_race)
    folder = cache.version_dir("YOLOX-l/base/1.2", FILES)

    assert raced == [folder]
    assert (folder / "onnx" / "model.onnx").read_bytes() == THIRD
    assert list((cache.root / "tmp").iterdir()) == []


def test_version_dir_needs_the_objects(cache: Cache) -> None:
    cached(cache, DATA, OTHER)
    with pytest.raises(NotCached, match=r"onnx/model.onnx.*Cache.ensure") as info:
        cache.version_dir("YOLOX-l/base/1.2", FILES)
    assert isinstance(info.value, LookupError)
    assert info.value.oid == FILES[2].oid
    assert not cache.version_path("YOLOX-l/base/1.2").exists()


def test_version_dir_rejects_clashing_names_and_nested_keys(cache: Cache) -> None:
    cached(cache, DATA, OTHER)
    with pytest.raises(ValueError, match="more than once"):
        cache.version_dir("M-x/base/1.0", [entry("a", DATA), entry("a", OTHER)])
    with pytest.raises(ValueError, match="also folders"):
        cache.version_dir("M-x/base/1.0", [entry("a", DATA), entry("a/b", OTHER)])
    cache.version_dir("M-x/base/1.0", [entry("a", DATA)])
    with pytest.raises(ValueError, match="inside version 'M-x/base/1.0'"):
        cache.version_dir("M-x/base/1.0/sub", [entry("a", DATA)])
    with pytest.raises(ValueError, match="would hold other version folders"):
        cache.version_dir("M-x/base", [entry("a", DATA)])


# -- Cache.at ----------------------------------------------------------------------------------


def test_at_argument_wins_over_everything(tmp_path: Path) -> None:
    environ = {"MODEL_REGISTRY_CACHE": "/env", "XDG_CACHE_HOME": "/xdg", "HOME": "/home/u"}
    assert Cache.at(tmp_path / "arg", environ).root == tmp_path / "arg"
    assert Cache.at(str(tmp_path / "arg"), environ).root == tmp_path / "arg"
    assert Cache.at("~/models", environ).root == Path("/home/u/models")


def test_at_environment_variable_then_xdg_then_home() -> None:
    home = {"HOME": "/home/u"}
    xdg = {**home, "XDG_CACHE_HOME": "/xdg"}
    env = {**xdg, "MODEL_REGISTRY_CACHE": "/srv/models"}
    assert Cache.at(None, env).root == Path("/srv/models")
    assert Cache.at(None, xdg).root == Path("/xdg/model-registry")
    assert Cache.at(None, home).root == Path("/home/u/.cache/model-registry")
    # Empty values count as unset; a relative XDG_CACHE_HOME is ignored (XDG spec).
    empty = {"HOME": "/home/u", "MODEL_REGISTRY_CACHE": "", "XDG_CACHE_HOME": "rel"}
    assert Cache.at(None, empty).root == Path("/home/u/.cache/model-registry")
    assert Cache.at("", env).root == Path("/srv/models")
    assert Cache.at(None, {**home, "MODEL_REGISTRY_CACHE": "~/c"}).root == Path("/home/u/c")


def test_at_reads_os_environ_by_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MODEL_REGISTRY_CACHE", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert Cache.at().root == tmp_path / "home" / ".cache" / "model-registry"

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert Cache.at().root == tmp_path / "xdg" / "model-registry"

    monkeypatch.setenv("MODEL_REGISTRY_CACHE", str(tmp_path / "env"))
    assert Cache.at().root == tmp_path / "env"
    assert Cache.at(tmp_path / "arg").root == tmp_path / "arg"

    monkeypatch.chdir(tmp_path)
    assert Cache.at("relative").root == tmp_path / "relative"
    assert not (tmp_path / "env").exists()  # choosing a cache creates nothing


# -- entries, use tracking, verify, prune ------------------------------------------------------


def test_entries_list_objects_use_and_versions(cache: Cache) -> None:
    cached(cache, DATA, OTHER, THIRD)
    cache.version_dir("YOLOX-l/base/1.2", FILES)
    cache.version_dir("YOLOX-l/base/1.3", [entry("config.yaml", OTHER)])
    cache.mark_used(FILES[0].oid, at=1_000_000.0)

    by_oid = {e.oid: e for e in cache.entries()}

    assert set(by_oid) == {f.oid for f in FILES}
    assert by_oid[FILES[0].oid].size == len(DATA)
    assert by_oid[FILES[0].oid].path == cache.object_path(FILES[0].oid)
    assert by_oid[FILES[0].oid].last_used == 1_000_000.0
    assert by_oid[FILES[0].oid].versions == ("YOLOX-l/base/1.2",)
    assert by_oid[FILES[1].oid].versions == ("YOLOX-l/base/1.2", "YOLOX-l/base/1.3")
    assert time.time() - by_oid[FILES[1].oid].last_used < 60


def test_a_cache_hit_records_use(cache: Cache) -> None:
    oid = oid_of(DATA)
    put(cache, DATA)
    cache.mark_used(oid, at=1_000_000.0)
    put(cache, DATA)
    used = cache.last_used(oid)
    assert used is not None and time.time() - used < 60


def test_verify_removes_a_corrupt_object_and_its_versions(cache: Cache) -> None:
    cached(cache, DATA, OTHER, THIRD)
    cache.version_dir("YOLOX-l/base/1.2", FILES)
    cache.version_dir("YOLOX-l/base/1.3", [entry("config.yaml", OTHER)])
    assert cache.verify() == []

    bad = cache.object_path(FILES[0].oid)
    bad.chmod(0o644)
    with bad.open("r+b") as f:
        f.seek(100)
        f.write(b"\xff" if DATA[100:101] != b"\xff" else b"\x00")

    assert cache.verify() == [FILES[0].oid]
    assert not bad.exists()
    assert not cache.version_path("YOLOX-l/base/1.2").exists()
    assert (cache.version_path("YOLOX-l/base/1.3") / "config.yaml").read_bytes() == OTHER
    assert not cache.has(FILES[0].oid, len(DATA))
    fetch = FakeFetch(DATA)
    assert cache.ensure(FILES[0].oid, len(DATA), fetch).read_bytes() == DATA
    assert fetch.calls == [0]  # downloaded again


def test_verify_removes_a_version_with_a_corrupt_copy(
    cache: Cache, monkeypatch: pytest.MonkeyPatch
) -> None:
    cached(cache, DATA, OTHER, THIRD)

    def no_links(src: object, dst: object) -> None:
        raise OSError(errno.EMLINK, "Too many links")

    monkeypatch.setattr(os, "link", no_links)
    folder = cache.version_dir("YOLOX-l/base/1.2", FILES)
    copy = folder / "config.yaml"
    copy.chmod(0o644)
    copy.write_bytes(OTHER.upper())

    assert cache.verify() == []  # the objects are fine
    assert not folder.exists()
    assert cache.version_dir("YOLOX-l/base/1.2", FILES) == folder
    assert copy.read_bytes() == OTHER


def test_prune_keeps_what_it_is_told(cache: Cache) -> None:
    cached(cache, DATA, OTHER, THIRD)
    cache.version_dir("YOLOX-l/base/1.2", FILES)
    cache.version_dir("YOLOX-l/base/1.3", [entry("config.yaml", OTHER)])

    removed = cache.prune(keep={FILES[1].oid})

    assert removed == sorted([FILES[0].oid, FILES[2].oid])
    assert [e.oid for e in cache.entries()] == [FILES[1].oid]
    assert not cache.version_path("YOLOX-l/base/1.2").exists()
    assert not (cache.root / "links" / "YOLOX-l" / "base" / "1.2.json").exists()
    assert cache.entries()[0].versions == ("YOLOX-l/base/1.3",)
    assert cache.prune(keep={FILES[1].oid}) == []

    assert cache.prune() == [FILES[1].oid]
    assert cache.entries() == []
    assert files_under(cache.root / "versions") == []


def test_prune_older_than_keeps_what_was_used_recently(cache: Cache) -> None:
    cached(cache, DATA, OTHER)
    old, recent = oid_of(DATA), oid_of(OTHER)
    cache.mark_used(old, at=time.time() - 3600)

    assert cache.prune(older_than=60) == [old]
    assert cache.has(recent, len(OTHER))
    assert cache.prune(older_than=60) == []


def test_prune_clears_leftovers_of_crashed_processes(cache: Cache) -> None:
    oid = oid_of(DATA)
    with pytest.raises(ConnectionError):
        cache.ensure(oid, len(DATA), FakeFetch(DATA, fail_after=10))
    (cache.root / "tmp" / "version-crashed" / "sub").mkdir(parents=True)

    assert cache.prune(keep={oid}) == []
    assert (cache.root / "partial" / f"{oid}.partial").exists()  # kept: it may resume

    assert cache.prune() == []
    assert files_under(cache.root / "partial") == []
    assert list((cache.root / "tmp").iterdir()) == []


# -- two processes -----------------------------------------------------------------------------

CHILD = r"""
import hashlib, os, sys, time
from pathlib import Path
from registry.cache import Cache
from registry.releases.formats import FileEntry

root, mode, calls, ready, go = sys.argv[1:6]
datas = [Path(p).read_bytes() for p in sys.argv[6:]]
cache = Cache(Path(root))

def fetch(out, offset: int) -> None:
    with open(calls, "a") as log:
        log.write(f"{os.getpid()} {offset}\n")
    time.sleep(0.5)  # a slow download: the other process must wait for it, not repeat it
    out.write(offset, datas[0][offset:])

Path(ready).touch()
deadline = time.monotonic() + 20
while not Path(go).exists():
    if time.monotonic() > deadline:
        sys.exit("the parent never said go")
    time.sleep(0.002)

if mode == "ensure":
    print(cache.ensure(hashlib.sha256(datas[0]).hexdigest(), len(datas[0]), fetch))
else:
    files = [
        FileEntry(name=f"dir{i % 2}/file{i}", oid=hashlib.sha256(d).hexdigest(), size=len(d))
        for i, d in enumerate(datas)
    ]
    for k in range(15):
        print(cache.version_dir(f"M-x/base/1.{k}", files))
"""


def run_together(tmp_path: Path, cache: Cache, mode: str, datas: list[bytes], n: int) -> list[str]:
    """Start n processes, release them at the same moment, return each one's stdout."""
    paths = []
    for i, data in enumerate(datas):
        path = tmp_path / f"data{i}"
        path.write_bytes(data)
        paths.append(str(path))
    go = tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, str(cache.root), mode, str(tmp_path / "calls")]
            + [str(tmp_path / f"ready{i}"), str(go), *paths],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=REPO,
        )
        for i in range(n)
    ]
    try:
        deadline = time.monotonic() + 20
        while not all((tmp_path / f"ready{i}").exists() for i in range(n)):
            assert time.monotonic() < deadline, "the children did not start"
            assert all(c.poll() is None for c in children), "a child died early"
            time.sleep(0.005)
        go.touch()
        outputs = []
        for child in children:
            out, err = child.communicate(timeout=30)
            assert child.returncode == 0, err.decode()
            outputs.append(out.decode())
        return outputs
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()


def test_two_processes_download_an_object_once(tmp_path: Path, cache: Cache) -> None:
    outputs = run_together(tmp_path, cache, "ensure", [DATA], n=2)

    calls = (tmp_path / "calls").read_text().splitlines()
    assert len(calls) == 1 and calls[0].endswith(" 0")  # exactly one fetch, from the start
    expected = str(cache.object_path(oid_of(DATA)))
    assert [o.strip() for o in outputs] == [expected, expected]
    assert Path(expected).read_bytes() == DATA
    assert files_under(cache.root / "partial") == []


def test_processes_build_the_same_version_folders_at_once(tmp_path: Path, cache: Cache) -> None:
    datas = [DATA, OTHER, THIRD]
    cached(cache, *datas)

    outputs = run_together(tmp_path, cache, "version", datas, n=3)

    folders = [o.split() for o in outputs]
    assert folders[0] == folders[1] == folders[2]
    assert len(folders[0]) == 15
    for folder in map(Path, folders[0]):
        for i, data in enumerate(datas):
            linked = folder / f"dir{i % 2}" / f"file{i}"
            assert linked.read_bytes() == data
            assert linked.stat().st_ino == cache.object_path(oid_of(data)).stat().st_ino
        assert len(files_under(folder)) == 3
    assert list((cache.root / "tmp").iterdir()) == []
    assert not (tmp_path / "calls").exists()  # nothing was fetched
