"""A large, valid audit chain in a SQLite file, generated once and cached under var/bench/.

Rows are what `core.audit.service._to_row` would make of realistic drafts: ~40
rooms of uneven activity, ~500 people (officers, supervisors, partner-agency
guests), the usual mix of commands and outcomes, several events a second in
working hours and a trickle at night. Building 1,000,000 `AuditEvent` models
through `_to_row` would take minutes, so the column values are laid out here
for drafts whose text needs no cleaning, hashed with the product's own
`hashed_values`/`event_hash`, and every 1,000th row is checked to be exactly
what `_to_row` makes of the same draft. The file is keyed by size and by a
digest of the schema and chain code, so a change there regenerates it.
"""

from __future__ import annotations

import hashlib
import json
import random
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from bench import procs
from core.audit import service
from core.audit.chain import event_hash, hashed_values
from core.audit.models import GENESIS_HASH, HASHED_FIELDS, Actor, EventDraft, Where

CACHE = procs.ROOT / "var" / "bench"
START = datetime(2026, 1, 5, tzinfo=UTC)
HOME_TENANT = "11111111-1111-4111-8111-111111111111"
AGENCIES = ("socialcare", "health", "education", "housing", "charity")
ACTIONS: tuple[tuple[str, float, dict[str, Any]], ...] = (  # (action, weight, arguments)
    ("task.list", 25, {"mine": False, "overdue": False}), ("task.show", 12, {"id": 12}),
    ("task.add", 8, {"title": "Visit the address and confirm welfare", "priority": "high"}),
    ("task.complete", 8, {"id": 7, "note": "visited, all safe"}), ("task.note", 6, {"id": 3}),
    ("task.assign", 3, {"id": 9, "who": "ben.officer@opsroom.example"}), ("room.status", 8, {}),
    ("help", 5, {}), ("digest.now", 4, {}), ("access", 2, {}), ("audit", 2, {"since": "7d"}),
    ("invite", 1, {"agency": "health", "emails": ["a.nurse@health.example"], "isa": "ISA-22"}),
    ("audit.verify", 0.3, {}), ("room.open", 0.5, {"name": "Operation Birch"}),
)  # fmt: skip
OUTCOMES = (("ok", 92.0), ("denied", 4.0), ("parse_error", 2.0), ("unknown_command", 1.0),
            ("duplicate", 0.7), ("error", 0.3))  # fmt: skip


def code_key() -> str:
    """Digest of what decides the file's content: migrations, audit models, chain and service."""
    digest = hashlib.sha256()
    paths = sorted((procs.ROOT / "core" / "migrations" / "versions").glob("*.py"))
    paths += [procs.ROOT / "core" / "audit" / n for n in ("models.py", "chain.py", "service.py")]
    paths.append(Path(__file__))
    for path in paths:
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


@dataclass
class Person:
    """Someone who sends commands."""

    aad: str
    tenant: str
    name: str
    kind: str
    agency: str | None


