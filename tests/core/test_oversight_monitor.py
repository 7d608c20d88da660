"""The misuse monitor's step against a real database: the cursor moves with the alerts, one lease holder,
takeover with a rebuilt engine, a crash before commit, mutes, and two processes at once."""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from core.audit import service as audit
from core.audit.models import Actor, EventDraft, Where
from core.db import Database
from core.oversight import monitor as monitoring
from core.oversight import service
from core.oversight.engine import Alert
from core.oversight.monitor import Monitor, Stepped
from core.oversight.rules import Rule, Rules, parse
from tests.core.support import count_rows, verify

T0 = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)  # a Monday, 10:00 in London
RULES = parse("""
[rules.denial-burst]
title = "A burst of refusals"
threshold = 3
window = "10m"
cooldown = "1h"

[rules.supervisor-self]
title = "A supervisor auditing themselves or their own room"
threshold = 1
cooldown = "1h"
""")
REFERENCE = json.dumps({"conversation": {"id": "19:supervisors@thread.tacv2", "tenantId": "home"},
                        "serviceUrl": "https://smba.example/emea/"})  # fmt: skip


def render(alert: Alert, rule: Rule | None, rooms: Sequence[str]) -> dict[str, Any]:
    return {"type": "message", "text": f"{rule.title if rule else alert.rule}: {alert.summary} ({', '.join(rooms)})"}


def make(owner: str = "process-1", rules: Rules = RULES, **options: Any) -> Monitor:
    return Monitor(rules, owner=owner, render=render, **options)


def event(who: str, *, action: str = "task.list", decision: str = "deny", kind: str = "officer",
          **arguments: Any) -> EventDraft:  # fmt: skip
    return EventDraft(action=action, outcome="denied" if decision == "deny" else "ok",
                      actor=Actor(aad_id=who, tenant_id="home", name=f"PC {who}", kind=kind),
                      where=Where(conversation_id="conv-1", room_key="OP-LANTERN"), arguments=arguments,
                      decision=decision, rule="default-deny" if decision == "deny" else "member-reads-tasks")  # fmt: skip


def append(db: Database, *timed: tuple[EventDraft, datetime]) -> None:
    """Append events, each at its own time, one transaction each (as requests do)."""
    for draft, at in timed:
        db.transaction(functools.partial(audit.append, drafts=[draft], now=at))


def denials(db: Database, who: str, start: datetime, count: int, every: timedelta = timedelta(minutes=1)) -> None:
    """`count` refusals of one person, `every` apart from start."""
    append(db, *((event(who), start + n * every) for n in range(count)))


def register_target(db: Database) -> None:
    db.transaction(lambda s: service.set_target(s, conversation_id="19:supervisors@thread.tacv2", tenant_id="home",
                                                service_url="https://smba.example/emea/", reference=REFERENCE,
                                                by_aad_id="sup-1", now=T0))  # fmt: skip


def alerts(db: Database) -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = db.transaction(lambda s: [tuple(r) for r in s.execute(text(
        "SELECT rule, subject, last_seq, outcome FROM oversight_alert ORDER BY id"))], readonly=True)  # fmt: skip
    return rows


def cursor(db: Database) -> tuple[int, str | None]:
    found = db.transaction(lambda s: service.peek(s), readonly=True)
    assert found is not None
    return found.last_seq, found.owner


def alert_events(db: Database) -> list[dict[str, Any]]:
    rows = db.transaction(lambda s: [dict(r._mapping) for r in s.execute(text(
        "SELECT * FROM audit_event WHERE action = 'oversight.alert' ORDER BY seq"))], readonly=True)  # fmt: skip
    return rows


def step(db: Database, mon: Monitor, at: datetime) -> Stepped:
    return monitoring.run(db, mon, now=at)


@pytest.fixture
def started(db: Database) -> Monitor:
    """A monitor whose cursor is made (at the empty trail's head), the supervisors' chat registered."""
    mon = make()
    register_target(db)
    step(db, mon, T0)
    return mon


def test_the_cursor_starts_at_the_head_and_the_past_is_not_alerted_on(db: Database) -> None:
    denials(db, "ann", T0, 5)
    done = step(db, make(), T0 + timedelta(minutes=6))
    assert (done.from_seq, done.to_seq, done.raised) == (5, 5, ())
    assert cursor(db) == (5, "process-1") and alerts(db) == []


