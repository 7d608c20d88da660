"""The misuse rules' evaluator: fed audit events in seq order, it keeps per-person windows and says
which rules an event completes. Pure (no database): the monitor (core/oversight/monitor.py) feeds it
from the audit table, the simulator (bench/oversight.py) from a simulated month.

Each rule keeps, per (rule, person), a window of that person's matching events (core/oversight/
windows.py), evicted by time as events arrive; an alert is raised when the window's count (or, for
many-rooms and room-probing, its number of distinct rooms) reaches the threshold and the rule is not
cooling down for that person. System and unidentified actors are never subjects. Idle windows and
spent cooldowns are swept every few minutes of event time, so state stays bounded by the people
active within the horizon.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from core.oversight.rules import KINDS, Rule, Rules, WorkingHours, words
from core.oversight.windows import Entry, Window


@dataclass(frozen=True)
class Seen:
    """An audit event as the rules read it."""

    seq: int
    at: datetime  # aware, UTC
    actor: str | None  # Entra object id (None: the bot itself, or unidentified)
    actor_kind: str | None  # officer | guest | supervisor | system | None
    action: str
    outcome: str
    actor_name: str | None = None
    actor_agency: str | None = None
    room_key: str | None = None
    decision: str | None = None  # allow | deny | None
    rule: str | None = None  # the deciding policy's @id
    arguments: Mapping[str, Any] = field(default_factory=dict)
    detail: str | None = None

    @classmethod
    def from_row(cls, row: Any) -> Seen:
        """From an audit_event row (ORM object or Row): `at` is the stored ISO text."""
        at = datetime.fromisoformat(str(row.at).replace("Z", "+00:00"))
        try:
            arguments = json.loads(row.arguments or "{}")
        except ValueError:
            arguments = {}
        return cls(seq=int(row.seq), at=at, actor=row.actor_aad_id, actor_kind=row.actor_kind,
                   action=row.action, outcome=row.outcome, actor_name=row.actor_name,
                   actor_agency=row.actor_agency, room_key=row.room_key, decision=row.decision,
                   rule=row.rule, arguments=arguments if isinstance(arguments, dict) else {},
                   detail=row.detail)  # fmt: skip


@dataclass(frozen=True)
class Alert:
    """A rule matched: `subject` (an Entra object id) did `count` matching things, events
    first_seq..last_seq, the last at `at`. `summary`: plain words for supervisors."""

    rule: str
    subject: str
    subject_name: str | None
    first_seq: int
    last_seq: int
    first_at: datetime
    at: datetime
    count: int
    summary: str


RoomHours = Callable[[str], str | None]
"""A room's own working hours by room key ("07:00-19:00 Mon-Fri", "always"), None: the rule's default."""


class Engine:
    """Incremental evaluation of the rules over events fed in seq order."""

    def __init__(self, rules: Rules, *, timezone: str = "Europe/London",
                 room_hours: RoomHours | None = None) -> None:  # fmt: skip
        self.rules = rules
        self._active = tuple(rule for rule in rules.rules if rule.enabled)
        self._zone = ZoneInfo(timezone)
        self._room_hours = room_hours
        self._hours: dict[str, WorkingHours | None] = {}  # parsed room hours by their text
        self._windows: dict[tuple[str, str], Window] = {}
        self._cooldowns: dict[tuple[str, str], datetime] = {}
        self._position = 0
        self._swept: datetime | None = None

    @property
    def position(self) -> int:
        """The seq of the last event fed (0: none)."""
        return self._position

    def horizon(self) -> timedelta:
        """How far back the longest window and cooldown reach: what a fresh engine must be fed
        (warm=True) before it can judge new events as a long-running one would."""
        spans = [span for rule in self._active for span in (rule.window, rule.cooldown) if span is not None]
        return max(spans, default=timedelta(0))

    def feed(self, event: Seen, *, warm: bool = False) -> list[Alert]:
        """Take one event (seq greater than any fed before). Returns the alerts it raises, after each
        rule's cooldown per subject; warm=True: only to rebuild windows (returns [], and an alert
        that would have been raised still starts its cooldown)."""
        if event.seq <= self._position:
            return []  # fed already: feeding twice must not count twice
        self._position = event.seq
        if self._swept is None or event.at - self._swept >= SWEEP_EVERY:
            self._sweep(event.at)
        subject = event.actor
        if subject is None or event.actor_kind not in KINDS:
            return []
        alerts: list[Alert] = []
        for rule in self._active:
            item = _MATCH[rule.id](self, rule, event)
            if item is None:
                continue
            key = (rule.id, subject)
            window = self._windows.get(key)
            if window is None:
                window = self._windows[key] = Window()
            if rule.window is None:
                window.clear()
            else:
                window.evict(event.at - rule.window)
            window.add(Entry(event.at, event.seq, item, event.action, event.room_key))
            count = window.count(distinct=rule.id in _DISTINCT)
            if count < rule.threshold:
                continue
            until = self._cooldowns.get(key)
            if until is not None and event.at < until:
                continue
            self._cooldowns[key] = event.at + rule.cooldown
            if not warm:
                alerts.append(self._alert(rule, event, window, count))
        return alerts

    def cooled(self, rule: str, subject: str, at: datetime) -> None:
        """An alert of `rule` about `subject` was raised at `at` (restored from the database on
        warm-up): its cooldown runs from then."""
        found = self.rules.get(rule)
        if found is None:
            return
        until = at + found.cooldown
        key = (rule, subject)
        if key not in self._cooldowns or self._cooldowns[key] < until:
            self._cooldowns[key] = until

    def state_size(self) -> tuple[int, int]:
        """(windows, cooldowns) held: what the sweep keeps bounded."""
        return len(self._windows), len(self._cooldowns)

    def _sweep(self, now: datetime) -> None:
        """Forget windows whose events have all left them, and cooldowns that have run out."""
        self._swept = now
        spans = {rule.id: rule.window for rule in self._active}
        for key, window in list(self._windows.items()):
            span = spans.get(key[0])
            if span is not None:
                window.evict(now - span)
            if span is None or not window:
                del self._windows[key]
        for key, until in list(self._cooldowns.items()):
            if until <= now:
                del self._cooldowns[key]

    # ---- what each rule counts (None: the event is not one of its kind) -------------------------

    def _excluded(self, rule: Rule, event: Seen) -> bool:
        return event.actor_kind in rule.options.get("exclude_kinds", ())

    def _denial(self, rule: Rule, event: Seen) -> object | None:
        return None if event.decision != "deny" or self._excluded(rule, event) else event.seq

    def _after_hours(self, rule: Rule, event: Seen) -> object | None:
        if event.actor_kind != "guest" or event.room_key is None:
            return None
        hours = self.hours(rule, event.room_key)
        return None if hours.contains(event.at.astimezone(self._zone), rule.options["grace"]) else event.seq

    def _room(self, rule: Rule, event: Seen) -> object | None:
        if event.room_key is None or event.outcome == "no_room" or self._excluded(rule, event):
            return None
        return event.room_key

    def _read(self, rule: Rule, event: Seen) -> object | None:
        read = event.decision == "allow" and event.action in rule.options["actions"]
        return event.seq if read and not self._excluded(rule, event) else None

    def _ended(self, rule: Rule, event: Seen) -> object | None:
        return event.seq if event.decision == "deny" and event.rule in rule.options["policy_rules"] else None

    def _probe(self, rule: Rule, event: Seen) -> object | None:
        if event.outcome != "no_room" or self._excluded(rule, event):
            return None
        named = event.arguments.get("room") or event.room_key
        return str(named).upper() if named else None

    def _self_audit(self, rule: Rule, event: Seen) -> object | None:
        own = event.arguments.get("own")
        if own not in ("self", "room") or event.action not in rule.options["actions"]:
            return None
        return event.seq if event.actor_kind in rule.options["kinds"] else None

    def hours(self, rule: Rule, room_key: str) -> WorkingHours:
        """A room's working hours: its own when it has valid ones, else the rule's default."""
        text = self._room_hours(room_key) if self._room_hours is not None else None
        if text is None:
            return rule.options["hours"]  # type: ignore[no-any-return]
        if text not in self._hours:
            if len(self._hours) > 10_000:
                self._hours.clear()
            try:
                self._hours[text] = WorkingHours.parse(text)
            except ValueError:
                self._hours[text] = None  # a room's bad hours must not stop the monitor
        return self._hours[text] or rule.options["hours"]

    # ---- alerts --------------------------------------------------------------------------------

    def _alert(self, rule: Rule, event: Seen, window: Window, count: int) -> Alert:
        first = window.entries[0]
        return Alert(rule=rule.id, subject=event.actor or "", subject_name=event.actor_name,
                     first_seq=first.seq, last_seq=event.seq, first_at=first.at, at=event.at, count=count,
                     summary=summarise(self, rule, event, window, count))  # fmt: skip


SWEEP_EVERY = timedelta(minutes=5)
_DISTINCT = frozenset({"many-rooms", "room-probing"})
_MATCH: dict[str, Callable[[Engine, Rule, Seen], object | None]] = {
    "denial-burst": Engine._denial, "guest-after-hours": Engine._after_hours, "many-rooms": Engine._room,
    "bulk-consultation": Engine._read, "after-end": Engine._ended, "room-probing": Engine._probe,
    "supervisor-self": Engine._self_audit,
}  # fmt: skip


def _listed(names: list[str], most: int = 6) -> str:
    names = list(dict.fromkeys(names))  # first occurrence order, once each
    shown = ", ".join(names[:most])
    return shown + (f" and {len(names) - most} more" if len(names) > most else "")


def _who(event: Seen) -> str:
    name = event.actor_name or f"someone (id {(event.actor or '')[:8]})"
    about = ", ".join(part for part in (event.actor_kind, event.actor_agency) if part)
    return f"{name} ({about})" if about else name


def _span(first: datetime, last: datetime) -> str:
    seconds = (last - first).total_seconds()
    return "under a minute" if seconds < 60 else words(last - first)


def summarise(engine: Engine, rule: Rule, event: Seen, window: Window, count: int) -> str:
    """The alert in plain words for supervisors: who, what, how many, which rooms, over what period."""
    entries = list(window)
    who, span = _who(event), _span(entries[0].at, event.at)
    actions = _listed([e.action for e in entries])
    rooms = [e.room for e in entries if e.room]
    where = f" in {_listed(rooms)}" if rooms else ""
    local = event.at.astimezone(engine._zone).strftime("%a %d %b %H:%M")
    if rule.id == "denial-burst":
        return f"{who} was refused {count} times in {span} ({actions}){where}, the last at {local}"
    if rule.id == "guest-after-hours":
        hours = engine.hours(rule, event.room_key or "")
        lots = f"made {count} requests in {span}" if count > 1 else "made a request"
        return (f"{who} {lots} ({actions}){where} outside working hours ({hours}), "
                f"the last at {local}")  # fmt: skip
    if rule.id == "many-rooms":
        return f"{who} touched {count} different rooms in {span}: {_listed(rooms, 12)}; the last at {local}"
    if rule.id == "bulk-consultation":
        return f"{who} made {count} reads in {span} ({actions}){where}, the last at {local}"
    if rule.id == "after-end":
        why = {"guest-access-revoked": "was revoked"}.get(event.rule or "", "had expired")
        return f"{who} tried {event.action}{where} at {local}, after their access {why}"
    if rule.id == "room-probing":
        keys = _listed([str(e.item) for e in entries], 12)
        return (f"{who} named {count} room keys that do not exist or are hidden from them in {span}: "
                f"{keys}; the last at {local}")  # fmt: skip
    own = "their own activity" if event.arguments.get("own") == "self" else "their own room"
    return f"{who} ran {event.action} on {own}{where} at {local}"
