"""The misuse monitor: reads the audit trail after its cursor, feeds the rules engine, raises alerts.

One step is one transaction (`Monitor.step`):

1. The audit chain's append lock first (core.audit.service.lock_head, as digest claims take it: this
   step appends events, and taking it before any row lock means it never holds a row while it queues
   for the lock), then the cursor's row (FOR UPDATE on PostgreSQL; on SQLite BEGIN IMMEDIATE already
   serialises writers). The cursor is made at the audit head the first time: monitoring starts when
   it is first run, and the past is not alerted on.
2. The lease: another owner whose lease has not run out is reading on; the step does nothing.
3. The engine must stand where the cursor stands. A fresh process, or one another process overtook,
   rebuilds it: the events from the engine's horizon before the cursor's event up to the cursor
   (warm, raising nothing), and the cooldowns of the alerts raised about them.
4. The next events after the cursor (at most `batch`, by seq: only new events are read), fed in
   order. Each alert is stored (unique per rule, subject and triggering event), then: `muted` when
   a supervisor muted its rule, else `queued` into the outbox for the supervisors' conversation, or
   `no_target` when none is registered; and appends an `oversight.alert` audit event (system actor).
5. The cursor moves to the last event read, and the lease is renewed.

Alerts, outbox rows, audit events and the cursor commit together or not at all, and only the lease
holder steps: no restart and no second process raises an alert twice. The engine runs ahead of the
database while the step runs: if the transaction does not commit, the caller must `forget()` it.
The monitor's own `oversight.alert` events are never fed back to the engine (which ignores system
actors anyway), so alerts cannot feed alerts.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlmodel import Session, col

from core.audit import service as audit
from core.audit.models import Actor, EventDraft, Where
from core.db import Database
from core.outbox import service as outbox
from core.oversight import service
from core.oversight.engine import Alert, Engine
from core.oversight.models import OversightCursor
from core.oversight.rules import Rule, Rules
from core.rooms.models import Room

log = logging.getLogger(__name__)

ALERT_ACTION = "oversight.alert"
SYSTEM = Actor(kind="system", name="misuse monitor")
BATCH = 2000
"""Events read in one step: bounded, so that one step never holds the audit lock for long."""
LEASE = timedelta(seconds=60)
"""How long a step's lease lasts: another process takes over this long after the owner stops."""

Render = Callable[[Alert, Rule | None, Sequence[str]], dict[str, Any]]
"""The outbox activity of an alert (its rule, and the rooms its events were about)."""


@dataclass(frozen=True)
class Raised:
    """One alert a step stored, and what became of it."""

    alert: Alert
    outcome: str  # queued | muted | no_target
    alert_id: int
    outbox_id: int | None
    rooms: tuple[str, ...]


@dataclass(frozen=True)
class Stepped:
    """What one step did. held_by: another owner's lease was live, so it did nothing."""

    from_seq: int
    to_seq: int
    raised: tuple[Raised, ...] = ()
    held_by: str | None = None
    rebuilt: bool = False
    more: bool = False
    """The batch was full: there are more events to read now."""

    @property
    def queued(self) -> bool:
        """It queued outbox messages (the sender has something to post)."""
        return any(r.outbox_id is not None for r in self.raised)