def _people(rng: random.Random, count: int = 500) -> list[Person]:
    people = []
    for i in range(count):
        aad = f"{rng.getrandbits(32):08x}-{i:04x}-4000-8000-{rng.getrandbits(48):012x}"
        if i % 10 == 0:
            agency = AGENCIES[i // 10 % len(AGENCIES)]
            people.append(Person(aad, f"22222222-2222-4222-8222-{i:012d}", f"Guest {i} ({agency})",
                                 "guest", agency))  # fmt: skip
        else:
            kind = "supervisor" if i % 17 == 0 else "officer"
            people.append(Person(aad, HOME_TENANT, f"PC Officer {i}", kind, None))
    return people


def drafts(total: int, seed: int = 7) -> Iterator[tuple[EventDraft, str]]:
    """(draft, at) in time order: `total` events starting at START."""
    rng = random.Random(seed)
    people = _people(rng)
    rooms = []
    for r in range(40):
        team = f"19:team{r % 8}@thread.tacv2"
        channel = f"19:room{r}@thread.tacv2"
        members = rng.sample(people, rng.randint(15, 60))
        rooms.append((f"OP-ROOM{r:02d}", Where(team, channel, f"{channel};messageid=17000{r:08d}",
                                                f"OP-ROOM{r:02d}"), members))  # fmt: skip
    room_weights = [1 / (r + 1) ** 0.8 for r in range(40)]
    action_weights = [w for _, w, _ in ACTIONS]
    outcome_weights = [w for _, w in OUTCOMES]
    burst = (0, 1, 1, 2, 2, 3, 3, 4, 5, 6)  # events in one busy second: mean 2.7
    made, second = 0, 0
    while made < total:
        moment = START + timedelta(seconds=second)
        busy = 7 <= moment.hour < 20 and moment.weekday() < 6
        n = rng.choice(burst) if busy else int(rng.random() < 0.01)
        for micro in sorted(rng.randrange(1_000_000) for _ in range(n)):
            if made >= total:
                break
            made += 1
            at = service.utc_stamp(moment + timedelta(microseconds=micro))
            if rng.random() < 0.08:  # a 1:1 chat, outside any room
                who = rng.choice(people)
                where = Where(None, None, f"a:1chat{who.aad[:8]}", None)
            else:
                _, where, members = rng.choices(rooms, room_weights)[0]
                who = rng.choice(members)
            action, _, arguments = rng.choices(ACTIONS, action_weights)[0]
            outcome = rng.choices(OUTCOMES, outcome_weights)[0][0]
            denied = outcome == "denied"
            yield EventDraft(
                action=action, outcome=outcome, actor=Actor(who.aad, who.tenant, who.name, who.kind,
                                                            who.agency),
                where=where, activity_id=f"1{rng.getrandbits(60):018d}"[:19], activity_type="message",
                arguments=arguments, decision="deny" if denied else "allow",
                rule=f"{who.kind}.{'forbid' if denied else 'permit'}.{action}",
                detail="not a member of this room" if denied else None,
                duration_us=rng.randint(800, 40_000),
            ), at  # fmt: skip
        second += 1


def values(draft: EventDraft, *, seq: int, prev_hash: str, at: str, args_json: str) -> dict[str, Any]:
    """The stored columns `_to_row` gives a draft whose strings need no cleaning."""
    a, w = draft.actor, draft.where
    return dict(seq=seq, at=at, actor_aad_id=a.aad_id, actor_tenant_id=a.tenant_id, actor_name=a.name,
                actor_kind=a.kind, actor_agency=a.agency, team_id=w.team_id, channel_id=w.channel_id,
                conversation_id=w.conversation_id, room_key=w.room_key, activity_id=draft.activity_id,
                activity_type=draft.activity_type, action=draft.action, arguments=args_json,
                decision=draft.decision, rule=draft.rule, outcome=draft.outcome,
                justification=draft.justification, recipients=None, detail=draft.detail,
                duration_us=draft.duration_us, prev_hash=prev_hash, request_id=draft.request_id)  # fmt: skip


def build(path: Path, total: int) -> None:
    """Migrate an empty file with the product's CLI, then insert `total` chained rows."""
    path.unlink(missing_ok=True)
    procs.migrate(f"sqlite:///{path}", path.with_suffix(".log"))
    columns = (*HASHED_FIELDS, "request_id", "hash")
    sql = f"INSERT INTO audit_event ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=MEMORY")
    conn.execute("PRAGMA synchronous=OFF")
    args_cache: dict[int, str] = {}
    prev, batch = GENESIS_HASH, []
    for seq, (draft, at) in enumerate(drafts(total), start=1):
        key = id(draft.arguments)
        if key not in args_cache:
            args_cache[key] = json.dumps(service.redact(draft.arguments), sort_keys=True, ensure_ascii=False)
        row = values(draft, seq=seq, prev_hash=prev, at=at, args_json=args_cache[key])
        hashed = tuple(hashed_values(SimpleNamespace(**row)))
        digest = event_hash(hashed)
        if seq % 1000 == 1:
            model = service._to_row(draft, seq=seq, prev_hash=prev, at=at)
            if hashed_values(model) != hashed or model.hash != digest:
                raise RuntimeError(f"generated row {seq} differs from what _to_row makes")
        batch.append((*(row[name] for name in HASHED_FIELDS), row["request_id"], digest))
        prev = digest
        if len(batch) >= 50_000:
            conn.executemany(sql, batch)
            conn.commit()
            batch.clear()
    conn.executemany(sql, batch)
    conn.commit()
    conn.execute("PRAGMA journal_mode=WAL")
    conn.close()


def cached(total: int) -> tuple[Path, float | None]:
    """The cached file for `total` events (built if missing): (path, seconds spent building or None)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"audit-{total}-{code_key()}.db"
    if path.exists():
        return path, None
    for old in CACHE.glob(f"audit-{total}-*"):
        old.unlink()
    began = time.perf_counter()
    partial = path.with_suffix(".partial")
    build(partial, total)
    partial.rename(path)
    partial.with_suffix(".log").unlink(missing_ok=True)
    return path, time.perf_counter() - began
