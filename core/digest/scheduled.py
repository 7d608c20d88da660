"""The daily digest job for one room, done as the system principal in one audited unit of work.

It is done in two parts: `prepare` reads the room and renders its post and each member's own digest
(`/digest me on`) without writing (the tick runs it beside the group writer, so delivery's commits
are not held up behind rendering); `commit` claims the room's digest for the day (core.digest.claim)
and in the same transaction writes the messages to the outbox and appends the claim's audit event.
The audit head a digest shows is the one read when it was prepared. Each outbox row carries a
disclosure, appended to the audit trail when Teams takes the message (core.outbox.flows.delivered):
the room, the recipients, the task numbers, never contents.

Who sees what is the caller's `scope` (the policy's answer); how a digest looks is its `render`
(dialogs/): this job only fetches, claims, writes and records.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlmodel import Session

from core.audit.flows import record
from core.audit.models import Actor, EventDraft, Where
from core.audit.service import head as audit_head
from core.digest import build
from core.digest.build import Digest, Snapshot
from core.digest.claim import Due, attach, claim, claimed
from core.digest.models import DigestOutcome
from core.outbox import chats
from core.outbox import service as outbox
from core.rooms.models import Room, RoomStatus

SYSTEM = Actor(kind="system", name="scheduler")
DELIVERED = "digest.delivered"


@dataclass(frozen=True)
class Scopes:
    """What each reader may see, by task id, as the policy answered for the room's current members."""

    room: frozenset[int]
    """Tasks every member may see: the room post, seen by the whole channel, shows these in full."""
    some: frozenset[int]
    """Tasks some members may see and others not: the room post only counts them."""
    people: Mapping[str, frozenset[int]]
    """For each member who may have a digest of their own (Entra object id), the tasks they may see."""
    room_named: frozenset[str] = frozenset()
    """The people (Entra object ids) every member may see named: the room post names only these."""
    named: Mapping[str, frozenset[str]] = field(default_factory=dict)
    """For each member in `people`, the people they may see named."""


@dataclass(frozen=True)
class Rendered:
    """A digest as a message: the activity, and the task numbers it shows in full (its disclosure)."""

    activity: dict[str, Any]
    shown: list[int]


Scope = Callable[[Snapshot], Scopes]
Render = Callable[[Digest], Rendered]


@dataclass(frozen=True)
class Posted:
    """What one room's digest job did."""

    room_key: str
    local_date: str
    outcome: str  # queued | skipped
    messages: int = 0


@dataclass(frozen=True)
class Prepared:
    """One room's digests, built and rendered, waiting to be claimed and written."""

    room: Room
    due: Due
    posted: Rendered | None  # None: the digest is late, to be claimed as skipped
    head_seq: int = 0
    personal: tuple[tuple[str, str, str | None, Rendered], ...] = ()
    """Each member's own digest: (Entra object id, their chat's reference, its tenant, the message)."""


def prepare(session: Session, due: Due, *, now: datetime, scope: Scope, render: Render) -> Prepared | None:
    """Read and render one room's digests (no writes: this can run beside the writer, on a read-only
    session); None when the room has no digest to post or it is claimed already."""
    room = session.get(Room, due.room_id)
    if room is None or room.status != RoomStatus.OPEN or not room.digest_time or room.conversation_id is None:
        return None
    if due.late:
        return Prepared(room, due, None)
    if claimed(session, room_id=due.room_id, local_date=due.local_date):
        return None
    snapshot = build.load(session, room, now=now, local_date=due.local_date, head=audit_head(session))
    scopes = scope(snapshot)
    posted = render(build.compose(snapshot, scopes.room, hidden=scopes.some, named=scopes.room_named))
    wanted = {m.aad_id for m in snapshot.members if m.digest_personal and m.aad_id in scopes.people}
    made: dict[tuple[frozenset[int], frozenset[str] | None], Rendered] = {}  # the same sight, the same digest
    personal = []
    for aad_id, chat in sorted(chats.of(session=session, aad_ids=wanted).items()):
        sight = (scopes.people[aad_id], scopes.named.get(aad_id, frozenset()))
        own = made.get(sight) or made.setdefault(sight, render(build.compose(snapshot, sight[0], reader="you",
                                                                             named=sight[1])))  # fmt: skip
        personal.append((aad_id, chat.reference, chat.tenant_id, own))
    return Prepared(room, due, posted, snapshot.head.seq, tuple(personal))


