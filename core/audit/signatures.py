"""Which events valid signatures cover, given the public keys, after the hash chain has been walked.

A valid signature over (seq, hash) vouches for that event and, through the
chain, for every event before it. So the events the bot wrote are exactly those
up to the newest signature that verifies: the check walks the signatures from
the newest (at or below the last intact event) down to the first that verifies,
one or two Ed25519 checks on an untampered store however long the chain. Every
event after it is "not covered": an unsigned tail (appended by someone without
the key) or a tail whose signatures are forged.

Events up to `signing_began_after` (the head when migration 0005 ran) were
written before signing existed: they are covered by the hash chain only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import text
from sqlmodel import Session

from core.audit.chain import Checkpoint, SignatureCheck, VerifyResult
from core.audit.models import SIGNING_BEGAN_AFTER

_PAGE = 64
_NEWEST_SQL = (
    "SELECT s.seq, s.hash, s.signature, s.key_id, s.from_seq, e.hash FROM audit_signature s"
    " LEFT JOIN audit_event e ON e.seq = s.seq{where} ORDER BY s.seq DESC LIMIT :n"
)
_NEWEST = text(_NEWEST_SQL.format(where=" WHERE s.seq <= :below"))
_NEWEST_TOP = text(_NEWEST_SQL.format(where=""))
_ORPHAN = text(
    "SELECT min(s.seq) FROM audit_signature s WHERE s.seq > :head"
    " AND NOT EXISTS (SELECT 1 FROM audit_event e WHERE e.seq = s.seq)"
)
_ROOM = text(
    "SELECT count(*), sum(CASE WHEN seq <= :good THEN 1 ELSE 0 END),"
    " sum(CASE WHEN seq <= :good AND seq <= :began THEN 1 ELSE 0 END),"
    " min(CASE WHEN seq > :good THEN seq END) FROM audit_event WHERE room_key = :room"
)


def signing_began_after(session: Session) -> int:
    """The chain head when signing began (0, so that every event must be signed, if the marker is gone)."""
    value = session.execute(
        text("SELECT value FROM audit_meta WHERE key = :k"), {"k": SIGNING_BEGAN_AFTER}
    ).scalar()
    try:
        return max(int(value), 0) if value is not None else 0
    except (TypeError, ValueError):
        return 0


@dataclass(frozen=True)
class Newest:
    """The newest valid signature at or below a seq, and the ones above it that were not valid."""

    valid: int | None
    from_seq: int
    forged: tuple[int, ...]


def newest_valid(session: Session, keys: SignatureCheck, below: int | None) -> Newest:
    """Walk signatures from below (None: the top) down until one is valid: made by one of the keys over
    its event's hash as stored. A page at a time: on an untampered store one row is read.

    A signature whose event is gone (a truncation, or a race with appends under READ COMMITTED) is
    passed over: verify names a truncation by itself.
    """
    forged: list[int] = []
    cursor = below
    while True:
        query = _NEWEST if cursor is not None else _NEWEST_TOP
        rows = session.execute(query, {"below": cursor, "n": _PAGE}).all()
        for seq, head_hash, signature, kid, from_seq, event_hash in rows:
            if event_hash is None:
                continue
            if event_hash == head_hash and keys.verify(seq, head_hash, signature, kid, from_seq):
                return Newest(seq, from_seq, tuple(forged))
            forged.append(seq)
        if len(rows) < _PAGE:
            return Newest(None, 0, tuple(forged))
        cursor = rows[-1][0] - 1


def _orphan_after(session: Session, head: int) -> int | None:
    """The first signature past the head whose event is gone (one statement: appends racing verify
    bring their own signature and event together)."""
    found = session.execute(_ORPHAN, {"head": head}).scalar()
    return None if found is None else int(found)


def _hash_at(session: Session, seq: int) -> str:
    found = session.execute(text("SELECT hash FROM audit_event WHERE seq = :s"), {"s": seq}).scalar()
    return found if isinstance(found, str) else ""


def _unsigned(tail: bool) -> str:
    return "unsigned tail" if tail else "appended without the key, then signed over"


def _span(lo: int, hi: int) -> str:
    return f"seq {lo}" if lo == hi else f"seq {lo} to {hi}"


def _gaps(
    session: Session, keys: SignatureCheck, began: int, upto: int
) -> tuple[int | None, list[tuple[int, str]]]:
    """The events up to upto that no valid signature vouches for, as (first seq, why), and the newest
    valid signature (None: none).

    From the newest valid signature down: it vouches for from_seq..its seq; below from_seq the next
    valid signature must take over, until one vouches from the start (from_seq 0) or the events left
    predate signing. Usually one step. The first signature may lie past upto (verify of a chain that
    breaks at upto + 1): the bot signed past the break, so the events before it were its own.
    """
    gaps: list[tuple[int, str]] = []
    if upto <= 0:
        return None, gaps
    found = newest_valid(session, keys, None)
    newest, top = found.valid, upto
    while True:
        forged = [seq for seq in found.forged if seq <= top]
        first = began + 1 if found.valid is None else found.valid + 1
        if found.valid is not None and found.valid <= began:
            if found.valid < top:  # a signature from before signing began: the marker was raised
                gaps.append((first, f"not covered by a valid signature (audit_meta says signing began after "
                                    f"seq {began}, yet seq {found.valid} is signed: the marker was changed)"))
            break
        if first <= top:
            why = (f"the signature at seq {min(forged)} does not verify" if forged
                   else f"{_unsigned(top == upto)}: {_span(first, top)} not signed")  # fmt: skip
            gaps.append((first, f"not covered by a valid signature ({why})"))
        if found.valid is None or found.from_seq <= began + 1:
            break
        top = min(top, found.from_seq - 1)
        found = newest_valid(session, keys, top)
    return newest, gaps


def cover(
    session: Session, result: VerifyResult, keys: SignatureCheck, checkpoints: Sequence[Checkpoint] = ()
) -> VerifyResult:
    """The chain's result, failed at the first event no valid signature vouches for when that comes first.

    result is the walk of the chain (with keys, so that a signature row whose hash differs from its
    event has already failed it): its head_seq is the last intact event. A checkpoint that saw a
    newer valid signature than the store now holds means signatures were removed.
    """
    began = signing_began_after(session)
    reached = result.head_seq
    newest, problems = _gaps(session, keys, began, reached)
    signed_seq = newest if newest is None or newest <= reached else reached
    witnessed = _witnessed(checkpoints, reached)
    if witnessed is not None and (newest or 0) < witnessed:
        problems.append(((newest or 0) + 1, f"not covered by a valid signature (a checkpoint saw seq "
                                            f"{witnessed} signed; that signature is gone)"))  # fmt: skip
    if result.ok:
        orphan = _orphan_after(session, reached)
        if orphan is not None:
            problems.append((reached + 1, f"chain ends before signed head {orphan} (truncated)"))
    if not result.ok and result.bad_seq is not None:
        problems.insert(0, (result.bad_seq, result.reason or "bad"))
    signed = replace(result, signed_seq=signed_seq, signing_began_after=began)
    if not problems:
        return signed
    bad_seq, reason = min(problems, key=lambda problem: problem[0])  # on a tie, the chain's own finding
    if not result.ok and bad_seq == result.bad_seq:
        return signed
    head = bad_seq - 1
    return replace(signed, ok=False, bad_seq=bad_seq, reason=reason, head_seq=head,
                   head_hash=_hash_at(session, head) if head > 0 else "",
                   count=max(result.count - (reached - head), 0))  # fmt: skip


def _witnessed(checkpoints: Sequence[Checkpoint], reached: int) -> int | None:
    """The newest signed seq any checkpoint saw, among the events the chain still reaches."""
    seen = [p.signed for p in checkpoints if p.signed is not None and p.signed <= reached]
    return max(seen) if seen else None


@dataclass(frozen=True)
class RoomReport:
    """One room's events measured against a verify result."""

    room_key: str
    events: int
    vouched: int
    """Intact, and covered by a valid signature (or written before signing began)."""
    before_signing: int
    """Of those, written before signing began: covered by the hash chain only."""
    first_unvouched: int | None
    """The room's first event that cannot be vouched for (None: every one can)."""

    @property
    def ok(self) -> bool:
        """Every one of the room's events is intact and covered."""
        return self.vouched == self.events


def room_report(session: Session, room_key: str, result: VerifyResult) -> RoomReport:
    """How many of a room's events the verify result vouches for (one indexed pass over the room's events)."""
    good_upto = result.head_seq if result.ok else (result.bad_seq or 1) - 1
    row: Any = session.execute(
        _ROOM, {"good": good_upto, "began": result.signing_began_after, "room": room_key}
    ).one()
    return RoomReport(room_key, int(row[0]), int(row[1] or 0), int(row[2] or 0),
                      None if row[3] is None else int(row[3]))  # fmt: skip
