"""PartialFile: out-of-order writes hashed in order, and a watermark that survives a crash."""

from __future__ import annotations

import hashlib
import os
import random
import threading
from pathlib import Path

import pytest

from registry.cache import partial as partial_mod
from registry.cache.partial import OutOfRange, PartialFile, discard

DATA = os.urandom(3 * 1024 * 1024 + 17)


def pieces(data: bytes, size: int) -> list[tuple[int, bytes]]:
    return [(i, data[i : i + size]) for i in range(0, len(data), size)]


def test_threads_writing_in_any_order_hash_the_whole_in_order(tmp_path: Path) -> None:
    path = tmp_path / "x.partial"
    parts = pieces(DATA, 65536)
    random.Random(7).shuffle(parts)
    with PartialFile.open(path, size=len(DATA)) as out:

        def work(share: list[tuple[int, bytes]]) -> None:
            for offset, data in share:
                out.write(offset, data)

        threads = [threading.Thread(target=work, args=(parts[i::4],)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert out.done == len(DATA)
        assert out.hexdigest() == hashlib.sha256(DATA).hexdigest()
    assert path.read_bytes() == DATA


def test_a_gap_holds_the_watermark_and_the_record_says_so(tmp_path: Path) -> None:
    path = tmp_path / "x.partial"
    with PartialFile.open(path, size=100) as out:
        out.write(0, DATA[:10])
        out.write(20, DATA[20:30])  # past a gap: on disk, not counted
        assert out.done == 10
    assert (tmp_path / "x.partial.upto").read_text() == "10"


def test_resume_keeps_the_recorded_prefix_and_drops_what_lies_past_it(tmp_path: Path) -> None:
    path = tmp_path / "x.partial"
    size = len(DATA)
    # A killed process: ranges past the watermark were half-written garbage.
    path.write_bytes(DATA[:1000] + b"\xee" * 5000)
    (tmp_path / "x.partial.upto").write_text("1000")
    with PartialFile.open(path, size=size) as out:
        assert (out.start, out.done) == (1000, 1000)
        assert path.stat().st_size == 1000
        out.write(1000, DATA[1000:])
        assert out.hexdigest() == hashlib.sha256(DATA).hexdigest()


def test_a_damaged_record_trusts_nothing(tmp_path: Path) -> None:
    path = tmp_path / "x.partial"
    path.write_bytes(DATA[:1000])
    (tmp_path / "x.partial.upto").write_text("garbage")
    with PartialFile.open(path, size=len(DATA)) as out:
        assert out.start == 0


def test_without_a_record_an_appended_file_is_its_own_prefix(tmp_path: Path) -> None:
    path = tmp_path / "x.partial"
    path.write_bytes(DATA[:1000])
    with PartialFile.open(path, size=len(DATA)) as out:
        assert out.start == 1000
    with PartialFile.open(path, size=10) as out:  # longer than the object: not its prefix
        assert out.start == 0


def test_the_record_is_written_as_the_prefix_grows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(partial_mod, "MARK_EVERY", 1024)
    path = tmp_path / "x.partial"
    mark = tmp_path / "x.partial.upto"
    with PartialFile.open(path, size=len(DATA)) as out:
        for offset, data in pieces(DATA[:4096], 1000):
            out.write(offset, data)
        # Still open (a SIGKILL now would skip the final record): the record is close behind.
        assert 3000 <= int(mark.read_text()) <= 4096


def test_writes_outside_the_object_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.partial"
    with PartialFile.open(path, size=10) as out:
        with pytest.raises(OutOfRange) as info:
            out.write(5, b"x" * 6)
        assert info.value.end == 11
        out.write(0, b"0123456789")
    path.write_bytes(b"01234")
    with PartialFile.open(path, size=10) as out, pytest.raises(OutOfRange):
        out.write(0, b"0")  # before this attempt's start: the kept prefix is not rewritten


def test_discard_removes_the_file_and_its_record(tmp_path: Path) -> None:
    path = tmp_path / "x.partial"
    with PartialFile.open(path, size=10) as out:
        out.write(0, b"01234")
    discard(path)
    assert list(tmp_path.iterdir()) == []
