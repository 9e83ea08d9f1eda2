"""Resolving published versions from S3 alone, through the verified cache (moto server)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from mypy_boto3_s3.client import S3Client

from devtools.s3servers import S3Bucket, free_port
from registry import NotFound, resolve
from registry.cache import Cache
from registry.cache.partial import PartialFile
from registry.errors import OfflineMiss, StoreObjectMismatch
from registry.releases.formats import FileEntry, RemoteRoot
from registry.releases.remote import RemoteRegistry
from registry.releases.s3fetch import TransferSettings
from tests.s3releases import PREFIX, files_of, publish_by_hand, put, url

MiB = 1024 * 1024


@pytest.fixture
def published(moto_s3: S3Bucket, monkeypatch: pytest.MonkeyPatch) -> dict[str, dict[str, bytes]]:
    for key, value in moto_s3.server.env().items():
        monkeypatch.setenv(key, value)
    return publish_by_hand(
        moto_s3,
        {
            "YOLOX-l/base/1.9": files_of("1.9"),
            "YOLOX-l/base/1.10": files_of("1.10"),
            "YOLOX-l/base/2.0": files_of("2.0"),
            "YOLOX-l/projectA/1.10.0": files_of("p"),
        },
    )


def get_ranges(client: S3Client) -> list[str]:
    """The Range header of every GetObject the client sends from now on ('' for a whole GET)."""
    ranges: list[str] = []
    client.meta.events.register(
        "provide-client-params.s3.GetObject",
        lambda params, **_: ranges.append(params.get("Range", "")),
    )
    return ranges


def test_resolve_every_selector_kind(
    moto_s3: S3Bucket, published: dict[str, dict[str, bytes]], tmp_path: Path
) -> None:
    for spec, want in [
        ("base/1", "YOLOX-l/base/1.10"),
        ("base/latest", "YOLOX-l/base/2.0"),
        ("base/1.9", "YOLOX-l/base/1.9"),
        ("projectA/1.10", "YOLOX-l/projectA/1.10.0"),
        ("YOLOX-l/projectA/latest", "YOLOX-l/projectA/1.10.0"),
    ]:
        result = resolve(spec, root=url(moto_s3), cache_dir=tmp_path / "cache")
        assert str(result.ref) == want
        for name, data in published[want].items():
            assert result.files[name].read_bytes() == data
            assert result.objects[name].oid == hashlib.sha256(data).hexdigest()
        assert result.commit == "c0ffee" * 6 + "abcd"
        assert result.path.is_dir()
    # the registry's root with the model in the selector works the same
    whole = resolve(
        "YOLOX-l/base/1", root=f"s3://{moto_s3.name}/{PREFIX}", cache_dir=tmp_path / "cache"
    )
    assert str(whole.ref) == "YOLOX-l/base/1.10"


def test_missing_version_lists_what_is_published(
    moto_s3: S3Bucket, published: dict[str, dict[str, bytes]], tmp_path: Path
) -> None:
    with pytest.raises(NotFound, match=r"available: 1\.9, 1\.10, 2\.0"):
        resolve("base/3", root=url(moto_s3), cache_dir=tmp_path)
    with pytest.raises(NotFound, match="1.9, 1.10, 2.0"):
        resolve("base/1.11", root=url(moto_s3), cache_dir=tmp_path)
    with pytest.raises(NotFound, match="not published.*model-registry publish"):
        resolve("base/1", root=url(moto_s3, "Other-x"), cache_dir=tmp_path)


def test_cached_exact_version_makes_no_request(
    moto_s3: S3Bucket,
    published: dict[str, dict[str, bytes]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first = resolve("base/1.9", root=url(moto_s3), cache_dir=tmp_path)
    # Point S3 at a port where nothing listens: any request would now fail.
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    again = resolve("base/1.9", root=url(moto_s3), cache_dir=tmp_path)
    assert again.files == first.files
    assert (
        again.files["checkpoint.pth"].read_bytes()
        == published["YOLOX-l/base/1.9"]["checkpoint.pth"]
    )


def test_offline_with_and_without_cached_data(
    moto_s3: S3Bucket,
    published: dict[str, dict[str, bytes]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(OfflineMiss, match="offline.*resolve it once online"):
        resolve("base/1", root=url(moto_s3), cache_dir=tmp_path, offline=True)
    online = resolve("base/1", root=url(moto_s3), cache_dir=tmp_path)
    monkeypatch.setenv("MODEL_REGISTRY_OFFLINE", "1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    offline = resolve("base/1", root=url(moto_s3), cache_dir=tmp_path)
    assert offline.ref == online.ref and offline.files == online.files
    with pytest.raises(OfflineMiss, match=r"YOLOX-l/base/2\.0 is not cached"):
        resolve("base/2", root=url(moto_s3), cache_dir=tmp_path)


def test_corrupt_object_in_store_is_refused_and_nothing_corrupt_is_cached(
    moto_s3: S3Bucket, published: dict[str, dict[str, bytes]], tmp_path: Path
) -> None:
    data = published["YOLOX-l/base/2.0"]["checkpoint.pth"]
    oid = hashlib.sha256(data).hexdigest()
    put(
        moto_s3,
        RemoteRoot(bucket=moto_s3.name, prefix=PREFIX).object_key(oid),
        data[:-1] + bytes([data[-1] ^ 1]),
    )
    with pytest.raises(Exception, match=oid):
        resolve("base/2.0", root=url(moto_s3), cache_dir=tmp_path)
    cache = Cache(tmp_path)
    assert not cache.has(oid, len(data))
    assert not cache.object_path(oid).exists()


def test_interrupted_download_resumes_from_the_partial(
    moto_s3: S3Bucket, published: dict[str, dict[str, bytes]], tmp_path: Path
) -> None:
    data = published["YOLOX-l/base/1.10"]["checkpoint.pth"]
    entry = FileEntry(name="checkpoint.pth", oid=hashlib.sha256(data).hexdigest(), size=len(data))
    client = moto_s3.server.client()
    ranges = get_ranges(client)
    remote = RemoteRegistry(
        RemoteRoot(bucket=moto_s3.name, prefix=PREFIX),
        Cache(tmp_path),
        client_factory=lambda: client,
    )
    state = {"calls": 0}
    original = remote._download

    def interrupted(key: str, out: PartialFile, offset: int) -> None:
        state["calls"] += 1
        if state["calls"] == 1:
            out.write(0, data[: len(data) // 2])  # half arrived, then the connection dropped
            raise ConnectionResetError("simulated: the connection dropped")
        original(key, out, offset)

    remote._download = interrupted  # type: ignore[method-assign]
    with pytest.raises(ConnectionResetError):
        remote.fetch_object(entry)
    path = remote.fetch_object(entry)
    assert path.read_bytes() == data
    assert ranges == [f"bytes={len(data) // 2}-{len(data) - 1}"]


def test_two_processes_download_a_large_object_once(
    seaweed_s3: S3Bucket, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in seaweed_s3.server.env().items():
        monkeypatch.setenv(key, value)
    big = os.urandom(64 * MiB)
    publish_by_hand(seaweed_s3, {"YOLOX-l/base/1.0": {"checkpoint.pth": big}})
    log = tmp_path / "downloads.log"
    script = (
        "import sys; from registry import resolve; from registry.releases import remote as r\n"
        "orig = r.RemoteRegistry._download\n"
        "def logged(self, key, partial, offset):\n"
        f"    open({str(log)!r}, 'a').write(key + '\\n')\n"
        "    orig(self, key, partial, offset)\n"
        "r.RemoteRegistry._download = logged\n"
        f"m = resolve('base/1.0', root={url(seaweed_s3)!r}, cache_dir={str(tmp_path / 'c')!r})\n"
        "print(m.files['checkpoint.pth'])\n"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=dict(os.environ)
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=120)[0].strip() for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    for out in outputs:
        assert Path(out).read_bytes() == big
    assert len(log.read_text().splitlines()) == 1


def test_corrupt_cache_entry_is_found_by_verify_and_fetched_again(
    moto_s3: S3Bucket, published: dict[str, dict[str, bytes]], tmp_path: Path
) -> None:
    from click.testing import CliRunner

    from registry.cli import cli

    first = resolve("base/2.0", root=url(moto_s3), cache_dir=tmp_path)
    data = published["YOLOX-l/base/2.0"]["checkpoint.pth"]
    oid = first.objects["checkpoint.pth"].oid
    damaged = Cache(tmp_path).object_path(oid)
    damaged.chmod(0o644)
    damaged.write_bytes(b"X" + data[1:])
    result = CliRunner().invoke(cli, ["cache", "verify", "--cache-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert f"corrupt, removed: {oid}" in result.stdout
    again = resolve("base/2.0", root=url(moto_s3), cache_dir=tmp_path)
    assert again.files["checkpoint.pth"].read_bytes() == data
    clean = CliRunner().invoke(cli, ["cache", "verify", "--cache-dir", str(tmp_path)])
    assert clean.exit_code == 0


def test_large_object_comes_in_parallel_ranges(
    seaweed_s3: S3Bucket, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in seaweed_s3.server.env().items():
        monkeypatch.setenv(key, value)
    big = os.urandom(40 * MiB + 123)
    publish_by_hand(seaweed_s3, {"YOLOX-l/base/1.0": {"checkpoint.pth": big}})
    client = seaweed_s3.server.client(max_pool_connections=8)
    ranges = get_ranges(client)
    remote = RemoteRegistry(
        RemoteRoot(bucket=seaweed_s3.name, prefix=PREFIX),
        Cache(tmp_path),
        client_factory=lambda: client,
        transfer=TransferSettings(part_size=8 * MiB, concurrency=4),
    )
    model = remote.resolve("YOLOX-l/base/1.0")
    assert model.files["checkpoint.pth"].read_bytes() == big
    starts = sorted(int(r.removeprefix("bytes=").split("-")[0]) for r in ranges if r)
    assert starts == list(range(0, len(big), 8 * MiB))  # 6 parts, each fetched once
    assert list((tmp_path / "partial").iterdir()) == []


def test_killed_download_resumes_in_the_next_process(
    seaweed_s3: S3Bucket, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in seaweed_s3.server.env().items():
        monkeypatch.setenv(key, value)
    big = os.urandom(48 * MiB)
    publish_by_hand(seaweed_s3, {"YOLOX-l/base/1.0": {"checkpoint.pth": big}})
    cache_dir = tmp_path / "cache"
    script = (
        "import os, signal\n"
        "from registry.cache import Cache\n"
        "from registry.releases.formats import RemoteRoot\n"
        "from registry.releases.remote import RemoteRegistry\n"
        "from registry.releases.s3fetch import TransferSettings\n"
        "seen = [0]\n"
        "def progress(n):\n"
        "    seen[0] += n\n"
        "    if seen[0] >= 30 * 2**20:\n"
        "        os.kill(os.getpid(), signal.SIGKILL)  # the laptop lid closes\n"
        f"remote = RemoteRegistry(RemoteRoot(bucket={seaweed_s3.name!r}, prefix={PREFIX!r}),\n"
        f"    Cache({str(cache_dir)!r}), progress=progress,\n"
        "    transfer=TransferSettings(part_size=4 * 2**20, concurrency=2))\n"
        "remote.resolve('YOLOX-l/base/1.0')\n"
    )
    killed = subprocess.run([sys.executable, "-c", script], env=dict(os.environ), check=False)
    assert killed.returncode == -9
    oid = hashlib.sha256(big).hexdigest()
    kept = int((cache_dir / "partial" / f"{oid}.partial.upto").read_text())
    assert kept >= 16 * MiB  # most of what arrived is kept (recorded every few MiB)
    assert not Cache(cache_dir).has(oid, len(big))

    client = seaweed_s3.server.client()
    ranges = get_ranges(client)
    model = RemoteRegistry(
        RemoteRoot(bucket=seaweed_s3.name, prefix=PREFIX),
        Cache(cache_dir),
        client_factory=lambda: client,
    ).resolve("YOLOX-l/base/1.0")
    assert model.files["checkpoint.pth"].read_bytes() == big
    starts = [int(r.removeprefix("bytes=").split("-")[0]) for r in ranges if r]
    assert starts and min(starts) == kept  # only the rest was fetched
    assert list((cache_dir / "partial").iterdir()) == []


def test_store_object_of_the_wrong_size_is_refused(
    moto_s3: S3Bucket, published: dict[str, dict[str, bytes]], tmp_path: Path
) -> None:
    data = published["YOLOX-l/base/1.9"]["checkpoint.pth"]
    oid = hashlib.sha256(data).hexdigest()
    root = RemoteRoot(bucket=moto_s3.name, prefix=PREFIX)
    put(moto_s3, root.object_key(oid), data + b"appended")  # replaced behind our back
    with pytest.raises(StoreObjectMismatch, match=f"has {len(data) + 8} bytes, but the manifest"):
        resolve("base/1.9", root=url(moto_s3), cache_dir=tmp_path)
    assert not Cache(tmp_path).object_path(oid).exists()
