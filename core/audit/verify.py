"""Verifying a long chain on every core: slices checked in parallel processes.

Each event's hash covers only its own fields (its predecessor's hash among
them), so slices of the chain can be checked independently: a slice needs only
the hash of the event just before it. The first slice has no lower bound and the
last no upper bound, so every stored row (a seq of 0, a seq far past the head, a
seq that is not a number) is read by exactly one slice, in the same order the
sequential walk reads it. A slice checks exactly what the sequential walk checks
over its rows, so the first bad sequence number overall is the smallest one any
slice reports, and the counts are those of the slices before it. Signature
coverage is then decided once, over the combined result, as sequentially.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session

from core.audit import links, service, signatures
from core.audit.chain import Checkpoint, VerifyResult, verify_rows
from core.audit.models import GENESIS_HASH
from core.audit.signing import Keyring
from core.db import Database

# Below this many events, starting processes costs more than it saves.
PARALLEL_THRESHOLD = 200_000


def verify(
    db: Database,
    checkpoints: Sequence[Checkpoint] = (),
    *,
    keys: Keyring | None = None,
    workers: int | None = None,
    threshold: int = PARALLEL_THRESHOLD,
) -> VerifyResult:
    """Verify the whole chain in db (with keys, its signatures too), in parallel when it is long."""
    # The row count plans the slices (a tampered table's max(seq) may not even be a number);
    # slices only share the work, the unbounded first and last keep every row in one.
    total = db.transaction(lambda s: int(s.execute(text("SELECT count(*) FROM audit_event")).scalar_one()),
                           readonly=True)  # fmt: skip
    count = workers or os.cpu_count() or 1
    if count < 2 or total < threshold or total < 2:
        return db.transaction(lambda s: service.verify(s, checkpoints, keys=keys), readonly=True)
    step = -(-total // count)
    bounds = [(lo, min(lo + step - 1, total)) for lo in range(1, total + 1, step)]
    pem = keys.pem() if keys is not None else None
    # spawn, not fork: the parent holds live connections and threads.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=len(bounds), mp_context=context) as pool:
        last = len(bounds) - 1
        futures = [
            pool.submit(_verify_slice, db.url, lo, hi, i == 0, i == last, tuple(checkpoints), pem)
            for i, (lo, hi) in enumerate(bounds)
        ]
        results = [f.result() for f in futures]
    combined = _combine(results)
    if keys is None:
        return combined
    return db.transaction(lambda s: signatures.cover(s, combined, keys, checkpoints), readonly=True)


def _combine(results: list[VerifyResult]) -> VerifyResult:
    """The slices' results (in seq order) as one: the first failure, counted as the sequential walk counts."""
    verified = 0
    for result in results:
        verified += result.count
        if not result.ok:
            return replace(result, count=verified)
    last = results[-1]
    return replace(last, count=verified)


def _hash_before(session: Session, lo: int) -> str | None:
    """The stored hash of the event before a slice; None (no link check) when it is missing or
    unreadable: the slice before reports that event itself."""
    try:
        return service.hash_at(session, lo - 1)
    except DBAPIError:  # SQLite text that is not UTF-8
        return None


def _verify_slice(
    url: str, lo: int, hi: int, first: bool, final: bool, checkpoints: tuple[Checkpoint, ...],
    pem: bytes | None,
) -> VerifyResult:  # fmt: skip
    """One slice, in a worker process with its own connection."""
    db = Database(url, workers=1)
    keys = Keyring.from_pem(pem) if pem is not None else None
    try:

        def check(session: Session) -> VerifyResult:
            prev = GENESIS_HASH if first else _hash_before(session, lo)
            rows = links.iter_links(session, lo=None if first else lo, hi=None if final else hi,
                                      signed=keys is not None)  # fmt: skip
            return verify_rows(rows, checkpoints, first_seq=1 if first else lo, prev=prev,
                               last_seq=None if final else hi, keys=keys)  # fmt: skip

        return db.transaction(check, readonly=True)
    finally:
        db.close()
