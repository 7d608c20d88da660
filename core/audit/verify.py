"""Verifying a long chain on every core: slices checked in parallel processes.

Each event's hash covers only its own fields (its predecessor's hash among
them), so slices of the chain can be checked independently: a slice needs only
the hash of the event just before it. The first bad sequence number overall is
the smallest one any slice reports.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor

from sqlmodel import Session

from core.audit import service
from core.audit.chain import Checkpoint, VerifyResult, verify_rows
from core.audit.models import GENESIS_HASH
from core.db import Database

# Below this many events, starting processes costs more than it saves.
PARALLEL_THRESHOLD = 200_000


def verify(
    db: Database,
    checkpoints: Sequence[Checkpoint] = (),
    *,
    workers: int | None = None,
    threshold: int = PARALLEL_THRESHOLD,
) -> VerifyResult:
    """Verify the whole chain in db, in parallel when it is long."""
    head = db.transaction(service.head, readonly=True)
    count = workers or os.cpu_count() or 1
    if count < 2 or head.seq < threshold:
        return db.transaction(lambda s: service.verify(s, checkpoints), readonly=True)
    step = -(-head.seq // count)
    slices = [(lo, min(lo + step - 1, head.seq)) for lo in range(1, head.seq + 1, step)]
    # spawn, not fork: the parent holds live connections and threads.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=len(slices), mp_context=context) as pool:
        futures = [
            pool.submit(_verify_slice, db.url, lo, hi, hi == head.seq, tuple(checkpoints))
            for lo, hi in slices
        ]
        results = [f.result() for f in futures]
    bad = [r for r in results if not r.ok]
    if bad:
        first = min(bad, key=lambda r: r.bad_seq or 0)
        return VerifyResult(False, sum(r.count for r in results), first.head_seq, first.head_hash,
                            bad_seq=first.bad_seq, reason=first.reason)  # fmt: skip
    last = results[-1]
    return VerifyResult(True, sum(r.count for r in results), last.head_seq, last.head_hash)


def _verify_slice(
    url: str, lo: int, hi: int, final: bool, checkpoints: tuple[Checkpoint, ...]
) -> VerifyResult:
    """One slice, in a worker process with its own connection."""
    db = Database(url, workers=1)
    try:

        def check(session: Session) -> VerifyResult:
            prev = GENESIS_HASH if lo == 1 else service.hash_at(session, lo - 1)
            rows = service.iter_links(session, lo=lo, hi=None if final else hi)
            return verify_rows(rows, checkpoints, first_seq=lo, prev=prev, last_seq=None if final else hi)

        return db.transaction(check, readonly=True)
    finally:
        db.close()
