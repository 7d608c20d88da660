"""The simulated month behind bench/oversight.py: a force's people, rooms and habits, and the misuse
injected into their trail. Seeded: the same seed makes the same month."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from core.oversight.engine import Seen
from core.oversight.rules import WorkingHours

ZONE = ZoneInfo("Europe/London")
START = datetime(2026, 3, 2, tzinfo=ZONE)  # a Monday; the clocks go forward on Sunday 29 March
KINDS_OF_AGENCY = ("socialcare", "health", "education", "housing", "probation", "charity", "edt", "ambulance")
AREAS = ("north", "south", "east", "west", "city")
HOURS = (("08:00-18:00 Mon-Fri", 30), ("07:00-19:00 Mon-Fri", 8), ("08:00-18:00 Mon-Sat", 5), ("always", 7))
SHIFTS = {"early": (7 * 60, 15 * 60), "late": (15 * 60, 23 * 60), "night": (22 * 60, 30 * 60),
          "office": (8 * 60, 17 * 60)}  # fmt: skip
OFFICER_ACTIONS = (
    ("task.list", 30),
    ("task.show", 20),
    ("room.status", 8),
    ("task.add", 8),
    ("task.done", 8),
    ("task.note", 6),
    ("digest.now", 4),
    ("help", 3),
    ("room.list", 3),
    ("task.assign", 3),
)
LEAD_ACTIONS = (*OFFICER_ACTIONS, ("access", 3), ("invite", 2), ("audit.query", 2), ("digest.at", 1),
                ("revoke", 0.5))  # fmt: skip
GUEST_ACTIONS = (("task.list", 40), ("task.show", 30), ("task.done", 10), ("task.note", 8), ("digest.now", 6),
                 ("room.status", 4), ("help", 2))  # fmt: skip
SUPERVISOR_ACTIONS = (
    ("room.status", 20),
    ("audit.query", 25),
    ("task.list", 15),
    ("access", 10),
    ("room.list", 10),
    ("agency.list", 5),
    ("audit.verify", 2),
    ("audit.export", 1),
)
FORBIDDEN = {"officer": ("audit.query", "agency.add", "invite", "room.close"),
             "guest": ("task.add", "task.assign", "invite", "audit.query", "room.list"),
             "supervisor": ("task.add", "task.done")}  # fmt: skip
READS = ("task.list", "task.show", "room.status", "digest.now")

ASSUMPTIONS = """\
What the simulated month assumes (`bench/oversight_trail.py`; read it before trusting the figures):

- **People.** 236 officers on rotating earlies (07-15), lates (15-23) and nights (22-06), or office
  hours for detectives; 10 room leads, 3 of them very busy; 4 supervisors; 150 guests of 40 partner
  agencies working office hours (emergency-duty social workers and ambulance staff in evening
  shifts). Officers on shift work about 5 days in 7; office workers Monday to Friday, officers with
  an occasional weekend day (8%), guests rarely (0.5% of weekend days, which the after-hours rule
  reports in a Mon-Fri room: counted as false). Every person is in 1-3 rooms; each lead runs 5.
- **Rooms.** 50 rooms: 60% 08:00-18:00 Mon-Fri, 16% 07:00-19:00 Mon-Fri, 10% 08:00-18:00 Mon-Sat,
  14% always (24/7 operations); guests of evening agencies are put in 24/7 rooms.
- **Ordinary use.** 3-8 short sessions a working day (leads 6-14, busy leads 15-30, with a busy
  hour of 20-45 commands on about one day in six), 1-6 commands each, mostly reads. Supervisors
  review 5-20 rooms a day (status, tasks, `/audit --room`). Leads look at their own rooms'
  audit (recorded as `own: room`, by an officer).
