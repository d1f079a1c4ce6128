"""Tests for trellis_slack.trellis.pacing: backoff delays and send pacing, with no I/O."""

from __future__ import annotations

import pytest

from trellis_slack.trellis.pacing import Backoff, SendPacer


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_backoff_grows_exponentially_up_to_the_cap() -> None:
    """Without jitter the delays double from base and stop growing at the cap."""
    backoff = Backoff(base=0.5, factor=2.0, cap=3.0, jitter=0.0)
    assert [backoff.delay(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]


@pytest.mark.parametrize(("rand", "expected"), [(0.0, 2.0), (0.5, 4.0), (1.0, 6.0)])
def test_backoff_jitter_spreads_around_the_delay(rand: float, expected: float) -> None:
    """Jitter 0.5 spreads a 4 s delay over 2..6 s (never above the cap)."""
    backoff = Backoff(base=1.0, factor=2.0, cap=30.0, jitter=0.5)
    assert backoff.delay(3, rand=lambda: rand) == pytest.approx(expected)
    assert Backoff(base=1.0, cap=4.0, jitter=0.5).delay(3, rand=lambda: 1.0) == 4.0


def test_zero_backoff_for_tests() -> None:
    """Backoff(base=0, cap=0) never waits, whatever the attempt."""
    assert {Backoff(base=0, cap=0).delay(n) for n in range(1, 50)} == {0.0}


def test_backoff_survives_huge_attempt_numbers() -> None:
    """A very large attempt number gives the cap instead of overflowing."""
    assert Backoff(jitter=0.0).delay(5000) == 30.0


def test_pacer_allows_a_burst_of_three_then_waits() -> None:
    """Three sends in 10 s go at once; the fourth waits until the first leaves the window."""
    clock = Clock()
    pacer = SendPacer(clock=clock)
    assert [pacer.reserve() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert pacer.reserve() == 10.0
    clock.now += 4.0
    assert pacer.reserve() == 6.0


def test_pacer_keeps_ten_a_minute() -> None:
    """Sends spaced to satisfy the burst limit still stop at ten per minute."""
    clock = Clock()
    pacer = SendPacer(clock=clock)
    sent_at = []
    for _ in range(11):
        clock.now += pacer.reserve()  # the caller sleeps exactly as told
        sent_at.append(clock.now - 1000.0)
    # Bursts of three at 0, 10 and 20 s; the tenth at 30 s; the eleventh only a minute after the first.
    assert sent_at == [0.0, 0.0, 0.0, 10.0, 10.0, 10.0, 20.0, 20.0, 20.0, 30.0, 60.0]


def test_pacer_moves_on_when_sleep_returns_early() -> None:
    """Booked slots count even if the caller did not really wait, so a no-op sleep cannot spin."""
    pacer = SendPacer(clock=Clock())
    waits = [pacer.reserve() for _ in range(7)]
    assert waits == [0.0, 0.0, 0.0, 10.0, 10.0, 10.0, 20.0]


def test_pacer_frees_up_after_quiet_time() -> None:
    """After a quiet minute the full burst is available again."""
    clock = Clock()
    pacer = SendPacer(clock=clock)
    for _ in range(3):
        pacer.reserve()
    clock.now += 61.0
    assert [pacer.reserve() for _ in range(3)] == [0.0, 0.0, 0.0]
