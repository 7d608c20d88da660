"""bot.pacing: Teams' per-thread and per-tenant limits as sliding windows, on a fake clock."""

from __future__ import annotations

import pytest

from bot.pacing import TEAMS_CONVERSATION_LIMITS, Limit, Pacer, Window


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def send_greedily(
    pacer: Pacer, clock: Clock, n: int, conversation: str = "c", tenant: str = "t"
) -> list[float]:
    """Post n messages as soon as the pacer allows; the times they went."""
    times = []
    for _ in range(n):
        clock.now += pacer.wait(conversation, tenant)
        assert pacer.wait(conversation, tenant) == 0
        pacer.take(conversation, tenant)
        times.append(clock.now)
    return times


def most_in_any(times: list[float], seconds: float) -> int:
    """The largest number of sends inside any half-open window of this length."""
    return max(sum(1 for t in times if start <= t < start + seconds) for start in times)


def test_one_conversation_keeps_every_teams_limit() -> None:
    clock = Clock()
    pacer = Pacer(tenant=(), slack=0.0, clock=clock)

    times = send_greedily(pacer, clock, 130)

    assert most_in_any(times, 1.0) == 7
    assert most_in_any(times, 2.0) == 8
    assert most_in_any(times, 30.0) == 60
    # Greedy but no slower than the limits make it: the 61st send waits for the first to leave 30 s.
    assert times[60] - times[0] == pytest.approx(30.0)


def test_the_hourly_limit_holds_too() -> None:
    clock = Clock()
    pacer = Pacer(tenant=(), slack=0.0, clock=clock)

    times = send_greedily(pacer, clock, 1801)

    assert times[1800] - times[0] >= 3600.0


def test_slack_widens_every_window() -> None:
    clock = Clock()
    pacer = Pacer(conversation=(Limit(2, 1.0),), tenant=(), slack=0.25, clock=clock)

    times = send_greedily(pacer, clock, 3)

    assert times[2] - times[0] == pytest.approx(1.25)


def test_conversations_are_paced_apart_but_share_their_tenant() -> None:
    clock = Clock()
    pacer = Pacer(tenant=(Limit(10, 1.0),), slack=0.0, clock=clock)
    for n in range(7):
        pacer.take(f"busy-{n % 2}", "tenant-a")

    assert pacer.wait("busy-0", "tenant-a") == 0  # 4 of 7 so far
    assert pacer.wait("quiet", "tenant-b") == 0
    for n in range(3):
        pacer.take(f"other-{n}", "tenant-a")
    assert pacer.wait("fresh", "tenant-a") == pytest.approx(1.0)  # the tenant's 10 per second are used
    assert pacer.wait("fresh", "tenant-b") == 0


def test_a_pause_holds_one_conversation_only() -> None:
    clock = Clock()
    pacer = Pacer(slack=0.0, clock=clock)

    pacer.pause("throttled", 5.0)
    pacer.pause("throttled", 2.0)  # a shorter pause does not cut a longer one short

    assert pacer.wait("throttled", "t") == pytest.approx(5.0)
    assert pacer.wait("other", "t") == 0
    clock.now += 5.0
    assert pacer.wait("throttled", "t") == 0


def test_idle_windows_are_forgotten() -> None:
    clock = Clock()
    pacer = Pacer(slack=0.0, clock=clock)
    for n in range(50):
        pacer.take(f"c{n}", "t")
    assert len(pacer) == 50

    clock.now += 3601.0
    pacer.take("new", "t")

    assert len(pacer) == 1


def test_a_window_refuses_nonsense_limits() -> None:
    with pytest.raises(ValueError):
        Window([])
    with pytest.raises(ValueError):
        Window([Limit(0, 1.0)])
    assert Window(TEAMS_CONVERSATION_LIMITS).wait(0.0) == 0
