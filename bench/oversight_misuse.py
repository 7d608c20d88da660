"""The misuse injected into the simulated month (bench/oversight_trail.py): each rule's pattern, by
random people of the kinds it applies to, at random times."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from bench.oversight_trail import FORBIDDEN, READS, Injection, Person, Trail, World, ordinary
from core.oversight.engine import Seen
from core.oversight.rules import Rules, WorkingHours

Inject = Callable[[random.Random, Trail, Person, datetime, World], tuple[datetime, str]]


def _spread(rng: random.Random, start: datetime, count: int, minutes: float) -> list[datetime]:
    return sorted(start + timedelta(minutes=rng.uniform(0, minutes)) for _ in range(count))


def _denials(rng: random.Random, t: Trail, p: Person, at: datetime, w: World) -> tuple[datetime, str]:
    n, span = rng.randint(5, 15), rng.uniform(2, 12)
    times = _spread(rng, at, n, span)
    room = rng.choice(p.rooms) if p.rooms else None
    for moment in times:
        t.add(moment, p, rng.choice(FORBIDDEN[p.kind]), room, decision="deny", outcome="denied")
    return times[-1], f"{n} refusals over {span:.0f} min"


def _after_hours(rng: random.Random, t: Trail, p: Person, at: datetime, w: World) -> tuple[datetime, str]:
    hours = {r.key: WorkingHours.parse(r.hours) for r in w.rooms}
    rooms = [r for r in p.rooms if hours[r].spans is not None] or [
        r.key for r in w.rooms if r.hours != "always"
    ]
    room = rng.choice(rooms)
    n, span = rng.randint(3, 12), rng.uniform(10, 90)
    quiet = timedelta(minutes=45)  # clear of the room's hours and the rule's grace, the whole time
    while any(hours[room].contains(at + timedelta(minutes=m), quiet) for m in range(0, int(span) + 1, 5)):
        at += timedelta(minutes=37)
    times = _spread(rng, at, n, span)
    for moment in times:
        t.add(moment, p, rng.choice(READS), room, args={"room": room})
    return times[
        -1
    ], f"{len(times)} requests over {span:.0f} min in {room} ({hours[room]}), from {at:%a %H:%M}"


def _many_rooms(rng: random.Random, t: Trail, p: Person, at: datetime, w: World) -> tuple[datetime, str]:
    n, span = rng.randint(10, 20), rng.uniform(60, 600)
    rooms = rng.sample([r.key for r in w.rooms], n)
    times = _spread(rng, at, n, span)
    for moment, room in zip(times, rooms, strict=True):
        member = room in p.rooms
        t.add(
            moment,
            p,
            rng.choice(("room.status", "task.list")),
            room,
            decision="allow" if member else "deny",
            outcome="ok" if member else "denied",
        )
    return times[-1], f"{n} rooms over {span / 60:.1f} h"


def _bulk(rng: random.Random, t: Trail, p: Person, at: datetime, w: World) -> tuple[datetime, str]:
    n, span = rng.randint(55, 150), rng.uniform(20, 70)
    times = _spread(rng, at, n, span)
    for moment in times:
        t.add(moment, p, rng.choice(READS), rng.choice(p.rooms) if p.rooms else None)
    return times[-1], f"{n} reads over {span:.0f} min"


def _after_end(rng: random.Random, t: Trail, p: Person, at: datetime, w: World) -> tuple[datetime, str]:
    n, rule = rng.randint(1, 4), rng.choice(("guest-access-expired", "guest-access-revoked"))
    times = _spread(rng, at, n, 10)
    for moment in times:
        t.add(moment, p, rng.choice(READS), rng.choice(p.rooms), decision="deny", outcome="denied", rule=rule)
    return times[-1], f"{n} attempts ({rule})"


def _probing(rng: random.Random, t: Trail, p: Person, at: datetime, w: World) -> tuple[datetime, str]:
    n, span = rng.randint(4, 12), rng.uniform(5, 50)
    times = _spread(rng, at, n, span)
    for i, moment in enumerate(times):
        key = f"OP-{rng.choice(('ALPHA', 'DELTA', 'NOVA', 'RAVEN', 'ZULU', 'GHOST'))}{i}{rng.randint(1, 99)}"
        t.add(moment, p, "task.list", None, decision=None, outcome="no_room", args={"room": key})
    return times[-1], f"{n} made-up keys over {span:.0f} min"


def _self_audit(rng: random.Random, t: Trail, p: Person, at: datetime, w: World) -> tuple[datetime, str]:
    own = rng.choice(("self", "room"))
    room = rng.choice([r.key for r in w.rooms]) if own == "room" else None
    t.add(at, p, rng.choice(("audit.query", "audit.query", "audit.export")), room, args={"own": own})
    return at, f"own {own}"


INJECTIONS: dict[str, tuple[tuple[str, ...], Inject]] = {
    "denial-burst": (("officer", "guest"), _denials), "guest-after-hours": (("guest",), _after_hours),
    "many-rooms": (("officer", "guest"), _many_rooms), "bulk-consultation": (("officer", "guest"), _bulk),
    "after-end": (("guest",), _after_end), "room-probing": (("officer", "guest"), _probing),
    "supervisor-self": (("supervisor",), _self_audit),
}  # fmt: skip


def generate(
    world: World, rng: random.Random, rules: Rules, per_rule: int = 24
) -> tuple[list[Seen], list[Injection]]:
    """The month's events in seq order, and the misuse injected into them."""
    t = Trail()
    ordinary(world, rng, t)
    injections: list[Injection] = []
    month = timedelta(days=world.days) - timedelta(hours=12)
    for rule_id, (kinds, inject) in INJECTIONS.items():
        rule = rules.get(rule_id)
        gap = (rule.cooldown + (rule.window or timedelta(0))) if rule else timedelta(days=1)
        people = [p for p in world.people if p.kind in kinds and (p.rooms or p.kind == "supervisor")]
        for _ in range(per_rule):
            while True:
                p, at = rng.choice(people), world.start + month * rng.random()
                if all(
                    i.subject != p.aad or i.rule != rule_id or abs(i.start - at) > gap * 2 for i in injections
                ):
                    break
            end, what = inject(rng, t, p, at, world)
            injections.append(Injection(rule_id, p.aad, at.astimezone(UTC), end.astimezone(UTC),
                                        f"{p.name} ({p.kind}): {what}"))  # fmt: skip
    return t.seen(), injections
