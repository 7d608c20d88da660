"""Plain data access for the outbox: enqueue with the action, claim, and record how a send went.

Delivery order and exclusivity come from the claim:

* A row is due when it is pending and its `not_before` has passed, or when it is
  `sending` under a lease that ran out (its sender died): such rows are taken over.
* On PostgreSQL the due rows are locked with `FOR UPDATE SKIP LOCKED`, so two
  processes claiming at once never take the same row; on SQLite every write
  transaction starts with BEGIN IMMEDIATE (core/db.py), which serialises claims.
* A conversation's due rows are delivered in id order: a claim only takes the rows of
  a conversation that come before its first undelivered row held elsewhere (claimed by
  someone, locked by a concurrent claim, or waiting for a retry). So a retry holds
  back the messages after it, and two senders never post into one conversation at
  once. A message scheduled for later (`not_before`, never tried) holds nothing back.
* Every change after the claim (`mark_sent`, `retry_later`, `mark_failed`,
  `mark_dead`, `release`, `renew`) applies only while the row is still claimed by the
  worker making it, so a sender whose lease ran out cannot overwrite a takeover.

Blocked conversations (a personal chat where Teams answered 403: the user blocked or
removed the bot) are kept in `conversation_block`: a message enqueued for one is
stored dead at once, with the reason as its error, and never sent; rows already
waiting are killed when the block is recorded and, should one slip through, at claim.
`unblock` lifts the block (call it when the user talks to the bot again).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Table, and_, case, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col

from core.outbox.models import ConversationBlock, OutboxMessage, OutboxStatus

MAX_ACTIVITY_BYTES = 100_000
"""Teams refuses a message over about 100 KB; refusing it here names the code that built it."""
MAX_ERROR = 1000
UNDELIVERED = (OutboxStatus.PENDING, OutboxStatus.SENDING)


def _table() -> Table:
    table: Table = OutboxMessage.__table__  # type: ignore[attr-defined]
    return table


def _blocks() -> Table:
    table: Table = ConversationBlock.__table__  # type: ignore[attr-defined]
    return table


def _insert(session: Session) -> Any:
    return pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert


def _aware(now: datetime) -> datetime:
    if now.tzinfo is None:
        raise ValueError("naive datetime: the outbox takes aware UTC datetimes only")
    return now


def target_of(reference: str) -> tuple[str, str, str | None]:
    """(conversation id, service URL, tenant id) from a stored ConversationReference (JSON)."""
    try:
        data = json.loads(reference)
    except ValueError as exc:
        raise ValueError("the conversation reference is not JSON") from exc
    conversation = data.get("conversation") if isinstance(data, dict) else None
    conversation_id = conversation.get("id") if isinstance(conversation, dict) else None
    service_url = data.get("serviceUrl") if isinstance(data, dict) else None
    if not isinstance(conversation_id, str) or not conversation_id:
        raise ValueError("the conversation reference has no conversation.id")
    if not isinstance(service_url, str) or not service_url:
        raise ValueError("the conversation reference has no serviceUrl")
    assert isinstance(conversation, dict)
    tenant = conversation.get("tenantId") or conversation.get("tenantID")  # the SDK serialises `tenantID`
    return conversation_id, service_url, tenant if isinstance(tenant, str) and tenant else None


def enqueue(
    *, session: Session, kind: str, reference: str, activity: dict[str, Any], now: datetime,
    room_id: int | None = None, tenant_id: str | None = None, dedupe_key: str | None = None,
    not_before: datetime | None = None, disclosure: dict[str, Any] | None = None,
) -> OutboxMessage | None:  # fmt: skip
    """Write a message to send after the caller's transaction commits.

    With a dedupe_key, a second enqueue of the same key does nothing and returns None
    (INSERT .. ON CONFLICT DO NOTHING: of two racing transactions, one row). Into a
    blocked conversation the row is stored dead at once. A disclosure (action, room_key,
    recipients, arguments, justification) is the audit event its delivery appends
    (core.outbox.flows.delivered).
    """
    conversation_id, service_url, reference_tenant = target_of(reference)
    if not isinstance(activity, dict) or not activity.get("type"):
        raise ValueError("an outbox activity is a dict with a type")
    body = json.dumps(activity, separators=(",", ":"), ensure_ascii=False)
    if len(body.encode("utf-8")) > MAX_ACTIVITY_BYTES:
        raise ValueError(f"activity of {len(body.encode('utf-8'))} bytes is over Teams' message size")
    now = _aware(now)
    block = session.get(ConversationBlock, conversation_id)
    values: dict[str, Any] = {
        "kind": kind, "dedupe_key": dedupe_key, "room_id": room_id,
        "tenant_id": tenant_id or reference_tenant, "conversation_id": conversation_id,
        "service_url": service_url, "reference": reference, "activity": body,
        "status": OutboxStatus.PENDING if block is None else OutboxStatus.DEAD, "attempts": 0,
        "not_before": _aware(not_before or now), "created_at": now,
        "last_error": None if block is None else f"conversation blocked: {block.reason}"[:MAX_ERROR],
        "disclosure": None if disclosure is None else json.dumps(disclosure, sort_keys=True),
    }  # fmt: skip
    table = _table()
    stmt = _insert(session)(table).values(**values)
    if dedupe_key is not None:
        stmt = stmt.on_conflict_do_nothing(index_elements=["dedupe_key"])
    new_id = session.execute(stmt.returning(table.c.id)).scalar()
    if new_id is None:
        return None
    return session.get(OutboxMessage, new_id)


def get(*, session: Session, message_id: int) -> OutboxMessage | None:
    """One message, as stored now."""
    return session.get(OutboxMessage, message_id, populate_existing=True)


def _due(table: Table, now: datetime) -> ColumnElement[bool]:
    pending = and_(table.c.status == OutboxStatus.PENDING, table.c.not_before <= now)
    abandoned = and_(table.c.status == OutboxStatus.SENDING, table.c.claimed_until < now)
    return or_(pending, abandoned)


def claim(
    *, session: Session, worker: str, now: datetime, lease: timedelta, limit: int,
    per_conversation: int = 20,
) -> list[OutboxMessage]:  # fmt: skip
    """Take up to `limit` due rows for this worker until now + lease, at most
    `per_conversation` from any one conversation (so one busy conversation does not
    starve the others), in (not_before, id) order. See the module docstring."""
    now = _aware(now)
    table = _table()
    rank = func.row_number().over(partition_by=table.c.conversation_id, order_by=table.c.id)
    ranked = select(table.c.id, rank.label("rank")).where(_due(table, now)).subquery()
    capped = select(ranked.c.id).where(ranked.c.rank <= per_conversation)
    # The due condition is repeated at the locking level: PostgreSQL re-checks it on a row
    # another claimant committed meanwhile, so a row just claimed elsewhere is not taken again.
    candidates_stmt = (
        select(table.c.id, table.c.conversation_id)
        .where(table.c.id.in_(capped), _due(table, now))
        .order_by(table.c.not_before, table.c.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        candidates_stmt = candidates_stmt.with_for_update(skip_locked=True)
    candidates = [(row[0], row[1]) for row in session.execute(candidates_stmt)]
    if not candidates:
        return []
    ids = [message_id for message_id, _ in candidates]
    conversations = sorted({conversation for _, conversation in candidates})
    # The first undelivered row of each conversation that is not ours to take now: rows
    # after it wait, whoever holds it (another sender, a concurrent claim, a retry's delay).
    # A row scheduled for later that was never tried holds nothing back.
    waiting = or_(table.c.status == OutboxStatus.SENDING,
                  and_(table.c.status == OutboxStatus.PENDING,
                       or_(table.c.not_before <= now, table.c.attempts > 0)))  # fmt: skip
    others = and_(table.c.conversation_id.in_(conversations), table.c.id.not_in(ids), waiting)
    first_held_stmt = select(table.c.conversation_id, func.min(table.c.id)).where(others)
    first_held = dict(session.execute(first_held_stmt.group_by(table.c.conversation_id)).all())
    blocked = {
        row[0]
        for row in session.execute(
            select(_blocks().c.conversation_id).where(_blocks().c.conversation_id.in_(conversations))
        )
    }
    kill = [m for m, conversation in candidates if conversation in blocked]
    if kill:
        session.execute(
            update(table).where(table.c.id.in_(kill))
            .values(status=OutboxStatus.DEAD, claimed_until=None, last_error="conversation blocked")
        )  # fmt: skip
    take = [
        message_id for message_id, conversation in candidates
        if conversation not in blocked and message_id < first_held.get(conversation, math.inf)
    ]  # fmt: skip
    if not take:
        return []
    claimed = {"status": OutboxStatus.SENDING, "claimed_by": worker, "claimed_until": now + lease,
               "attempts": table.c.attempts + 1}  # fmt: skip
    session.execute(update(table).where(table.c.id.in_(take)).values(**claimed))
    stmt = (
        select(OutboxMessage)
        .where(col(OutboxMessage.id).in_(take))
        .order_by(col(OutboxMessage.not_before), col(OutboxMessage.id))
        .execution_options(populate_existing=True)
    )
    return list(session.execute(stmt).scalars())


def _held(table: Table, message_ids: Sequence[int], worker: str) -> ColumnElement[bool]:
    return and_(table.c.id.in_(message_ids), table.c.status == OutboxStatus.SENDING,
                table.c.claimed_by == worker)  # fmt: skip


def _change(session: Session, message_id: int, worker: str, **values: Any) -> bool:
    table = _table()
    result = session.execute(
        update(table).where(_held(table, [message_id], worker)).values(**values),
        execution_options={"preserve_rowcount": True},
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def mark_sent(
    *, session: Session, message_id: int, worker: str, now: datetime, activity_id: str | None
) -> bool:
    """Delivered (Teams gave it activity_id); False if the row is no longer this worker's."""
    return _change(session, message_id, worker, status=OutboxStatus.SENT, sent_at=_aware(now),
                   claimed_until=None, sent_activity_id=activity_id[:256] if activity_id else None,
                   last_error=None)  # fmt: skip


