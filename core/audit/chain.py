"""Canonical encoding, the hash chain, and verification."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from core.audit.models import GENESIS_HASH, HASHED_FIELDS


def canonical(values: Sequence[Any]) -> bytes:
    """The bytes that are hashed: a JSON array of the hashed fields, in order."""
    return json.dumps(list(values), ensure_ascii=False, separators=(",", ":")).encode("utf-8")


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


def verify_rows(
    rows: Iterable[Sequence[Any]], checkpoints: Sequence[Checkpoint] = ()
) -> VerifyResult:
    """Walk rows (hashed values then the stored hash, ordered by seq) and check the chain.

    Checks a gapless sequence from 1, each row's link to its predecessor, each
    row's own hash, and, when checkpoints are given, that the chain still reaches
    every checkpoint with the same hash (which catches truncation and a tail
    rewritten with recomputed hashes).
    """
    by_seq = {c.seq: c for c in checkpoints}
    expected_seq = 1
    prev = GENESIS_HASH
    count = 0
    seq_index = HASHED_FIELDS.index("seq")
    prev_index = HASHED_FIELDS.index("prev_hash")
    for row in rows:
        values, stored = row[:-1], row[-1]
        seq = values[seq_index]
        if seq != expected_seq:
            return _bad(count, expected_seq - 1, prev, min(seq, expected_seq), "sequence gap")
        if values[prev_index] != prev:
            return _bad(count, seq - 1, prev, seq, "does not link to the previous event")
        if event_hash(values) != stored:
            return _bad(count, seq - 1, prev, seq, "hash does not match its contents")
        point = by_seq.get(seq)
        if point is not None and point.hash != stored:
            return _bad(count, seq - 1, prev, seq, "differs from the checkpoint")
        prev = stored
        count += 1
        expected_seq += 1
    missing = [c for c in checkpoints if c.seq >= expected_seq]
    if missing:
        first = min(c.seq for c in missing)
        return _bad(count, expected_seq - 1, prev, expected_seq,
                    f"chain ends before checkpoint {first} (truncated)")  # fmt: skip
    return VerifyResult(ok=True, count=count, head_seq=expected_seq - 1, head_hash=prev)


def _bad(count: int, head_seq: int, head_hash: str, bad_seq: int, reason: str) -> VerifyResult:
    return VerifyResult(False, count, head_seq, head_hash, bad_seq=bad_seq, reason=reason)
