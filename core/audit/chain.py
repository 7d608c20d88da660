"""Canonical encoding, the hash chain, and verification."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from core.audit.models import GENESIS_HASH, HASHED_FIELDS

# One encoder, built once: json.dumps with options builds a new encoder per call,
# which dominates the cost of verifying a long chain.
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def canonical(values: Sequence[Any]) -> bytes:
    """The bytes that are hashed: a JSON array of the hashed fields, in order."""
    return _ENCODER.encode(list(values)).encode("utf-8")


def event_hash(values: Sequence[Any]) -> str:
    """SHA-256 of the canonical encoding, as hex."""
    return hashlib.sha256(canonical(values)).hexdigest()


def hashed_values(row: Any) -> tuple[Any, ...]:
    """The hashed fields of a row or model, in the chain's order."""
    return tuple(getattr(row, name) for name in HASHED_FIELDS)


@dataclass(frozen=True)
class Checkpoint:
    """A chain head recorded outside the table."""

    seq: int
    hash: str


@dataclass(frozen=True)
class VerifyResult:
    """What verify found: ok, or the first bad sequence number and why."""

    ok: bool
    count: int
    head_seq: int
    head_hash: str
    bad_seq: int | None = None
    reason: str | None = None


# One event as verification sees it: seq, stored prev_hash, stored hash, and the
# hash recomputed from its stored fields.
Link = tuple[int, str, str, str]


def verify_rows(
    links: Iterable[Link],
    checkpoints: Sequence[Checkpoint] = (),
    *,
    first_seq: int = 1,
    prev: str | None = GENESIS_HASH,
    last_seq: int | None = None,
) -> VerifyResult:
    """Walk the chain's links in seq order and check them.

    Checks a gapless sequence from first_seq, each event's link to its
    predecessor, each event's own hash, and, when checkpoints are given, that the
    chain still reaches every checkpoint with the same hash (which catches
    truncation and a tail rewritten with recomputed hashes).

    To verify one slice of a long chain, give first_seq, the hash of the event
    before it as prev (None when that event is missing: the slice before reports
    it), and last_seq, where the slice must end.
    """
    by_seq = {c.seq: c for c in checkpoints}
    expected_seq = first_seq
    count = 0
    for seq, prev_hash, stored, computed in links:
        if seq != expected_seq:
            return _bad(count, expected_seq - 1, prev or "", min(seq, expected_seq), "sequence gap")
        if prev is not None and prev_hash != prev:
            return _bad(count, seq - 1, prev, seq, "does not link to the previous event")
        if computed != stored:
            return _bad(count, seq - 1, prev or "", seq, "hash does not match its contents")
        point = by_seq.get(seq)
        if point is not None and point.hash != stored:
            return _bad(count, seq - 1, prev or "", seq, "differs from the checkpoint")
        prev = stored
        count += 1
        expected_seq += 1
    head = prev or ""
    if last_seq is not None:
        if expected_seq <= last_seq:
            return _bad(count, expected_seq - 1, head, expected_seq, "sequence gap")
        return VerifyResult(ok=True, count=count, head_seq=expected_seq - 1, head_hash=head)
    missing = [c for c in checkpoints if c.seq >= expected_seq]
    if missing:
        first = min(c.seq for c in missing)
        return _bad(count, expected_seq - 1, head, expected_seq,
                    f"chain ends before checkpoint {first} (truncated)")  # fmt: skip
    return VerifyResult(ok=True, count=count, head_seq=expected_seq - 1, head_hash=head)


def _bad(count: int, head_seq: int, head_hash: str, bad_seq: int, reason: str) -> VerifyResult:
    return VerifyResult(False, count, head_seq, head_hash, bad_seq=bad_seq, reason=reason)