def test_the_cursor_moves_with_the_alert_it_raises_and_never_reads_twice(db: Database, started: Monitor) -> None:
    denials(db, "ann", T0, 2)
    quiet = step(db, started, T0 + timedelta(minutes=2))
    denials(db, "ann", T0 + timedelta(minutes=2), 1)
    loud = step(db, started, T0 + timedelta(minutes=3))
    after = step(db, started, T0 + timedelta(minutes=4))  # reads its own alert event: nothing comes of it

    assert (quiet.to_seq, quiet.raised) == (2, ())
    [raised] = loud.raised
    assert (raised.alert.rule, raised.alert.subject, raised.outcome, raised.rooms) == (
        "denial-burst", "ann", "queued", ("OP-LANTERN",))
    assert (loud.from_seq, loud.to_seq, after.from_seq, after.to_seq, after.raised) == (2, 3, 3, 4, ())
    assert alerts(db) == [("denial-burst", "ann", 3, "queued")]
    [message] = db.transaction(lambda s: [tuple(r) for r in s.execute(text(
        "SELECT id, kind, conversation_id, activity FROM outbox_message"))], readonly=True)  # fmt: skip
    assert message[:3] == (raised.outbox_id, "alert", "19:supervisors@thread.tacv2")
    assert "A burst of refusals: PC ann (officer) was refused 3 times" in json.loads(message[3])["text"]
    [logged] = alert_events(db)
    assert (logged["seq"], logged["actor_kind"], logged["outcome"], logged["conversation_id"]) == (
        4, "system", "queued", "19:supervisors@thread.tacv2")
    assert json.loads(logged["arguments"]) == {"rule": "denial-burst", "subject": "ann", "first_seq": 1,
                                               "last_seq": 3, "count": 3, "alert_id": raised.alert_id,
                                               "outbox_id": raised.outbox_id, "rooms": ["OP-LANTERN"]}  # fmt: skip
    assert json.loads(logged["recipients"]) == ["19:supervisors@thread.tacv2"]
    assert logged["detail"].startswith("PC ann (officer) was refused 3 times in 2 minutes (task.list) in OP-LANTERN")
    assert verify(db).ok


def test_normal_traffic_raises_nothing(db: Database, started: Monitor) -> None:
    append(db, *((event("bob", decision="allow"), T0 + timedelta(minutes=n)) for n in range(30)))
    denials(db, "bob", T0 + timedelta(minutes=30), 2)  # two refusals: a typo, a button pressed twice
    denials(db, "bob", T0 + timedelta(minutes=45), 2)  # two more, outside the 10-minute window
    done = step(db, started, T0 + timedelta(hours=1))
    assert (done.to_seq, done.raised) == (34, ()) and alerts(db) == []


def test_another_process_does_nothing_while_the_lease_is_held(db: Database, started: Monitor) -> None:
    other = make("process-2")
    denials(db, "ann", T0, 3)
    held = step(db, other, T0 + timedelta(seconds=30))  # the lease taken at T0 lasts a minute
    assert (held.held_by, held.raised, held.to_seq) == ("process-1", (), 0)
    assert cursor(db) == (0, "process-1") and alerts(db) == [] and other.engine is None
    done = step(db, started, T0 + timedelta(minutes=3))
    assert [r.outcome for r in done.raised] == ["queued"]


def test_after_the_lease_runs_out_another_process_takes_over_rebuilds_and_repeats_nothing(
    db: Database, started: Monitor
) -> None:
    denials(db, "ann", T0, 3)  # ann's alert, raised by the first process
    denials(db, "bob", T0, 2)  # bob: two refusals seen by the first process, not yet an alert
    first = step(db, started, T0 + timedelta(minutes=3))
    assert [(r.alert.subject, r.outcome) for r in first.raised] == [("ann", "queued")]
    # The first process stops. Ann goes on (still within her cooldown); bob's third refusal comes.
    denials(db, "ann", T0 + timedelta(minutes=4), 3)
    denials(db, "bob", T0 + timedelta(minutes=5), 1)
    other = make("process-2")
    early = step(db, other, T0 + timedelta(minutes=3, seconds=59))  # the lease (60 s) has not run out
    later = T0 + timedelta(minutes=4, seconds=1)
    took = step(db, other, later)

    assert early.held_by == "process-1"
    assert took.rebuilt and cursor(db)[1] == "process-2"
    assert [(r.alert.subject, r.alert.first_seq) for r in took.raised] == [("bob", 4)]  # windows carried over
    assert [(rule, who) for rule, who, _, _ in alerts(db)] == [("denial-burst", "ann"), ("denial-burst", "bob")]
    back = step(db, started, later + timedelta(seconds=30))  # the first process wakes: the lease is not its
    assert back.held_by == "process-2" and len(alerts(db)) == 2


