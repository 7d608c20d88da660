"""Plain data access for the audit table: append after the head, read, verify."""

from __future__ import annotations

import contextvars
import functools
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, text
from sqlmodel import Session, col

from core import groupcommit
from core import text as safe
from core.audit import signatures, signing
from core.audit.chain import Checkpoint, VerifyResult, event_hash, verify_rows, with_optional
from core.audit.links import iter_links
from core.audit.models import GENESIS_HASH, HASHED_FIELDS, AuditEvent, EventDraft
from core.db import driver_execute

log = logging.getLogger(__name__)

# Key of the PostgreSQL advisory lock that orders appends (any fixed 64-bit value).
PG_APPEND_LOCK = 0x6F70_7372_6F6F_6D01

_SENSITIVE = ("password", "secret", "token", "authorization")

current_request: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
"""The request (or scheduler run) this context serves, which the bot's logs name too: an event whose draft
names no request id carries it (Database.run and Database.commit carry the context into their threads)."""


def utc_stamp(now: datetime | None = None) -> str:
    """Fixed-width ISO-8601 UTC text, as stored in `at`."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def redact(arguments: dict[str, Any]) -> dict[str, Any]:
    """Arguments as stored: sensitive values masked, strings cleaned and capped."""
    out: dict[str, Any] = {}
    for key, value in arguments.items():
        if any(word in key.lower() for word in _SENSITIVE):
            out[key] = "***"
        elif isinstance(value, str):
            out[key] = safe.clean(value, 500)
        elif isinstance(value, list | tuple):
            out[key] = [safe.clean(str(v), 200) for v in value][:50]
        elif value is None or isinstance(value, bool | int):
            out[key] = value
        else:
            out[key] = safe.clean(str(value), 500)
    return out


_HEAD_CACHE = "opsroom.audit_head"


def _lock_head(session: Session) -> tuple[int, str]:
    """Take the append lock and return the chain head (seq, hash).

    Within one transaction the head is remembered after the first look (the
    lock is held until commit, so nobody else can move it); the group writer
    clears session.info when it rolls a job back, which drops the memory too.
    """
    transaction = session.get_transaction()
    cached = session.info.get(_HEAD_CACHE)
    if cached is not None and cached[0] is transaction:
        return cached[1], cached[2]
    if session.get_bind().dialect.name == "postgresql":
        driver_execute(session, _PG_LOCK, (PG_APPEND_LOCK,))
    # On SQLite the BEGIN IMMEDIATE of every write transaction already serialises appends.
    row = driver_execute(session, _HEAD).first()
    return (row[0], row[1]) if row else (0, GENESIS_HASH)


_PG_LOCK = "SELECT pg_advisory_xact_lock(?)"
_HEAD = "SELECT seq, hash FROM audit_event ORDER BY seq DESC LIMIT 1"


@dataclass(frozen=True)
class StoredEvent:
    """An appended event as written (the same fields as AuditEvent, without the ORM)."""

    seq: int
    at: str
    actor_aad_id: str | None
    actor_tenant_id: str | None
    actor_name: str | None
    actor_kind: str | None
    actor_agency: str | None
    team_id: str | None
    channel_id: str | None
    conversation_id: str | None
    room_key: str | None
    activity_id: str | None
    activity_type: str | None
    action: str
    arguments: str
    decision: str | None
    rule: str | None
    outcome: str
    justification: str | None
    recipients: str | None
    detail: str | None
    duration_us: int | None
    prev_hash: str
    hash: str
    request_id: str | None = None


def _values(draft: EventDraft, *, seq: int, prev_hash: str, at: str) -> dict[str, Any]:
    """The stored columns of one event, cleaned, capped to their widths, and hashed."""
    values: dict[str, Any] = {
        "seq": seq,
        "at": at,
        "actor_aad_id": safe.clean(draft.actor.aad_id, 64),
        "actor_tenant_id": safe.clean(draft.actor.tenant_id, 64),
        "actor_name": safe.clean(draft.actor.name, 256),
        "actor_kind": safe.clean(draft.actor.kind, 16),
        "actor_agency": safe.clean(draft.actor.agency, 64),
        "team_id": safe.clean(draft.where.team_id, 256),
        "channel_id": safe.clean(draft.where.channel_id, 256),
        "conversation_id": safe.clean(draft.where.conversation_id, 512),
        "room_key": safe.clean(draft.where.room_key, 64),
        "activity_id": safe.clean(draft.activity_id, 256),
        "activity_type": safe.clean(draft.activity_type, 64),
        "action": safe.clean(draft.action, 64) or "unknown",
        "arguments": json.dumps(redact(draft.arguments), sort_keys=True, ensure_ascii=False),
        "decision": safe.clean(draft.decision, 8),
        "rule": safe.clean(draft.rule, 128),
        "outcome": safe.clean(draft.outcome, 32) or "unknown",
        "justification": safe.clean(draft.justification),
        "recipients": json.dumps(draft.recipients) if draft.recipients is not None else None,
        "detail": safe.clean(draft.detail),
        "duration_us": draft.duration_us,
        "prev_hash": prev_hash,
    }
    request_id = values["request_id"] = safe.clean(draft.request_id or current_request.get(), 32) or None
    values["hash"] = event_hash(with_optional([values[name] for name in HASHED_FIELDS], request_id))
    return values


def _to_row(draft: EventDraft, *, seq: int, prev_hash: str, at: str) -> AuditEvent:
    """An ORM row for one event (bulk loaders and tests; append() skips the ORM)."""
    return AuditEvent(**_values(draft, seq=seq, prev_hash=prev_hash, at=at))


_STAGED = "opsroom.audit_staged"
"""Events a group-commit batch appends just before it commits (a tuple: savepoint() restores it)."""


def append(
    session: Session, drafts: Sequence[EventDraft], *, now: datetime | None = None
) -> list[StoredEvent]:
    """Append events after the current head, in this transaction; the events as stored.

    In a group-commit batch whose transaction does not hold the chain's lock yet, the events are only
    staged and [] is returned: the batch appends every job's events together just before it commits, so
    that the lock, which orders the one chain across every process, is held for one insert, a signature
    and the commit rather than for all the batch's work (three processes queue for it in turn). A job
    rolled back takes its staged events with it. Work that must be ordered with the chain takes the lock
    first (lock_head), and its events are appended at once. An explicit `now` (tests, simulations) is
    appended at once too.
    """
    transaction = session.get_transaction()
    cached = session.info.get(_HEAD_CACHE)
    held = cached is not None and cached[0] is transaction
    if drafts and now is None and not held and groupcommit.before_commit(session, _STAGED, _append_staged):
        # The request id belongs to the job that staged it: the batch commits outside that job's context.
        staged = tuple(replace(d, request_id=d.request_id or current_request.get()) for d in drafts)
        session.info[_STAGED] = session.info.get(_STAGED, ()) + staged
        return []
    return _append_now(session, drafts, now=now)


def _append_staged(session: Session) -> None:
    staged = session.info.pop(_STAGED, ())
    if staged:
        _append_now(session, staged)


def _append_now(session: Session, drafts: Sequence[EventDraft], *,
                now: datetime | None = None) -> list[StoredEvent]:  # fmt: skip
    seq, prev = _lock_head(session)
    base, base_hash = seq, prev
    at = utc_stamp(now)
    rows = []
    for draft in drafts:
        seq += 1
        values = _values(draft, seq=seq, prev_hash=prev, at=at)
        prev = values["hash"]
        rows.append(values)
    if rows:
        # Without request ids, the column is left out: the same rows, and a store not yet at migration 0010
        # (a test of an older schema) can still be appended to.
        columns = _EVENT_COLUMNS if any(r["request_id"] is not None for r in rows) else _PLAIN_COLUMNS
        driver_execute(session, _insert_event(columns), [tuple(r[name] for name in columns) for r in rows],
                       many=True)  # fmt: skip
        session.info[_HEAD_CACHE] = (session.get_transaction(), seq, prev)
        signer = signing.signer_for(session)
        if signer is not None:
            _sign(session, signer, (base, base_hash), (seq, prev, at))
    return [StoredEvent(**values) for values in rows]


# Appends are the hot path (every request writes one): the statements go to the driver as they are
# (core.db.driver_execute), without SQLAlchemy's per-statement compile and result machinery (half an
# append's time otherwise).
_EVENT_COLUMNS = (*HASHED_FIELDS, "request_id", "hash")
_PLAIN_COLUMNS = (*HASHED_FIELDS, "hash")
# DO NOTHING: a row already there can only have been planted (events and their signature are written
# together); refusing the append would let whoever planted it stop the bot, and verify reports it.
_SIGN = ("INSERT INTO audit_signature (seq, hash, signature, key_id, from_seq, at) VALUES (?, ?, ?, ?, ?, ?)"
         " ON CONFLICT (seq) DO NOTHING")  # fmt: skip


@functools.cache
def _insert_event(columns: tuple[str, ...]) -> str:
    return f"INSERT INTO audit_event ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"


_UNSIGNED = "opsroom.audit_unsigned"


def _sign(session: Session, signer: signing.Signer, base: tuple[int, str], new: tuple[int, str, str]) -> None:
    """Sign the new head (seq, hash, at) that extends base (seq, hash): at once, or, in a group-commit
    batch, once for the whole batch just before it commits (one signature covers every job's events,
    and a job rolled back takes its part of the pending head with it, see groupcommit.savepoint)."""
    pending = session.info.get(_UNSIGNED)
    if pending is not None and pending[:2] == base:
        from_seq = pending[2]
    else:
        from_seq = _vouched_from(session, signer, *base)
    if groupcommit.before_commit(session, _UNSIGNED, lambda s: _sign_pending(s, signer)):
        session.info[_UNSIGNED] = (new[0], new[1], from_seq, new[2])
    else:
        _sign_head(session, signer, new[0], new[1], from_seq, new[2])


def _sign_pending(session: Session, signer: signing.Signer) -> None:
    pending = session.info.pop(_UNSIGNED, None)
    if pending is not None:
        seq, head_hash, from_seq, at = pending
        _sign_head(session, signer, seq, head_hash, from_seq, at)


_HEAD_SIGNATURE = text("SELECT hash, signature, key_id, from_seq FROM audit_signature WHERE seq = :seq")


def _sign_head(
    session: Session, signer: signing.Signer, seq: int, head_hash: str, from_seq: int, at: str
) -> None:
    """Store a signature over the new head, in the transaction that appends it.

    Whatever commits (a group-commit batch with some jobs rolled back, a flow's several appends) ends
    on a signed head, and a signature is never kept for events that were not.
    """
    signature = signer.sign(seq, head_hash, from_seq)
    driver_execute(session, _SIGN, (seq, head_hash, signature, signer.key_id, from_seq, at))


def _vouched_from(session: Session, signer: signing.Signer, seq: int, head_hash: str) -> int:
    """From which event the bot may vouch for the chain, extending the head (seq, head_hash).

    As far back as the head's own signature vouches, when the bot signed that head itself (remembered:
    the usual case, no look at the store) or the head carries a valid signature of its key; from the
    start when the head predates signing. Otherwise the head was appended without the key, and the
    new signature vouches only for the events after it.
    """
    if seq == 0:
        return 0
    if signer.last is not None and signer.last[:2] == (seq, head_hash):
        return signer.last[2]
    row = session.execute(_HEAD_SIGNATURE, {"seq": seq}).first()
    if row is not None and row[0] == head_hash and signer.keyring().verify(seq, *row):
        return int(row[3])
    if seq <= signatures.signing_began_after(session):
        return 0
    log.error("audit chain head seq %d carries no valid signature of key %s: events were appended without "
              "the signing key (or the key changed); the next signature vouches only for events after it",
              seq, signer.key_id)  # fmt: skip
    return seq + 1


def lock_head(session: Session) -> Checkpoint:
    """Take the append lock now (held to the end of the transaction) and return the chain head.

    For work that must be ordered with the audit chain across processes (digest claims): taking it
    first, before any row lock, means such work never holds a row while it queues for the lock.
    """
    seq, head_hash = _lock_head(session)
    session.info[_HEAD_CACHE] = (session.get_transaction(), seq, head_hash)  # later appends: at once
    return Checkpoint(seq, head_hash)


def head(session: Session) -> Checkpoint:
    """The current chain head (seq 0 and the genesis hash when empty)."""
    stmt = select(col(AuditEvent.seq), col(AuditEvent.hash)).order_by(col(AuditEvent.seq).desc())
    row = session.execute(stmt.limit(1)).first()
    return Checkpoint(row[0], row[1]) if row else Checkpoint(0, GENESIS_HASH)


def hash_at(session: Session, seq: int) -> str | None:
    """The stored hash of one event (None if there is no such event)."""
    table = AuditEvent.__table__  # type: ignore[attr-defined]
    found = session.execute(select(table.c.hash).where(table.c.seq == seq)).scalar()
    return None if found is None else str(found)


def verify(
    session: Session, checkpoints: Sequence[Checkpoint] = (), *, keys: signing.Keyring | None = None
) -> VerifyResult:
    """Verify the whole chain held in the database; with keys, also that every event is covered
    by a valid signature (see core.audit.signatures), naming the first one that is not."""
    result = verify_rows(iter_links(session, signed=keys is not None), checkpoints, keys=keys)
    return result if keys is None else signatures.cover(session, result, keys, checkpoints)


def query(
    session: Session,
    *,
    room_key: str | None = None,
    actor_aad_id: str | None = None,
    since: datetime | None = None,
    denied_only: bool = False,
    action: str | None = None,
    limit: int = 50,
) -> list[AuditEvent]:
    """The newest events matching the filters, newest first.

    `at` grows with `seq` (both are assigned under the append lock), so "since"
    becomes a lower bound on seq and every filter walks an index on (x, seq)
    backwards, stopping after `limit` rows.
    """
    table = AuditEvent.__table__  # type: ignore[attr-defined]
    stmt = select(AuditEvent)
    if since is not None:
        first = session.execute(
            select(table.c.seq).where(table.c.at >= utc_stamp(since)).order_by(table.c.at).limit(1)
        ).scalar()
        if first is None:
            return []
        stmt = stmt.where(table.c.seq >= first)
    if room_key is not None:
        stmt = stmt.where(table.c.room_key == room_key)
    if actor_aad_id is not None:
        stmt = stmt.where(table.c.actor_aad_id == actor_aad_id.lower())
    if denied_only:
        stmt = stmt.where(table.c.decision == "deny")
    if action is not None:
        stmt = stmt.where(table.c.action == action)
    stmt = stmt.order_by(table.c.seq.desc()).limit(limit)
    return list(session.scalars(stmt))
