"""Canonical encoding, the hash chain, and verification."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from core.audit.models import GENESIS_HASH, HASHED_FIELDS, OPTIONAL_HASHED_FIELD

# One encoder, built once: json.dumps with options builds a new encoder per call,
# which dominates the cost of verifying a long chain.
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def canonical(values: Sequence[Any]) -> bytes:
    """The bytes that are hashed: a JSON array of the hashed fields, in order."""
    return _ENCODER.encode(list(values)).encode("utf-8")


def event_hash(values: Sequence[Any]) -> str:
    """SHA-256 of the canonical encoding, as hex."""
    return hashlib.sha256(canonical(values)).hexdigest()


def stored_hash(values: Sequence[Any]) -> str | None:
    """The hash of stored cells, or None when one holds what the chain never writes (bytes, a date...)."""
    try:
        return event_hash(values)
    except (TypeError, ValueError):  # not JSON-encodable, or text that is not valid Unicode
        return None


def with_optional(values: Sequence[Any], request_id: Any) -> tuple[Any, ...]:
    """The hashed array: HASHED_FIELDS' values, then the request id when it is not NULL (so events written
    before it existed hash as they always did, and one set on such an event later breaks its hash)."""
    return (*values, request_id) if request_id is not None else tuple(values)


def hashed_values(row: Any) -> tuple[Any, ...]:
    """The hashed fields of a row or model, in the chain's order (a row without a request id: none)."""
    base = tuple(getattr(row, name) for name in HASHED_FIELDS)
    return with_optional(base, getattr(row, OPTIONAL_HASHED_FIELD, None))


@dataclass(frozen=True)
class Checkpoint:
    """A chain head recorded outside the table.

    signed: the newest event covered by a valid signature when it was recorded. Signatures are
    never removed, so a store whose newest valid signature is older has lost some.
    """

    seq: int
    hash: str
    signed: int | None = None


@dataclass(frozen=True)
class VerifyResult:
    """What verify found: ok, or the first bad sequence number and why.

    signed_seq is the newest event covered by a valid signature (None when
    signatures were not checked); events up to signing_began_after were written
    before signing existed and are covered by the hash chain only.
    """

    ok: bool
    count: int
    head_seq: int
    head_hash: str
    bad_seq: int | None = None
    reason: str | None = None
    signed_seq: int | None = None
    signing_began_after: int = 0


class SignatureCheck(Protocol):
    """Whether a stored signature row (seq, hash, signature, key id, from_seq) is valid; any cell may hold
    anything."""

    def verify(
        self, seq: object, head_hash: object, signature: object, kid: object, from_seq: object
    ) -> bool:
        """True only for a signature one of the keys made over exactly these cells."""
        ...


# A signature row as stored beside its event: hash, signature, key id, from_seq (None: no row).
Signed = tuple[Any, Any, Any, Any]

# One event as verification sees it: seq, stored prev_hash, stored hash, the hash
# recomputed from its stored fields (None when they cannot be hashed: a cell of a
# type the chain never writes), and its signature row. Stored cells are Any: a
# tampered row may hold anything.
Link = tuple[Any, Any, Any, str | None, Signed | None]


def verify_rows(
    links: Iterable[Link],
    checkpoints: Sequence[Checkpoint] = (),
    *,
    first_seq: int = 1,
    prev: str | None = GENESIS_HASH,
    last_seq: int | None = None,
    keys: SignatureCheck | None = None,
) -> VerifyResult:
    """Walk the chain's links in seq order and check them.

    Checks a gapless sequence from first_seq, each event's link to its
    predecessor, each event's own hash, and, when checkpoints are given, that the
    chain still reaches every checkpoint with the same hash (which catches
    truncation and a tail rewritten with recomputed hashes). With keys, a
    signature row whose hash differs from its event's is a failure at that seq
    (whether the chain was rewritten after the bot signed it, or the signature is
    forged); which events valid signatures cover is decided afterwards
    (core.audit.signatures), from the newest signature down.

    To verify one slice of a long chain, give first_seq, the hash of the event
    before it as prev (None when that event is missing: the slice before reports
    it), and last_seq, where the slice must end.
    """
    by_seq = {c.seq: c for c in checkpoints}
    expected_seq = first_seq
    count = 0
    for seq, prev_hash, stored, computed, signed in links:
        if isinstance(seq, bool) or not isinstance(seq, int):
            return _bad(count, expected_seq - 1, prev, expected_seq, "sequence number is not a whole number")
        if seq != expected_seq:
            return _bad(count, expected_seq - 1, prev, min(seq, expected_seq), "sequence gap")
        if prev is not None and prev_hash != prev:
            return _bad(count, seq - 1, prev, seq, "does not link to the previous event")
        if computed is None or computed != stored:
            return _bad(count, seq - 1, prev, seq, "hash does not match its contents")
        point = by_seq.get(seq)
        if point is not None and point.hash != stored:
            return _bad(count, seq - 1, prev, seq, "differs from the checkpoint")
        if signed is not None and keys is not None and signed[0] != stored:
            if keys.verify(seq, *signed):
                reason = "differs from the head the bot signed at this seq (rewritten after signing)"
            else:
                reason = "its signature does not verify (forged signature)"
            return _bad(count, seq - 1, prev, seq, reason)
        prev = stored
        count += 1
        expected_seq += 1
    if last_seq is not None:
        if expected_seq <= last_seq:
            return _bad(count, expected_seq - 1, prev, expected_seq, "sequence gap")
        return VerifyResult(ok=True, count=count, head_seq=expected_seq - 1, head_hash=_text(prev))
    missing = [c for c in checkpoints if c.seq >= expected_seq]
    if missing:
        first = min(c.seq for c in missing)
        return _bad(count, expected_seq - 1, prev, expected_seq,
                    f"chain ends before checkpoint {first} (truncated)")  # fmt: skip
    return VerifyResult(ok=True, count=count, head_seq=expected_seq - 1, head_hash=_text(prev))


def _text(value: object) -> str:
    """A stored hash as text for reports (a tampered cell may hold bytes, or nothing)."""
    return value if isinstance(value, str) else "" if value is None else repr(value)


def _bad(count: int, head_seq: int, head_hash: object, bad_seq: int, reason: str) -> VerifyResult:
    return VerifyResult(False, count, head_seq, _text(head_hash), bad_seq=bad_seq, reason=reason)
