"""Git LFS pointer parsing: a table of files, hypothesis properties, and git-lfs's own output."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from registry.errors import InvalidReference
from registry.repo.pointer import MAX_POINTER_SIZE, LfsPointer, parse_pointer, read_pointer

OID = "4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393"
OID2 = "a" * 64
V1 = "version https://git-lfs.github.com/spec/v1\n"
HAWSER = "version https://hawser.github.com/spec/v1\n"
CANONICAL = f"{V1}oid sha256:{OID}\nsize 12345\n"

VALID: list[tuple[str, str, LfsPointer]] = [
    ("canonical", CANONICAL, LfsPointer(OID, 12345)),
    ("empty object", f"{V1}oid sha256:{OID}\nsize 0\n", LfsPointer(OID, 0)),
    ("int64 max", f"{V1}oid sha256:{OID}\nsize {2**63 - 1}\n", LfsPointer(OID, 2**63 - 1)),
    ("legacy hawser url", f"{HAWSER}oid sha256:{OID}\nsize 1\n", LfsPointer(OID, 1)),
    (
        "alpha git-media url",
        f"version http://git-media.io/v/2\noid sha256:{OID}\nsize 1\n",
        LfsPointer(OID, 1),
    ),
    (
        "extensions",
        f"{V1}ext-0-foo sha256:{OID2}\next-1-bar.x sha256:{OID2}\noid sha256:{OID}\nsize 5\n",
        LfsPointer(OID, 5, (("ext-0-foo", f"sha256:{OID2}"), ("ext-1-bar.x", f"sha256:{OID2}"))),
    ),
]

INVALID: list[tuple[str, bytes]] = [
    ("empty", b""),
    ("CRLF line endings", CANONICAL.replace("\n", "\r\n").encode()),
    ("CR before the last LF only", CANONICAL[:-1].encode() + b"\r\n"),
    ("no final newline", CANONICAL[:-1].encode()),
    ("blank line at the end", CANONICAL.encode() + b"\n"),
    ("blank line inside", CANONICAL.replace("\noid", "\n\noid").encode()),
    ("leading whitespace", b" " + CANONICAL.encode()),
    ("oid too short", CANONICAL.replace(OID, OID[:-1]).encode()),
    ("oid too long", CANONICAL.replace(OID, OID + "0").encode()),
    ("oid uppercase", CANONICAL.replace(OID, OID.upper()).encode()),
    ("oid not hex", CANONICAL.replace(OID, "g" * 64).encode()),
    ("oid other hash", CANONICAL.replace("sha256:", "sha512:").encode()),
    ("oid without method", CANONICAL.replace("sha256:", "").encode()),
    ("negative size", CANONICAL.replace("12345", "-1").encode()),
    ("plus sign", CANONICAL.replace("12345", "+1").encode()),
    ("leading zero", CANONICAL.replace("12345", "012345").encode()),
    ("size beyond int64", CANONICAL.replace("12345", str(2**63)).encode()),
    ("size not a number", CANONICAL.replace("12345", "12k").encode()),
    ("non-ASCII digits", CANONICAL.replace("12345", "١٢").encode()),
    ("two spaces", CANONICAL.replace("size ", "size  ").encode()),
    ("tab separator", CANONICAL.replace("size ", "size\t").encode()),
    ("trailing space", CANONICAL.replace("12345", "12345 ").encode()),
    ("missing version", f"oid sha256:{OID}\nsize 1\n".encode()),
    ("missing oid", f"{V1}size 1\n".encode()),
    ("missing size", f"{V1}oid sha256:{OID}\n".encode()),
    ("unknown version", CANONICAL.replace("/v1", "/v2").encode()),
    ("version with another case", CANONICAL.replace("https", "HTTPS").encode()),
    ("keys out of order", f"{V1}size 1\noid sha256:{OID}\n".encode()),
    ("version not first", f"oid sha256:{OID}\n{V1}size 1\n".encode()),
    ("duplicate size", (CANONICAL + "size 1\n").encode()),
    ("extra junk line", (CANONICAL + "junk\n").encode()),
    ("unknown key", (CANONICAL + "zzz 1\n").encode()),
    ("extension after oid", f"{V1}oid sha256:{OID}\next-0-foo sha256:{OID2}\nsize 1\n".encode()),
    (
        "extensions out of order",
        f"{V1}ext-1-a sha256:{OID2}\next-0-b sha256:{OID2}\noid sha256:{OID}\nsize 1\n".encode(),
    ),
    (
        "duplicate extension priority",
        f"{V1}ext-0-a sha256:{OID2}\next-0-b sha256:{OID2}\noid sha256:{OID}\nsize 1\n".encode(),
    ),
    (
        "extension with a bad hash",
        f"{V1}ext-0-a sha256:xyz\noid sha256:{OID}\nsize 1\n".encode(),
    ),
    ("1024 bytes or more", CANONICAL.encode() + b"x" * MAX_POINTER_SIZE),
    ("binary data", bytes(range(256))),
    ("NUL in a value", CANONICAL.replace("12345", "12\x0045").encode()),
    ("Latin-1 byte", CANONICAL.encode().replace(b"size", b"s\xe9ze")),
    ("a real file that mentions git-lfs", b"see https://git-lfs.github.com/spec/v1\n"),
]


@pytest.mark.parametrize(
    ("text", "expected"), [(t, p) for _, t, p in VALID], ids=[v[0] for v in VALID]
)
def test_valid_pointers(text: str, expected: LfsPointer) -> None:
    assert parse_pointer(text.encode()) == expected


@pytest.mark.parametrize("data", [d for _, d in INVALID], ids=[i[0] for i in INVALID])
def test_not_pointers(data: bytes) -> None:
    assert parse_pointer(data) is None


def test_text_is_canonical_and_upgrades_the_version_url() -> None:
    assert LfsPointer(OID, 12345).text() == CANONICAL
    legacy = parse_pointer(f"{HAWSER}oid sha256:{OID}\nsize 12345\n".encode())
    assert legacy is not None
    assert legacy.text() == CANONICAL


@pytest.mark.parametrize(
    ("oid", "size", "extensions"),
    [
        (OID.upper(), 1, ()),
        (OID[:-1], 1, ()),
        (OID, -1, ()),
        (OID, 2**63, ()),
        (OID, 1, (("ext-0-a", "sha256:xyz"),)),
        (OID, 1, (("ext-0-" + "a" * 1000, f"sha256:{OID2}"),)),  # text would be too long
    ],
)
def test_invalid_pointers_cannot_be_built(
    oid: str, size: int, extensions: tuple[tuple[str, str], ...]
) -> None:
    with pytest.raises(InvalidReference):
        LfsPointer(oid, size, extensions)


hex_oids = st.text(alphabet="0123456789abcdef", min_size=64, max_size=64)
extensions = st.lists(
    st.tuples(
        st.integers(0, 9),
        st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789.-", min_size=1, max_size=8),
        hex_oids,
    ),
    max_size=4,
    unique_by=lambda ext: ext[0],
).map(lambda exts: tuple((f"ext-{n}-{name}", f"sha256:{oid}") for n, name, oid in sorted(exts)))
pointers = st.builds(LfsPointer, hex_oids, st.integers(0, 2**63 - 1), extensions)


@given(pointers)
def test_text_round_trips(pointer: LfsPointer) -> None:
    data = pointer.text().encode()
    assert len(data) < MAX_POINTER_SIZE
    assert parse_pointer(data) == pointer


@given(st.binary(max_size=MAX_POINTER_SIZE + 16))
def test_never_raises_on_arbitrary_bytes(data: bytes) -> None:
    parse_pointer(data)


# Near misses: valid-looking lines, shuffled, duplicated, mangled.
pointer_like_lines = st.lists(
    st.sampled_from(
        [
            V1.rstrip("\n"),
            HAWSER.rstrip("\n"),
            f"oid sha256:{OID}",
            f"oid sha256:{OID.upper()}",
            "size 1",
            "size -1",
            "size 99999999999999999999",
            f"ext-0-a sha256:{OID2}",
            f"ext-0-b sha256:{OID2}",
            "ext-x-a sha256:",
            "oid",
            "",
            " ",
            "size 1\r",
        ]
    ),
    max_size=6,
)


@given(pointer_like_lines, st.sampled_from(["\n", "\r\n", ""]))
@example([V1.rstrip("\n"), f"oid sha256:{OID}", "size 1"], "\n")
@example([HAWSER.rstrip("\n"), f"ext-0-a sha256:{OID2}", f"oid sha256:{OID}", "size 1"], "\n")
def test_near_misses_are_rejected_unless_canonical(lines: list[str], end: str) -> None:
    data = "\n".join(lines) + end
    result = parse_pointer(data.encode())
    if result is not None:
        # One encoding per pointer: whatever is accepted is the canonical text, up to the URL.
        assert result.text() == data.replace(HAWSER, V1, 1)


def test_read_pointer(tmp_path: Path) -> None:
    pointer_file = tmp_path / "checkpoint.pth"
    pointer_file.write_text(CANONICAL)
    assert read_pointer(pointer_file) == LfsPointer(OID, 12345)

    weights = tmp_path / "weights.pth"
    weights.write_bytes(CANONICAL.encode() + b"\0" * 10_000_000)
    assert read_pointer(weights) is None

    small = tmp_path / "config.yaml"
    small.write_text("depth: 1.0\n")
    assert read_pointer(small) is None

    with pytest.raises(FileNotFoundError):
        read_pointer(tmp_path / "missing")


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
def test_read_pointer_reads_only_a_prefix() -> None:
    # An endless file: reading it whole would never return.
    assert read_pointer(Path("/dev/zero")) is None


@pytest.mark.skipif(shutil.which("git-lfs") is None, reason="git-lfs not installed")
@pytest.mark.parametrize(
    "content", [b"w", b"weights\n", os.urandom(100_000)], ids=["1", "8", "100k"]
)
def test_pointer_written_by_git_lfs(tmp_path: Path, content: bytes) -> None:
    source = tmp_path / "checkpoint.pth"
    source.write_bytes(content)
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "GIT_CONFIG_NOSYSTEM": "1"}
    # `git lfs pointer` prints the pointer on stdout, its "Git LFS pointer for" header on stderr.
    proc = subprocess.run(
        ["git", "lfs", "pointer", f"--file={source}"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        check=True,
    )
    pointer = parse_pointer(proc.stdout)
    assert pointer == LfsPointer(hashlib.sha256(content).hexdigest(), len(content))
    assert pointer.text().encode() == proc.stdout


@pytest.mark.skipif(shutil.which("git-lfs") is None, reason="git-lfs not installed")
def test_git_lfs_writes_no_pointer_for_an_empty_file(tmp_path: Path) -> None:
    # git-lfs stores an empty file as an empty blob, which is its own content: not a pointer.
    (tmp_path / "empty").write_bytes(b"")
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "GIT_CONFIG_NOSYSTEM": "1"}
    proc = subprocess.run(
        ["git", "lfs", "pointer", "--file=empty"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        check=True,
    )
    assert proc.stdout == b""
    assert parse_pointer(proc.stdout) is None