def commit(session: Session, prepared: Prepared, *, now: datetime) -> Posted | None:
    """Claim a prepared room's digests and write them to the outbox with the claim's audit event, in this
    transaction; None when another process (or an earlier tick) claimed it first, or the room closed
    since it was prepared."""
    due, room = prepared.due, session.get(Room, prepared.due.room_id)
    if room is None or room.status != RoomStatus.OPEN or room.conversation_id is None:
        return None
    if prepared.posted is None:
        return _skip(session, room, due, now=now)
    run_id = claim(session, room_id=due.room_id, local_date=due.local_date, outcome=DigestOutcome.QUEUED,
                   now=now)  # fmt: skip
    if run_id is None:
        return None
    _enqueue(session, room, prepared.posted, due, reference=room.reference, recipient=room.conversation_id,
             tenant_id=room.tenant_id, run_id=run_id, now=now)  # fmt: skip
    recipients, personal = [room.conversation_id], 0
    for aad_id, reference, tenant_id, own in prepared.personal:
        person_run = claim(session, room_id=due.room_id, local_date=due.local_date, audience=aad_id,
                           outcome=DigestOutcome.QUEUED, now=now, locked=True)  # fmt: skip
        if person_run is None:
            continue
        _enqueue(session, room, own, due, reference=reference, recipient=aad_id,
                 tenant_id=tenant_id or room.tenant_id, run_id=person_run, now=now)  # fmt: skip
        recipients.append(aad_id)
        personal += 1
    arguments = {"local_date": due.local_date.isoformat(), "tasks": prepared.posted.shown,
                 "personal": personal}
    detail = f"daily digest at {room.digest_time} ({room.timezone}); audit head #{prepared.head_seq}"
    record(session, EventDraft(action="digest.queued", outcome="ok", actor=SYSTEM, where=_where(room),
                               arguments=arguments, recipients=recipients, justification=_purpose(room),
                               detail=detail))  # fmt: skip
    return Posted(room.key, due.local_date.isoformat(), DigestOutcome.QUEUED, 1 + personal)


def post(session: Session, due: Due, *, now: datetime, scope: Scope, render: Render) -> Posted | None:
    """Prepare and commit one room's digest (or its skip, when late) in one transaction."""
    prepared = prepare(session, due, now=now, scope=scope, render=render)
    return None if prepared is None else commit(session, prepared, now=now)


def _skip(session: Session, room: Room, due: Due, *, now: datetime) -> Posted | None:
    """Past the grace window (the bot was down at digest time): claimed as skipped and audited."""
    assert room.id is not None
    skipped = DigestOutcome.SKIPPED
    if claim(session, room_id=room.id, local_date=due.local_date, outcome=skipped, now=now) is None:
        return None
    record(session, EventDraft(
        action="digest.skipped", outcome="skipped", actor=SYSTEM, where=_where(room),
        arguments={"local_date": due.local_date.isoformat()}, justification=_purpose(room),
        detail=f"its time {room.digest_time} ({room.timezone}) passed beyond the grace window",
    ))  # fmt: skip
    return Posted(room.key, due.local_date.isoformat(), DigestOutcome.SKIPPED)


def _enqueue(
    session: Session, room: Room, rendered: Rendered, due: Due, *, reference: str, recipient: str,
    tenant_id: str, run_id: int, now: datetime,
) -> None:  # fmt: skip
    """Write one digest to the outbox with its disclosure (what it shows: task numbers, not contents)."""
    disclosure = {
        "action": DELIVERED, "room_key": room.key, "recipients": [recipient],
        "arguments": {"local_date": due.local_date.isoformat(), "tasks": rendered.shown,
                      "audience": "room" if recipient == room.conversation_id else "person"},
        "justification": _purpose(room),
    }  # fmt: skip
    message = outbox.enqueue(session=session, kind="digest", reference=reference, activity=rendered.activity,
                             now=now, room_id=room.id, tenant_id=tenant_id,
                             disclosure=disclosure)  # fmt: skip
    attach(session, run_id, message.id if message is not None else None)


def _where(room: Room) -> Where:
    return Where(team_id=room.team_id, conversation_id=room.conversation_id, room_key=room.key)


def _purpose(room: Room) -> str:
    return f"{room.key}: {room.purpose}" if room.purpose else f"{room.key}: operation room"