def test_a_crash_before_commit_leaves_nothing_and_the_next_step_raises_it_once(
    db: Database, started: Monitor
) -> None:
    denials(db, "ann", T0, 3)
    at = T0 + timedelta(minutes=3)

    def crash(session: Any) -> None:
        started.step(session, now=at)
        raise RuntimeError("the process died before the commit")

    with pytest.raises(RuntimeError):
        db.transaction(crash)  # and nobody told the monitor: its engine is ahead of the database

    assert alerts(db) == [] and count_rows(db, "outbox_message") == 0 and alert_events(db) == []
    assert cursor(db) == (0, "process-1")
    again = step(db, started, at)
    assert again.rebuilt and [r.alert.subject for r in again.raised] == ["ann"]
    assert step(db, started, at + timedelta(minutes=1)).raised == ()
    assert len(alerts(db)) == 1 and count_rows(db, "outbox_message") == 1 and len(alert_events(db)) == 1


def test_an_exception_inside_the_step_leaves_nothing(
    db: Database, started: Monitor, monkeypatch: pytest.MonkeyPatch
) -> None:
    denials(db, "ann", T0, 3)

    def refuse(*_: Any, **__: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(service, "move", refuse)
    with pytest.raises(OSError):
        step(db, started, T0 + timedelta(minutes=3))
    monkeypatch.undo()
    assert started.engine is None and alerts(db) == [] and count_rows(db, "outbox_message") == 0
    assert [r.outcome for r in step(db, started, T0 + timedelta(minutes=3)).raised] == ["queued"]


def test_a_muted_rule_records_its_alert_as_muted_and_sends_nothing(db: Database, started: Monitor) -> None:
    db.transaction(lambda s: service.mute(s, rule="denial-burst", until=T0 + timedelta(hours=2), by_aad_id="sup-1",
                                          by_name="Sgt Sue", reason="exercise under way", now=T0))  # fmt: skip
    denials(db, "ann", T0, 3)
    done = step(db, started, T0 + timedelta(minutes=3))

    assert [(r.outcome, r.outbox_id) for r in done.raised] == [("muted", None)]
    assert alerts(db) == [("denial-burst", "ann", 3, "muted")] and count_rows(db, "outbox_message") == 0
    [logged] = alert_events(db)
    assert (logged["outcome"], logged["recipients"], logged["conversation_id"]) == ("muted", None, None)
    # Unmuted: the next episode (after ann's cooldown) is sent.
    db.transaction(lambda s: service.unmute(s, rule="denial-burst", now=T0 + timedelta(minutes=30)))
    denials(db, "ann", T0 + timedelta(hours=1, minutes=5), 3)
    later = step(db, started, T0 + timedelta(hours=1, minutes=10))
    assert [r.outcome for r in later.raised] == ["queued"]


def test_without_a_target_the_alert_is_kept_as_no_target(db: Database) -> None:
    mon = make()
    step(db, mon, T0)
    denials(db, "ann", T0, 3)
    [raised] = step(db, mon, T0 + timedelta(minutes=3)).raised
    assert (raised.outcome, raised.outbox_id) == ("no_target", None)
    assert alerts(db) == [("denial-burst", "ann", 3, "no_target")] and count_rows(db, "outbox_message") == 0


def test_a_supervisor_querying_their_own_activity_is_raised(db: Database, started: Monitor) -> None:
    own = event("sue", action="audit.query", decision="allow", kind="supervisor", own="self")
    other = event("sue", action="audit.query", decision="allow", kind="supervisor")
    append(db, (other, T0), (own, T0 + timedelta(minutes=1)))
    [raised] = step(db, started, T0 + timedelta(minutes=2)).raised
    assert (raised.alert.rule, raised.alert.subject, raised.alert.last_seq) == ("supervisor-self", "sue", 2)


def test_the_bots_own_events_never_raise_alerts(db: Database, started: Monitor) -> None:
    system = EventDraft(action="access.ended", outcome="ok", actor=Actor(kind="system", name="scheduler"),
                        decision="deny")  # fmt: skip
    append(db, *((system, T0 + timedelta(seconds=n)) for n in range(10)))
    assert step(db, started, T0 + timedelta(minutes=1)).raised == ()


@pytest.mark.parametrize("lease", [timedelta(0), monitoring.LEASE], ids=["no-lease", "lease"])
def test_two_processes_stepping_at_once_raise_each_alert_once(db: Database, db_url: str, lease: timedelta) -> None:
    """Two Database objects (two processes' engines) and two monitors step in threads while events arrive.
    With no lease, every step contends for the cursor; with one, the holder steps and the other waits,
    until the clock passes its lease (between episodes) and either may take over."""
    register_target(db)
    people = [f"person-{n}" for n in range(6)]
    first, second = Database(db_url), Database(db_url)
    monitors = [(first, make("process-1", lease=lease)), (second, make("process-2", lease=lease))]
    stop, errors = threading.Event(), []
    clock = [T0]

    def stepping(database: Database, mon: Monitor) -> None:
        try:
            while not stop.is_set():
                step(database, mon, clock[0])
                stop.wait(0.005)
        except BaseException as exc:  # reported below
            errors.append(exc)

    def caught_up() -> bool:
        found = db.transaction(service.peek, readonly=True)
        return found is not None and found.last_seq == db.transaction(service.head_seq, readonly=True)

    threads = [threading.Thread(target=stepping, args=pair) for pair in monitors]
    try:
        for thread in threads:
            thread.start()
        for _ in range(400):  # monitoring starts where the first step finds the head: wait for it
            if db.transaction(service.peek, readonly=True) is not None or errors:
                break
            stop.wait(0.05)
        for episode in range(3):  # each person: three refusals a minute apart, episodes two hours apart
            for minute in range(3):
                clock[0] = at = T0 + timedelta(hours=episode * 2, minutes=minute)
                for who in people:
                    denials(db, who, at, 1)
        for _ in range(400):
            if caught_up() or errors:
                break
            stop.wait(0.05)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        first.close()
        second.close()
    assert not errors, errors
    assert caught_up()
    found = alerts(db)
    assert len(found) == len({(rule, who, seq) for rule, who, seq, _ in found}) == len(people) * 3
    assert sorted({who for _, who, _, _ in found}) == people
    assert count_rows(db, "outbox_message") == len(people) * 3 == len(alert_events(db))
    assert verify(db).ok


def test_a_takeover_rebuilds_from_the_lowest_seq_when_events_share_a_time(
    db: Database, started: Monitor
) -> None:
    """Events with one time come back from the `at` index in the order their rows lie in the table, which
    is not seq order once several connections insert (the two-process test above missed an alert so, now
    and then). CLUSTER lays the rows out by actor, so that amy's event lies before zed's earlier one."""
    if db.dialect != "postgresql":
        pytest.skip("SQLite keeps a table's rows in seq order")
    later = T0 + timedelta(hours=1)
    append(db, (event("zed"), later), (event("amy"), later), (event("zed"), later + timedelta(minutes=1)))
    assert step(db, started, later + timedelta(minutes=1)).raised == ()  # lease until later + 2 minutes
    db.transaction(lambda s: s.execute(text("CLUSTER audit_event USING ix_audit_event_actor_seq")))
    append(db, (event("zed"), later + timedelta(minutes=2)))  # zed's third refusal
    took = step(db, make("process-2"), later + timedelta(minutes=2, seconds=1))
    assert took.rebuilt and [(r.alert.subject, r.alert.first_seq) for r in took.raised] == [("zed", 1)]


def test_a_takeover_rebuilds_from_the_lowest_seq_when_an_alert_carries_a_stale_time(
    db: Database, started: Monitor
) -> None:
    """A step's time is read before it queues for the chain's lock, so its alert's event can carry an
    earlier time than the events before it; a rebuild must still read those events."""
    later = T0 + timedelta(hours=1)
    append(db, (event("ann"), later), *((event("bob"), later + timedelta(seconds=n)) for n in (0, 10, 20)))
    stale = step(db, started, later - timedelta(minutes=1))  # bob's alert, event 5 stamped a minute early
    assert [r.alert.subject for r in stale.raised] == ["bob"]
    append(db, (event("ann"), later + timedelta(minutes=1)))
    assert step(db, started, later + timedelta(minutes=1, seconds=10)).to_seq == 6  # lease until +2m10s
    append(db, (event("ann"), later + timedelta(minutes=2)))  # ann's third refusal
    took = step(db, make("process-2"), later + timedelta(minutes=2, seconds=11))
    assert took.rebuilt and [(r.alert.subject, r.alert.first_seq) for r in took.raised] == [("ann", 1)]