def retry_later(*, session: Session, message_id: int, worker: str, not_before: datetime, error: str) -> bool:
    """Back to pending, not before the given time; False if the row is no longer this worker's."""
    return _change(session, message_id, worker, status=OutboxStatus.PENDING, not_before=_aware(not_before),
                   claimed_by=None, claimed_until=None, last_error=error[:MAX_ERROR])  # fmt: skip


def mark_failed(*, session: Session, message_id: int, worker: str, error: str) -> bool:
    """Given up on (retries used up, or refused); False if the row is no longer this worker's."""
    return _change(session, message_id, worker, status=OutboxStatus.FAILED, claimed_until=None,
                   last_error=error[:MAX_ERROR])  # fmt: skip


def mark_dead(*, session: Session, message_id: int, worker: str, error: str) -> bool:
    """The conversation is gone or blocked: never retried; False if the row is no longer this worker's."""
    return _change(session, message_id, worker, status=OutboxStatus.DEAD, claimed_until=None,
                   last_error=error[:MAX_ERROR])  # fmt: skip


def release(*, session: Session, worker: str, message_ids: Sequence[int]) -> int:
    """Give claimed rows back unsent (pending again, their claim not counted as an attempt)."""
    if not message_ids:
        return 0
    table = _table()
    result = session.execute(
        update(table).where(_held(table, message_ids, worker))
        .values(status=OutboxStatus.PENDING, claimed_by=None, claimed_until=None,
                attempts=case((table.c.attempts > 0, table.c.attempts - 1), else_=0)),
        execution_options={"preserve_rowcount": True},
    )  # fmt: skip
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def renew(
    *, session: Session, worker: str, message_ids: Sequence[int], now: datetime, lease: timedelta
) -> set[int]:
    """Extend this worker's lease on the rows it still holds; returns those ids (the rest were taken over)."""
    if not message_ids:
        return set()
    table = _table()
    session.execute(update(table).where(_held(table, message_ids, worker))
                    .values(claimed_until=_aware(now) + lease))  # fmt: skip
    held = session.execute(select(table.c.id).where(_held(table, message_ids, worker)))
    return {row[0] for row in held}


