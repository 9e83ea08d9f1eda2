"""ProgressReporter: immediate first event, throttling, clamping, finish, thread safety."""

from __future__ import annotations

import threading

from hypothesis import given
from hypothesis import strategies as st

from lfs_agent.progress import ProgressReporter
from lfs_agent.protocol import Progress

OID = "ab" * 32


class Clock:
    """A fake monotonic clock: returns `now`, which the test moves; records each reading."""

    def __init__(self) -> None:
        self.now = 0.0
        self.readings: list[float] = []

    def __call__(self) -> float:
        self.readings.append(self.now)
        return self.now


def reporter(size: int, *, interval: float = 1.0) -> tuple[ProgressReporter, list[Progress], Clock]:
    sent: list[Progress] = []
    clock = Clock()
    return ProgressReporter(OID, size, sent.append, interval=interval, clock=clock), sent, clock


def test_first_event_is_immediate() -> None:
    r, sent, clock = reporter(100)
    r(7)
    assert sent == [Progress(OID, 7, 7)]
    assert clock.readings  # the reporter consulted the clock


def test_zero_first_delta_sends_nothing_and_keeps_the_next_immediate() -> None:
    r, sent, clock = reporter(100)
    r(0)
    assert sent == []
    clock.now = 0.01
    r(3)
    assert sent == [Progress(OID, 3, 3)]


def test_events_are_throttled_to_the_interval_since_the_last_event() -> None:
    r, sent, clock = reporter(1000, interval=1.0)
    r(10)  # t=0: sent
    clock.now = 0.5
    r(10)  # too soon
    clock.now = 0.999
    r(10)  # too soon
    assert sent == [Progress(OID, 10, 10)]
    clock.now = 1.0
    r(10)  # exactly one interval later: sent, with everything since the last event
    assert sent[-1] == Progress(OID, 40, 30)
    clock.now = 1.9
    r(5)  # measured from the last event (t=1.0), not from the first
    assert len(sent) == 2
    clock.now = 2.0
    r(5)
    assert sent[-1] == Progress(OID, 50, 10)
    assert len(sent) == 3


def test_a_throttled_call_that_moves_nothing_new_does_not_reset_the_window() -> None:
    r, sent, clock = reporter(100, interval=1.0)
    r(10)
    clock.now = 5.0
    r(-3)  # no new bytes: nothing sent, and the window still starts at t=0
    clock.now = 5.1
    r(20)
    assert sent == [Progress(OID, 10, 10), Progress(OID, 27, 17)]


def test_bytes_so_far_is_clamped_to_the_size() -> None:
    r, sent, clock = reporter(10, interval=0.0)
    r(25)
    assert sent == [Progress(OID, 10, 10)]
    r(5)
    assert sent == [Progress(OID, 10, 10)]


def test_bytes_so_far_is_clamped_at_zero() -> None:
    r, sent, clock = reporter(100, interval=0.0)
    r(-50)  # a rewind before anything moved does not go below zero...
    r(3)  # ...so 3 more bytes are 3 bytes, not -47
    assert sent == [Progress(OID, 3, 3)]


def test_a_rewind_never_makes_bytes_so_far_go_back() -> None:
    r, sent, clock = reporter(100, interval=0.0)
    r(40)
    r(-30)  # a retried part rewinds
    r(10)  # 20 counted: still below what was reported
    assert sent == [Progress(OID, 40, 40)]
    r(30)  # 50 counted: past 40 again
    assert sent == [Progress(OID, 40, 40), Progress(OID, 50, 10)]


def test_finish_sends_the_size_once() -> None:
    r, sent, clock = reporter(100)
    r(30)
    r(30)  # throttled (same instant)
    r.finish()  # not throttled
    assert sent == [Progress(OID, 30, 30), Progress(OID, 100, 70)]
    r.finish()
    r(10)
    assert sent == [Progress(OID, 30, 30), Progress(OID, 100, 70)]


def test_finish_sends_nothing_when_already_at_the_size() -> None:
    r, sent, clock = reporter(100, interval=0.0)
    r(60)
    r(40)
    r.finish()
    assert sent == [Progress(OID, 60, 60), Progress(OID, 100, 40)]


def test_finish_without_any_delta_sends_the_whole_size() -> None:
    r, sent, clock = reporter(12345)
    r.finish()
    assert sent == [Progress(OID, 12345, 12345)]


def test_an_empty_object_sends_no_progress() -> None:
    r, sent, clock = reporter(0, interval=0.0)
    r(0)
    r(5)
    r.finish()
    assert sent == []


def test_the_default_clock_works() -> None:
    sent: list[Progress] = []
    r = ProgressReporter(OID, 10, sent.append, interval=3600.0)
    r(4)
    r(4)  # within the hour
    r.finish()
    assert sent == [Progress(OID, 4, 4), Progress(OID, 10, 6)]


def check_events(sent: list[Progress], size: int) -> None:
    """The invariants git-lfs relies on, for a finished object."""
    so_far = 0
    for event in sent:
        assert event.oid == OID
        assert 0 < event.bytes_so_far <= size
        assert event.bytes_since_last == event.bytes_so_far - so_far > 0
        so_far = event.bytes_so_far
    assert so_far == size
    assert sum(e.bytes_since_last for e in sent) == size


@given(
    size=st.integers(min_value=1, max_value=10**9),
    steps=st.lists(
        st.tuples(
            st.integers(min_value=-(10**6), max_value=10**6),
            st.floats(min_value=0.0, max_value=0.3),
        ),
        max_size=60,
    ),
    interval=st.sampled_from([0.0, 0.1, 1.0]),
)
def test_any_sequence_of_deltas_gives_consistent_events(
    size: int, steps: list[tuple[int, float]], interval: float
) -> None:
    r, sent, clock = reporter(size, interval=interval)
    for delta, pause in steps:
        clock.now += pause
        r(delta)
    r.finish()
    check_events(sent, size)


def test_many_threads_feeding_deltas() -> None:
    threads_n, per_thread, chunk = 8, 2000, 3
    size = threads_n * per_thread * chunk
    sent: list[Progress] = []
    r = ProgressReporter(OID, size, sent.append, interval=0.0)
    start = threading.Barrier(threads_n)

    def feed() -> None:
        start.wait()
        for i in range(per_thread):
            if i % 100 == 99:
                r(-chunk)  # a rewind, made good again at once
                r(chunk)
            r(chunk)

    threads = [threading.Thread(target=feed) for _ in range(threads_n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Every byte was counted once: the last event already reports the whole size.
    assert sent[-1].bytes_so_far == size
    r.finish()
    check_events(sent, size)