class RoomHours:
    """Rooms' own working hours by key, for the engine: read in the step's transaction, kept `ttl`
    seconds, so that a change made with /room hours counts within a minute."""

    def __init__(self, ttl: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl, self.clock = ttl, clock
        self._known: dict[str, tuple[str | None, float]] = {}
        self._session: Session | None = None

    @contextmanager
    def reading(self, session: Session) -> Iterator[None]:
        """Look rooms up in this session while the block runs."""
        self._session = session
        try:
            yield
        finally:
            self._session = None

    def __call__(self, room_key: str) -> str | None:
        now, known = self.clock(), self._known.get(room_key)
        if known is not None and (now - known[1] < self.ttl or self._session is None):
            return known[0]
        if self._session is None:
            return None
        if len(self._known) > 10_000:
            self._known.clear()
        stmt = select(col(Room.working_hours)).where(col(Room.key) == room_key)
        hours = self._session.execute(stmt).scalar()
        self._known[room_key] = (hours, now)
        return hours


class Monitor:
    """This process's misuse monitor: its engine, and its owner id for the cursor's lease."""

    def __init__(
        self, rules: Rules, *, owner: str, render: Render, timezone: str = "Europe/London",
        batch: int = BATCH, lease: timedelta = LEASE, hours: RoomHours | None = None,
    ) -> None:  # fmt: skip
        self.rules, self.owner, self.render, self.timezone = rules, owner, render, timezone
        self.batch, self.lease = batch, lease
        self.hours = hours or RoomHours()
        self.engine: Engine | None = None
        self.at_seq: int | None = None
        """The cursor position the engine stands at (None: it must be rebuilt)."""

    def forget(self) -> None:
        """Drop the engine (a step did not commit): the next step rebuilds it from the database."""
        self.engine, self.at_seq = None, None

    def _held_elsewhere(self, cursor: OversightCursor, now: datetime) -> bool:
        return (cursor.owner is not None and cursor.owner != self.owner and cursor.lease_until is not None
                and cursor.lease_until > now)  # fmt: skip

    def prepare(self, session: Session, *, now: datetime) -> bool:
        """Before a step, on a read-only transaction: whether a step has anything to do (new events, or
        the lease to renew); the engine is rebuilt here, so that the step (holding the audit lock) does
        not have to. False, and nothing read, while another process holds the lease."""
        cursor = service.peek(session)
        if cursor is None:
            return True
        if self._held_elsewhere(cursor, now):
            return False
        if self.engine is None or self.at_seq != cursor.last_seq:
            with self.hours.reading(session):
                self._rebuild(session, cursor.last_seq)
        lease = cursor.lease_until
        renew = cursor.owner != self.owner or lease is None or lease - now < self.lease / 2
        return renew or service.head_seq(session) > cursor.last_seq

    def step(self, session: Session, *, now: datetime) -> Stepped:
        """One step, in the caller's transaction (see the module docstring)."""
        head = audit.lock_head(session)
        cursor = service.cursor(session, now=now, start_seq=head.seq, lock=True)
        start = cursor.last_seq
        if self._held_elsewhere(cursor, now):
            return Stepped(start, start, held_by=cursor.owner)
        with self.hours.reading(session):
            rebuilt = self.engine is None or self.at_seq != start
            if rebuilt:
                self._rebuild(session, start)
            engine, self.at_seq = self.engine, None  # running ahead of the database until the step returns
            assert engine is not None
            events = service.events_after(session, after_seq=start, limit=self.batch)
            alerts = [alert for seen in events if seen.action != ALERT_ACTION for alert in engine.feed(seen)]
        end = events[-1].seq if events else start
        raised = self._raise(session, alerts, now=now) if alerts else ()
        service.move(session, last_seq=end, owner=self.owner, lease_until=now + self.lease, now=now)
        self.at_seq = end
        return Stepped(start, end, raised, rebuilt=rebuilt, more=len(events) >= self.batch)

    def _rebuild(self, session: Session, upto_seq: int) -> None:
        """A fresh engine standing at upto_seq: the events within its horizon fed warm, cooldowns restored."""
        self.forget()
        engine = Engine(self.rules, timezone=self.timezone, room_hours=self.hours)
        last_at = service.event_at(session, upto_seq) if upto_seq else None
        if last_at is not None:
            since = last_at - engine.horizon()
            for seen in service.events_within(session, since=since, upto_seq=upto_seq):
                if seen.action != ALERT_ACTION:
                    engine.feed(seen, warm=True)
            for rule, subject, at in service.raised_since(session, since=since, upto_seq=upto_seq):
                engine.cooled(rule, subject, at)
        self.engine, self.at_seq = engine, upto_seq

    def _raise(self, session: Session, alerts: list[Alert], *, now: datetime) -> tuple[Raised, ...]:
        """Store each alert, send or hold it, and append its audit events (one append for them all)."""
        mutes = service.active_mutes(session, now=now)
        target = service.target(session)
        raised: list[Raised] = []
        drafts: list[EventDraft] = []
        for alert in alerts:
            outcome = "muted" if alert.rule in mutes else "queued" if target is not None else "no_target"
            alert_id = service.record_alert(session, alert, outcome=outcome, now=now)
            if alert_id is None:  # raised already (cannot happen while the cursor moves with it): not again
                log.error("oversight alert %s about %s at event %d was raised already", alert.rule,
                          alert.subject, alert.last_seq)  # fmt: skip
                continue
            rooms = tuple(service.rooms_of(session, subject=alert.subject, first_seq=alert.first_seq,
                                           last_seq=alert.last_seq))  # fmt: skip
            outbox_id = None
            if outcome == "queued":
                assert target is not None
                activity = self.render(alert, self.rules.get(alert.rule), rooms)
                message = outbox.enqueue(session=session, kind="alert", reference=target.reference,
                                         activity=activity, now=now, tenant_id=target.tenant_id,
                                         dedupe_key=f"oversight:{alert_id}")  # fmt: skip
                outbox_id = message.id if message is not None else None
                service.attach_outbox(session, alert_id, outbox_id)
            elif outcome == "no_target":
                log.warning("oversight alert %s (%s) has nowhere to go: no supervisor has run "
                            "/oversight here", alert.rule, alert_id)  # fmt: skip
            raised.append(Raised(alert, outcome, alert_id, outbox_id, rooms))
            drafts.append(_event(alert, outcome, alert_id, outbox_id, rooms, target_conversation=(
                target.conversation_id if target is not None and outcome == "queued" else None)))
        if drafts:
            audit.append(session, drafts, now=now)
        return tuple(raised)


def _event(alert: Alert, outcome: str, alert_id: int, outbox_id: int | None, rooms: Sequence[str], *,
           target_conversation: str | None) -> EventDraft:  # fmt: skip
    """The audit event of one alert: whom it is about and why, and where it went."""
    arguments: dict[str, Any] = {"rule": alert.rule, "subject": alert.subject, "first_seq": alert.first_seq,
                                 "last_seq": alert.last_seq, "count": alert.count, "alert_id": alert_id,
                                 "rooms": list(rooms)}  # fmt: skip
    if outbox_id is not None:
        arguments["outbox_id"] = outbox_id
    return EventDraft(
        action=ALERT_ACTION, outcome=outcome, actor=SYSTEM, where=Where(conversation_id=target_conversation),
        arguments=arguments, justification=f"misuse monitoring: rule {alert.rule}",
        recipients=[target_conversation] if target_conversation else None, detail=alert.summary,
    )  # fmt: skip


def run(db: Database, monitor: Monitor, *, now: datetime) -> Stepped:
    """One step in a transaction of its own, in this thread (tests, tools; the bot uses the group writer):
    a step that does not commit leaves the monitor to rebuild its engine."""
    try:
        return db.transaction(lambda session: monitor.step(session, now=now))
    except BaseException:
        monitor.forget()
        raise

