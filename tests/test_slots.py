"""Slots: a bound on requests in flight, shared through flock across processes."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from lfs_agent.errors import Interrupted
from lfs_agent.slots import Slots

WAIT = 10.0
# How long a waiter is given to (wrongly) get in before we conclude it is blocked.
BLOCKED = 0.2


class Holder:
    """A thread that holds a slot until told to let go."""

    def __init__(self, slots: Slots, cancel: threading.Event | None = None) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(slots, cancel))
        self.thread.start()

    def _run(self, slots: Slots, cancel: threading.Event | None) -> None:
        try:
            with slots.hold(cancel):
                self.entered.set()
                self.release.wait(WAIT)
        except BaseException as exc:  # handed to the test thread
            self.error = exc

    def stop(self) -> None:
        self.release.set()
        self.thread.join(WAIT)
        assert not self.thread.is_alive()


@contextmanager
def holders(slots: Slots, n: int) -> Iterator[list[Holder]]:
    started = [Holder(slots) for _ in range(n)]
    try:
        yield started
    finally:
        for h in started:
            h.stop()


def busy(slots: Slots) -> bool:
    """True when no slot is free (hold() with a cancel already set gives up after one round)."""
    cancel = threading.Event()
    cancel.set()
    try:
        with slots.hold(cancel):
            return False
    except Interrupted:
        return True


@pytest.mark.parametrize("shared", [True, False], ids=["flock-dir", "no-dir"])
def test_two_slots_admit_two_holders_and_block_a_third(tmp_path: Path, shared: bool) -> None:
    slots = Slots(tmp_path / "slots" if shared else None, 2, poll=0.001)
    try:
        with holders(slots, 2) as (first, second):
            assert first.entered.wait(WAIT) and second.entered.wait(WAIT)
            with holders(slots, 1) as (third,):
                assert not third.entered.wait(BLOCKED)
                second.stop()
                assert third.entered.wait(WAIT)
                assert not first.error and not second.error and not third.error
    finally:
        slots.close()


def test_cancel_while_waiting_raises_interrupted(tmp_path: Path) -> None:
    slots = Slots(tmp_path / "slots", 1, poll=0.001)
    cancel = threading.Event()
    with holders(slots, 1) as (holder,):
        assert holder.entered.wait(WAIT)
        waiter = Holder(slots, cancel)
        assert not waiter.entered.wait(BLOCKED)
        cancel.set()
        waiter.thread.join(WAIT)
        assert isinstance(waiter.error, Interrupted)
        assert "cancelled while waiting for a connection slot" in str(waiter.error)
        assert not waiter.entered.is_set()
    # The failed waiter took nothing: the slot is free again once the holder left.
    assert not busy(slots)
    slots.close()


def test_cancel_checked_between_polls(tmp_path: Path) -> None:
    cancel = threading.Event()
    polls: list[float] = []

    def sleep(seconds: float) -> None:
        polls.append(seconds)
        if len(polls) == 3:
            cancel.set()

    slots = Slots(tmp_path / "slots", 1, poll=0.25, sleep=sleep)
    other = Slots(tmp_path / "slots", 1)
    with other.hold(), pytest.raises(Interrupted), slots.hold(cancel):
        pass
    assert polls == [0.25, 0.25, 0.25]
    slots.close()
    other.close()


def test_a_set_cancel_does_not_stop_a_free_slot_from_being_taken(tmp_path: Path) -> None:
    slots = Slots(tmp_path / "slots", 1)
    cancel = threading.Event()
    cancel.set()
    entered = False
    with slots.hold(cancel):
        entered = True
    assert entered
    slots.close()


def test_a_slot_is_released_when_the_block_raises(tmp_path: Path) -> None:
    slots = Slots(tmp_path / "slots", 1)
    with pytest.raises(ValueError), slots.hold():
        raise ValueError("the request failed")
    assert not busy(slots)
    slots.close()


def test_slot_files_are_made_on_first_use(tmp_path: Path) -> None:
    directory = tmp_path / "lfs-s3" / "slots"
    slots = Slots(directory, 3)
    assert not directory.exists()
    with slots.hold():
        assert sorted(p.name for p in directory.iterdir()) == ["0", "1", "2"]
    slots.close()
    with slots.hold():  # reopened after close()
        pass
    slots.close()


def test_a_second_slots_object_on_the_same_directory_shares_the_bound(tmp_path: Path) -> None:
    a = Slots(tmp_path / "slots", 1)
    b = Slots(tmp_path / "slots", 1)
    with a.hold():
        assert busy(b)
    assert not busy(b)
    a.close()
    b.close()


def test_slots_in_other_directories_are_independent(tmp_path: Path) -> None:
    a = Slots(tmp_path / "repo1", 1)
    b = Slots(tmp_path / "repo2", 1)
    c = Slots(None, 1)
    with a.hold():
        assert not busy(b)
        assert not busy(c)
    a.close()
    b.close()


HOLD_IN_CHILD = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from lfs_agent.slots import Slots

    slots = Slots(Path(sys.argv[1]), int(sys.argv[2]))
    with slots.hold():
        print("held", flush=True)
        sys.stdin.readline()
    print("released", flush=True)
    """
)