def depth(*, session: Session, now: datetime) -> tuple[int, float]:
    """(messages not yet delivered, age of the oldest of them in seconds)."""
    table = _table()
    count, oldest = session.execute(
        select(func.count(), func.min(table.c.created_at)).where(table.c.status.in_(UNDELIVERED))
    ).one()
    age = max(0.0, (_aware(now) - oldest).total_seconds()) if oldest is not None else 0.0
    return int(count or 0), age


def block(*, session: Session, conversation_id: str, reason: str, now: datetime) -> int:
    """Remember that the bot may not post into this conversation; kills its pending rows (how many)."""
    values = {"conversation_id": conversation_id, "reason": reason[:MAX_ERROR], "at": _aware(now)}
    session.execute(_insert(session)(_blocks()).values(**values)
                    .on_conflict_do_nothing(index_elements=["conversation_id"]))  # fmt: skip
    table = _table()
    result = session.execute(
        update(table)
        .where(table.c.conversation_id == conversation_id, table.c.status == OutboxStatus.PENDING)
        .values(status=OutboxStatus.DEAD, last_error=f"conversation blocked: {reason}"[:MAX_ERROR]),
        execution_options={"preserve_rowcount": True},
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def blocked(*, session: Session, conversation_id: str) -> ConversationBlock | None:
    """The block on this conversation, if any."""
    return session.get(ConversationBlock, conversation_id)


def unblock(*, session: Session, conversation_id: str) -> bool:
    """Lift a block (the user talks to the bot again); False if there was none."""
    result = session.execute(
        _blocks().delete().where(_blocks().c.conversation_id == conversation_id),
        execution_options={"preserve_rowcount": True},
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]