- **Benign noise.** A mistyped room key in 2% of sessions (a second, different typo in a tenth of
  those); on 3% of user-days a command the person may not use, tried 1-3 times; on 4% of guests'
  working days a late look at a room (1-2 requests up to 3 hours after closing), and on 0.2% a
  longer evening catch-up of 3-6 requests (which the after-hours rule reports: counted as false);
  sessions that start or end up to 25 minutes outside a room's hours.
- **Injected misuse** (24 of each, random people of the kinds it applies to, at random times; one
  person's instances of one rule at least a cooldown and a window apart, because a rule alerts
  once per cooldown by design): 5-15 refusals over 2-12 minutes; a guest making 3-12 requests over
  10-90 minutes outside a room's hours; 10-20 rooms touched over 1-10 hours; 55-150 reads in 20-70
  minutes; 1-4 attempts after access expired or was revoked; 4-12 made-up room keys over 5-50
  minutes; a supervisor's `/audit` of their own activity or room. The ranges straddle the
  thresholds on purpose: the mildest instances are meant to be missed.
- **Not modelled.** After-end attempts are never benign here (the issue counts any as misuse), and
  there is no collusion, slow drip over weeks, or misuse that looks like ordinary work: no rule
  over counts can see those, and the figures say nothing about them.
"""


@dataclass
class Person:
    aad: str
    name: str
    kind: str  # officer | guest | supervisor
    agency: str | None
    shift: str
    lead: bool = False
    busy: bool = False
    rooms: list[str] = field(default_factory=list)


@dataclass
class Room:
    key: str
    hours: str


@dataclass
class Injection:
    rule: str
    subject: str
    start: datetime
    end: datetime
    what: str


@dataclass
class World:
    start: datetime
    days: int
    agencies: list[str]
    rooms: list[Room]
    people: list[Person]

    @classmethod
    def make(cls, rng: random.Random, days: int) -> World:
        """40 agencies, 50 rooms, 400 people, memberships."""
        agencies = [f"{k}-{a}" for k in KINDS_OF_AGENCY for a in AREAS]
        rooms = [Room(f"OP-{w}", rng.choices([h for h, _ in HOURS], [n for _, n in HOURS])[0])
                 for w in _room_words(rng, 50)]  # fmt: skip
        people: list[Person] = []

        def person(kind: str, shift: str, agency: str | None = None) -> Person:
            n = len(people)
            aad = f"{rng.getrandbits(32):08x}-{n:04x}-4000-8000-{rng.getrandbits(48):012x}"
            p = Person(aad, f"{'PC ' if kind == 'officer' else ''}{_name(rng)}", kind, agency, shift)
            people.append(p)
            return p

        for i in range(10):
            lead = person("officer", "office")
            lead.lead, lead.busy = True, i < 3
            lead.rooms = [r.key for r in rooms[i * 5 : i * 5 + 5]]
        for _ in range(236):
            p = person("officer", rng.choices(("early", "late", "night", "office"), (3, 3, 2, 3))[0])
            p.rooms = [r.key for r in rng.sample(rooms, rng.choice((1, 1, 2, 2, 3)))]
        for _ in range(4):
            person("supervisor", "office")
        always = [r.key for r in rooms if r.hours == "always"]
        for i in range(150):
            agency = agencies[i % len(agencies)]
            evening = agency.startswith(("edt", "ambulance"))
            p = person("guest", "evening" if evening else "office", agency)
            pool = always if evening and always else [r.key for r in rooms]
            p.rooms = rng.sample(pool, min(len(pool), rng.choice((1, 1, 2, 3))))
        return cls(START, days, agencies, rooms, people)


def _room_words(rng: random.Random, n: int) -> list[str]:
    words = (
        "LANTERN",
        "BIRCH",
        "HARBOUR",
        "KESTREL",
        "MERIDIAN",
        "FALCON",
        "ORCHARD",
        "SLATE",
        "TIDE",
        "WILLOW",
        "ANVIL",
        "BEACON",
        "CEDAR",
        "DRIFT",
        "EMBER",
        "FJORD",
        "GLADE",
        "HAWK",
        "IRIS",
        "JUNIPER",
    )
    return [f"{w}{i // len(words) or ''}" for i, w in enumerate(words * (n // len(words) + 1))][:n]


def _name(rng: random.Random) -> str:
    first = ("Dana", "Sam", "Priya", "Tom", "Aisha", "Ben", "Chloe", "Dev", "Ella", "Finn", "Grace", "Hari")
    last = (
        "Ray",
        "Okafor",
        "Shah",
        "Evans",
        "Hughes",
        "Khan",
        "Lewis",
        "Moss",
        "Patel",
        "Reid",
        "Stone",
        "Wood",
    )
    return f"{rng.choice(first)} {rng.choice(last)}"


class Trail:
    """Events as they are made (any order); `seen()` sorts them and gives them seqs."""

    def __init__(self) -> None:
        self.rows: list[
            tuple[datetime, Person, str, str | None, str | None, str, str | None, dict[str, Any]]
        ] = []

    def add(
        self,
        at: datetime,
        p: Person,
        action: str,
        room: str | None,
        *,
        decision: str | None = "allow",
        outcome: str = "ok",
        rule: str | None = None,
        args: dict[str, Any] | None = None,
    ) -> None:
        self.rows.append((at.astimezone(UTC), p, action, room, decision, outcome, rule, args or {}))

    def seen(self) -> list[Seen]:
        self.rows.sort(key=lambda r: r[0])
        return [Seen(seq=i, at=at, actor=p.aad, actor_kind=p.kind, action=action, outcome=outcome,
                     actor_name=p.name, actor_agency=p.agency, room_key=room, decision=decision,
                     rule=rule or _deciding(p, decision), arguments=args)
                for i, (at, p, action, room, decision, outcome, rule, args)
                in enumerate(self.rows, 1)]  # fmt: skip


def _deciding(p: Person, decision: str | None) -> str | None:
    return None if decision is None else f"{p.kind}-{'forbid' if decision == 'deny' else 'permit'}"


def _pick(rng: random.Random, table: tuple[tuple[str, float], ...]) -> str:
    return rng.choices([a for a, _ in table], [w for _, w in table])[0]


def _works(rng: random.Random, p: Person, day: datetime, week: int) -> bool:
    weekend = day.weekday() >= 5
    if p.shift in ("early", "late", "night"):
        return rng.random() < 5 / 7
    if p.kind == "guest" and p.shift == "evening":
        return rng.random() < 0.6
    if p.kind == "guest":  # partner agencies' office staff: a weekend day is rare
        return rng.random() < (0.005 if weekend else 0.9)
    return rng.random() < (0.08 if weekend else 0.93)


def _shift(p: Person, week: int) -> tuple[int, int]:
    if p.shift in ("early", "late", "night") and p.kind == "officer":
        order = ("early", "late", "night")
        return SHIFTS[order[(order.index(p.shift) + week) % 3]]
    if p.shift == "evening":
        return 16 * 60, 24 * 60
    return (9 * 60, 17 * 60) if p.kind == "guest" else SHIFTS["office"]


def _session(rng: random.Random, t: Trail, p: Person, at: datetime, room: str | None, count: int,
             actions: tuple[tuple[str, float], ...]) -> datetime:  # fmt: skip
    if room is not None and rng.random() < 0.02:  # a mistyped room key first
        for _ in range(2 if rng.random() < 0.1 else 1):
            typo = _typo(rng, room)
            t.add(at, p, "task.list", None, decision=None, outcome="no_room", args={"room": typo})
            at += timedelta(seconds=rng.uniform(5, 40))
    for _ in range(count):
        action = _pick(rng, actions)
        args: dict[str, Any] = {"room": room} if room else {}
        if action == "audit.query" and p.kind == "officer" and room:
            args["own"] = "room"  # a lead's /audit of their own room
        t.add(at, p, action, room, args=args)
        at += timedelta(seconds=rng.uniform(15, 180))
    return at


def _typo(rng: random.Random, key: str) -> str:
    body = list(key[3:])
    i = rng.randrange(len(body))
    if rng.random() < 0.5 and len(body) > 3:
        del body[i]
    else:
        body[i] = rng.choice("AEIOURSTLN")
    return "OP-" + "".join(body)


def ordinary(world: World, rng: random.Random, t: Trail) -> None:
    """Everyone's ordinary month, with its benign noise."""
    hours = {r.key: WorkingHours.parse(r.hours) for r in world.rooms}
    keys = [r.key for r in world.rooms]
    for day_n in range(world.days):
        day = world.start + timedelta(days=day_n)
        week = day_n // 7
        for p in world.people:
            if not _works(rng, p, day, week):
                continue
            begin, end = _shift(p, week)
            if p.kind == "supervisor":
                sessions, per = rng.randint(4, 10), (1, 4)
                pool = rng.sample(keys, rng.randint(5, 20))
            elif p.lead:
                sessions, per = (rng.randint(15, 30), (2, 10)) if p.busy else (rng.randint(6, 14), (1, 8))
                pool = p.rooms + rng.sample(keys, rng.choice((0, 1, 2)))
            else:
                sessions, per, pool = (
                    rng.randint(3, 8) if p.kind == "officer" else rng.randint(1, 4),
                    (1, 6),
                    p.rooms,
                )
            actions = (SUPERVISOR_ACTIONS if p.kind == "supervisor" else LEAD_ACTIONS if p.lead
                       else GUEST_ACTIONS if p.kind == "guest" else OFFICER_ACTIONS)  # fmt: skip
            for _ in range(sessions):
                at = day + timedelta(minutes=rng.uniform(begin - 25, end + 5))
                room = rng.choice(pool) if pool and rng.random() < 0.92 else None
                if (
                    p.kind == "guest"
                    and room is not None
                    and not hours[room].contains(at, timedelta(minutes=25))
                ):
                    at = day + timedelta(
                        minutes=rng.uniform(9 * 60, 17 * 60)
                    )  # guests keep to the room's day
                _session(rng, t, p, at, room, rng.randint(*per), actions)
            if p.busy and rng.random() < 1 / 6:  # a busy hour
                at = day + timedelta(minutes=rng.uniform(begin, end - 60))
                for _ in range(rng.randint(20, 45)):
                    action = rng.choice(READS) if rng.random() < 0.8 else _pick(rng, LEAD_ACTIONS)
                    t.add(at, p, action, rng.choice(p.rooms))
                    at += timedelta(seconds=rng.uniform(20, 150))
            if rng.random() < 0.03:  # a command they may not use, tried a few times
                at = day + timedelta(minutes=rng.uniform(begin, end))
                action, room = rng.choice(FORBIDDEN[p.kind]), rng.choice(p.rooms) if p.rooms else None
                for _ in range(rng.choice((1, 1, 1, 2, 2, 3))):
                    t.add(at, p, action, room, decision="deny", outcome="denied")
                    at += timedelta(seconds=rng.uniform(5, 90))
            if p.kind == "guest" and p.rooms:
                room = rng.choice(p.rooms)
                closing = _closing(hours[room], day)
                if closing is not None and rng.random() < 0.04:  # a late look
                    at = closing + timedelta(minutes=rng.uniform(0, 180))
                    _session(rng, t, p, at, room, rng.choice((1, 1, 2)), GUEST_ACTIONS)
                elif closing is not None and rng.random() < 0.002:  # an evening catch-up
                    at = closing + timedelta(minutes=rng.uniform(60, 240))
                    _session(rng, t, p, at, room, rng.randint(3, 6), GUEST_ACTIONS)


def _closing(hours: WorkingHours, day: datetime) -> datetime | None:
    ends = [s.end for s in hours.spans or () if day.weekday() in s.days and s.end > s.start]
    return day + timedelta(minutes=max(ends)) if ends else None