@contextmanager
def child_holding(directory: Path, count: int) -> Iterator[subprocess.Popen[str]]:
    """Another process holding one slot of `directory` until its stdin gets a line."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD_IN_CHILD, str(directory), str(count)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == "held\n"
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(WAIT)
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                stream.close()


def test_another_process_shares_the_bound(tmp_path: Path) -> None:
    directory = tmp_path / "slots"
    slots = Slots(directory, 2)
    with child_holding(directory, 2) as child:
        with slots.hold():
            assert busy(slots)  # one slot here, one in the child: both taken
        assert not busy(slots)
        with slots.hold():
            assert child.stdin is not None and child.stdout is not None
            child.stdin.write("\n")
            child.stdin.flush()
            assert child.stdout.readline() == "released\n"
            assert not busy(slots)
    slots.close()


def test_a_killed_process_leaks_no_slot(tmp_path: Path) -> None:
    directory = tmp_path / "slots"
    slots = Slots(directory, 1)
    with child_holding(directory, 1) as child:
        assert busy(slots)
        child.send_signal(signal.SIGKILL)
        child.wait(WAIT)
        assert not busy(slots)
    slots.close()


def test_without_a_directory_the_bound_is_per_process(tmp_path: Path) -> None:
    slots = Slots(None, 1)
    with slots.hold():
        assert busy(slots)
    assert not busy(slots)
    slots.close()


def test_an_unusable_directory_falls_back_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("a file where the directory's parent should be\n")
    directory = not_a_dir / "slots"
    slots = Slots(directory, 1)
    with caplog.at_level(logging.WARNING, logger="lfs_agent.slots"), slots.hold():
        assert busy(slots)  # still bounded within this process
    warnings = [r for r in caplog.records if r.name == "lfs_agent.slots"]
    assert len(warnings) == 1
    assert warnings[0].levelno == logging.WARNING
    assert f"no shared connection slots in {directory}" in warnings[0].getMessage()
    assert not busy(slots)
    slots.close()


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write to a read-only directory")
def test_a_read_only_directory_falls_back_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    parent = tmp_path / "ro"
    parent.mkdir()
    parent.chmod(0o500)
    try:
        slots = Slots(parent / "slots", 1)
        with caplog.at_level(logging.WARNING, logger="lfs_agent.slots"), slots.hold():
            pass
        assert "no shared connection slots" in caplog.text
        slots.close()
    finally:
        parent.chmod(0o700)


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")
def test_a_failed_open_leaks_no_descriptor(tmp_path: Path) -> None:
    directory = tmp_path / "slots"
    directory.mkdir()
    (directory / "1").mkdir()  # slot 0 opens, slot 1 cannot (it is a directory)
    before = open_fds()
    slots = Slots(directory, 2)
    with slots.hold():
        pass
    slots.close()
    assert open_fds() == before
