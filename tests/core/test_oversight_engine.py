"""The misuse engine: fed events in seq order, it raises each rule's alert once per episode."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from core.oversight import rules
from core.oversight.engine import Engine, Seen
from core.oversight.rules import parse

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)  # a Monday, 10:00 in London
DANA = "aaaaaaaa-0000-4000-8000-000000000001"
SAM = "aaaaaaaa-0000-4000-8000-000000000002"


class Feed:
    """An engine and a seq counter: `event(...)` makes a Seen at T0 + minutes and feeds it."""

    def __init__(self, engine: Engine | None = None) -> None:
        self.engine = engine or Engine(rules.load())
        self.seq = 0

    def event(self, minutes: float, *, actor: str | None = DANA, kind: str | None = "guest",
              action: str = "task.show", decision: str | None = "allow", outcome: str = "ok",
              room: str | None = "OP-LANTERN", rule: str | None = None, warm: bool = False,
              args: dict[str, Any] | None = None) -> list[Any]:  # fmt: skip
        self.seq += 1
        seen = Seen(seq=self.seq, at=T0 + timedelta(minutes=minutes), actor=actor, actor_kind=kind, action=action,
                    outcome=outcome, actor_name="Dana Ray", actor_agency="barnardos", room_key=room,
                    decision=decision, rule=rule, arguments=args or {})  # fmt: skip
        return self.engine.feed(seen, warm=warm)


def test_seven_refusals_in_nine_minutes_raise_one_alert_in_plain_words() -> None:
    feed = Feed()
    alerts = [a for m in range(0, 10, 1) if m != 5 for a in feed.event(m * 9 / 8, decision="deny",
                                                                       outcome="denied")]  # fmt: skip
    assert [(a.rule, a.subject, a.count) for a in alerts] == [("denial-burst", DANA, 5)]
    assert alerts[0].summary.startswith("Dana Ray (guest, barnardos) was refused 5 times in 4 minutes")
    assert "in OP-LANTERN" in alerts[0].summary and alerts[0].first_seq == 1


def test_refusals_spread_wider_than_the_window_raise_nothing() -> None:
    feed = Feed()
    assert not [a for m in range(10) for a in feed.event(m * 3, decision="deny", outcome="denied")]


def test_the_cooldown_is_per_rule_and_person_and_ends() -> None:
    feed = Feed()
    deny: dict[str, Any] = {"decision": "deny", "outcome": "denied"}
    first = [a for m in range(5) for a in feed.event(m, **deny)]
    again = [a for m in range(5, 10) for a in feed.event(m, **deny)]  # same hour: cooling down
    other = [a for m in range(5) for a in feed.event(20 + m, actor=SAM, **deny)]
    later = [a for m in range(5) for a in feed.event(70 + m, **deny)]  # an hour after the first alert
    assert (len(first), len(again), len(other), len(later)) == (1, 0, 1, 1)


def test_the_bots_own_events_and_unidentified_senders_are_never_subjects() -> None:
    feed = Feed()
    for m in range(10):
        assert not feed.event(m, kind="system", decision="deny", outcome="denied")
        assert not feed.event(m, actor=None, kind=None, decision="deny", outcome="denied")


def test_a_guest_outside_the_rooms_hours_with_its_own_hours_and_the_clock_change() -> None:
    hours = {"OP-LANTERN": "07:00-19:00 Mon-Fri", "OP-ALWAYS": "always"}
    feed = Feed(Engine(rules.load(), timezone="Europe/London", room_hours=hours.get))
    # Monday 30 March 2026 is summer time: 18:10 UTC is 19:10 in London, within the 30 minutes' grace.
    late = datetime(2026, 3, 30, 18, 10, tzinfo=UTC)
    base = (late - T0).total_seconds() / 60
    assert not [a for m in range(5) for a in feed.event(base + m)]
    assert not [a for m in range(5) for a in feed.event(base + 60 + m, room="OP-ALWAYS")]
    alerts = [a for m in range(3) for a in feed.event(base + 90 + m)]  # 20:40 London
    assert [a.rule for a in alerts] == ["guest-after-hours"]
    assert "outside working hours (07:00-19:00 Mon-Fri)" in alerts[0].summary
    assert "Mon 30 Mar 20:42" in alerts[0].summary
    assert not [a for m in range(3) for a in feed.event(base + 90 + m, kind="officer", actor=SAM)]


def test_many_rooms_counts_distinct_rooms_and_leaves_supervisors_out() -> None:
    feed = Feed()
    rooms = [f"OP-R{i}" for i in range(10)]
    assert not [a for i, r in enumerate(rooms * 2) for a in feed.event(i * 30, actor=SAM, kind="supervisor",
                                                                       room=r)]  # fmt: skip
    assert not [a for i in range(30) for a in feed.event(i, kind="officer", room=rooms[i % 9])]
    alerts = feed.event(100, kind="officer", room="OP-R9")
    assert [(a.rule, a.count) for a in alerts] == [("many-rooms", 10)]


def test_bulk_reads_count_allowed_consultations_only() -> None:
    feed = Feed()
    got = [a for i in range(54) for a in feed.event(i, kind="officer")]
    got += [a for i in range(20) for a in feed.event(54 + i / 100, kind="officer", action="task.add")]
    got += [a for i in range(20) for a in feed.event(54 + i / 100, kind="officer", decision="deny")]
    assert not [a for a in got if a.rule == "bulk-consultation"]
    alerts = feed.event(55, kind="officer", action="room.status")
    assert [(a.rule, a.count) for a in alerts] == [("bulk-consultation", 55)]


def test_any_attempt_after_access_ended_alerts() -> None:
    feed = Feed()
    alerts = feed.event(0, decision="deny", outcome="denied", rule="guest-access-revoked")
    assert [a.rule for a in alerts] == ["after-end"]
    assert "after their access was revoked" in alerts[0].summary
    assert not feed.event(1, decision="deny", outcome="denied", rule="guest-access-expired")


def test_probing_counts_distinct_keys_that_do_not_exist() -> None:
    feed = Feed()

    def probe(minutes: float, key: str) -> list[Any]:
        return feed.event(minutes, outcome="no_room", decision=None, room=None, args={"room": key})

    for key in ("OP-LANTRN", "op-lantrn", "OP-LANTEN", "OP-GHOST"):  # a typo twice is one key
        assert not probe(10, key)
    alerts = probe(12, "OP-RAVEN")
    assert [(a.rule, a.count) for a in alerts] == [("room-probing", 4)]
    assert "OP-LANTRN, OP-LANTEN, OP-GHOST, OP-RAVEN" in alerts[0].summary


def test_a_supervisor_auditing_themselves_alerts_and_a_lead_on_their_own_room_does_not() -> None:
    feed = Feed()
    assert not feed.event(0, actor=SAM, kind="officer", action="audit.query", args={"own": "room"})
    assert not feed.event(1, kind="supervisor", action="audit.query", args={"room": "OP-LANTERN"})
    alerts = feed.event(2, kind="supervisor", action="audit.export", args={"own": "self"})
    assert [a.rule for a in alerts] == ["supervisor-self"]
    assert "ran audit.export on their own activity" in alerts[0].summary


def test_warm_rebuilds_windows_and_cooldowns_without_alerting() -> None:
    feed = Feed()
    deny: dict[str, Any] = {"decision": "deny", "outcome": "denied"}
    assert not [a for m in range(6) for a in feed.event(m, warm=True, **deny)]  # would have alerted
    assert not feed.event(7, **deny)  # so it is cooling down
    fresh = Feed()
    assert not [a for m in range(4) for a in fresh.event(m, warm=True, **deny)]
    assert [a.rule for a in fresh.event(5, **deny)] == ["denial-burst"]  # the window was rebuilt


def test_cooled_restores_a_cooldown_from_the_database() -> None:
    feed = Feed()
    feed.engine.cooled("denial-burst", DANA, T0)
    feed.engine.cooled("no-such-rule", DANA, T0)
    deny: dict[str, Any] = {"decision": "deny", "outcome": "denied"}
    assert not [a for m in range(10) for a in feed.event(m, **deny)]
    assert [a for m in range(61, 66) for a in feed.event(m, **deny)]


def test_position_horizon_and_events_fed_twice() -> None:
    feed = Feed()
    assert feed.engine.position == 0
    assert feed.engine.horizon() == timedelta(days=1)  # many-rooms' and after-end's day
    feed.event(0, decision="deny", outcome="denied")
    seen = Seen(seq=1, at=T0, actor=DANA, actor_kind="guest", action="x", outcome="denied", decision="deny")
    for _ in range(10):
        assert not feed.engine.feed(seen)  # seq 1 again: not counted again
    assert feed.engine.position == 1
    only = Engine(parse('[rules.room-probing]\nthreshold = 2\nwindow = "10m"\ncooldown = "3h"'))
    assert only.horizon() == timedelta(hours=3)


def test_state_is_forgotten_when_people_go_quiet() -> None:
    feed = Feed()
    for i in range(500):
        feed.event(i / 10, actor=f"person-{i}", kind="officer", decision="deny", outcome="denied")
    assert feed.engine.state_size()[0] >= 500
    feed.event(3 * 24 * 60, actor=SAM, kind="officer")
    assert sum(feed.engine.state_size()) <= 3


TIGHT = parse("""
[rules.denial-burst]
threshold = 3
window = "5m"
cooldown = "10m"
[rules.room-probing]
threshold = 2
window = "5m"
cooldown = "10m"
""")
people = st.sampled_from([DANA, SAM, "c"])
events = st.lists(st.tuples(st.integers(0, 40), people, st.booleans(), st.sampled_from(["A", "B", "C"])),
                  max_size=60)  # fmt: skip


def _seen(rows: list[tuple[int, str, bool, str]]) -> list[Seen]:
    return [Seen(seq=i, at=T0 + timedelta(minutes=m), actor=who, actor_kind="officer", action="task.show",
                 outcome="no_room" if probe else "denied", decision=None if probe else "deny",
                 arguments={"room": key} if probe else {})
            for i, (m, who, probe, key) in enumerate(rows, 1)]  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(events, st.randoms(use_true_random=False))
def test_events_at_the_same_moment_raise_the_same_alerts_in_any_order(rows: Any, rnd: Any) -> None:
    rows = sorted(rows, key=lambda r: r[0])
    shuffled = sorted(rows, key=lambda r: (r[0], rnd.random()))  # same moments, other orders
    runs = []
    for order in (rows, shuffled):
        engine = Engine(TIGHT)
        runs.append(sorted((a.rule, a.subject, a.at) for e in _seen(order) for a in engine.feed(e)))
    assert runs[0] == runs[1]


@settings(max_examples=150, deadline=None)
@given(events)
def test_a_window_never_holds_more_than_its_span_and_alerts_never_under_threshold(rows: Any) -> None:
    engine = Engine(TIGHT)
    for e in _seen(sorted(rows, key=lambda r: r[0])):
        for alert in engine.feed(e):
            assert alert.count >= 2 and alert.at - alert.first_at <= timedelta(minutes=5)
        for (rule_id, _), window in engine._windows.items():
            span = TIGHT.get(rule_id).window  # type: ignore[union-attr]
            assert window.entries[-1].at - window.entries[0].at <= span  # type: ignore[operator]
