"""The daily digests' tick: one in-memory APScheduler job per process, every minute and once at start.

APScheduler 3.x job stores cannot be shared between processes (two processes sharing one ran a job
twice), so nothing is stored in APScheduler: each process ticks on its own and the database decides.
A tick asks core.digest.claim.due which rooms' digests are due and unclaimed (room time, with the
clock-change rules of core.digest.timing), prepares each room's digests on a read-only session
(core.digest.scheduled.prepare), then commits each in the group writer (scheduled.commit): claim,
outbox rows and audit event together, and a room another process claimed first is left alone. The
outbox sender delivers after commit; a crash in between leaves the rows to be delivered once the
sender runs again.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from datetime import UTC, datetime

from sqlmodel import Session

from bot.metrics import Metrics
from core.db import Database
from core.digest import claim, scheduled, timing
from core.digest.claim import Due
from core.digest.scheduled import Posted, Prepared
from dialogs.digest_cards import render
from dialogs.digest_scope import scope_by
from policies import Policy

log = logging.getLogger(__name__)

CHUNK = 16
"""Rooms prepared, then handed to the group writer, at once. A claim holds the audit append lock until
it commits; small batches keep requests from waiting long on it."""


async def post_due(
    db: Database, policy: Policy, *, now: datetime, grace_until: str = timing.DEFAULT_GRACE_UNTIL,
    wake: Callable[[], None] = lambda: None,
) -> list[Posted]:
    """Claim and write every digest due at `now` and not yet claimed (skips, when late, audited);
    what this call did, room by room. Safe to run from every process at once. `wake` is called after
    each batch that wrote messages, so the sender posts the first rooms while later ones are built."""
    due = await db.run(lambda s: claim.due(s, now=now, grace_until=grace_until), readonly=True)
    if not due:
        return []
    scope = scope_by(policy.decide_many)
    prepare = functools.partial(scheduled.prepare, now=now, scope=scope, render=render)
    results: list[Posted | BaseException | None] = []
    for start in range(0, len(due), CHUNK):
        chunk = due[start : start + CHUNK]
        # Rendering reads only: beside the writer, so deliveries' commits are not queued behind it; one
        # thread for the chunk, so that it does not crowd the event loop (and the sender) off the GIL.
        made = await db.run(functools.partial(_prepare_all, prepare, chunk), readonly=True)
        jobs = [db.commit(functools.partial(scheduled.commit, prepared=p, now=now)) if isinstance(p, Prepared)
                else _settled(p) for p in made]  # fmt: skip
        batch = await asyncio.gather(*jobs, return_exceptions=True)
        results += batch
        if any(isinstance(r, Posted) and r.messages for r in batch):
            wake()
    posted: list[Posted] = []
    for item, result in zip(due, results, strict=True):
        if isinstance(result, BaseException):  # that room alone; the next tick tries it again
            log.error("digest of %s for %s failed: %s", item.room_key, item.local_date, type(result).__name__,
                      exc_info=result)  # fmt: skip
        elif result is not None:
            posted.append(result)
    return posted


def _prepare_all(
    prepare: Callable[..., Prepared | None], rooms: list[Due], session: Session
) -> list[Prepared | Exception | None]:
    """Each room's preparation, or its failure (the others go on, on a fresh transaction)."""
    made: list[Prepared | Exception | None] = []
    for due in rooms:
        try:
            made.append(prepare(session, due=due))
        except Exception as exc:
            session.rollback()
            made.append(exc)
    return made


async def _settled(value: object) -> None:
    """A room that needs no commit: its preparation's exception (re-raised) or nothing to post."""
    if isinstance(value, BaseException):
        raise value


class DigestTick:
    """This process's digest tick (see the module docstring)."""

    def __init__(
        self, db: Database, policy: Policy, *, clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        grace_until: str = timing.DEFAULT_GRACE_UNTIL, wake: Callable[[], None] = lambda: None,
        metrics: Metrics | None = None,
    ) -> None:  # fmt: skip
        self.db, self.policy, self.clock, self.grace_until, self.wake = db, policy, clock, grace_until, wake
        self.metrics = metrics or Metrics()

    async def run(self) -> list[Posted]:
        """One tick: post what is due now (post_due wakes the sender as batches are written)."""
        try:
            posted = await post_due(self.db, self.policy, now=self.clock(), grace_until=self.grace_until,
                                    wake=self.wake)  # fmt: skip
        except Exception:
            log.exception("digest tick failed")
            return []
        for p in posted:
            self.metrics.digests.labels(outcome=p.outcome).inc()  # queued (to the outbox) or skipped
            log.info("digest %s for %s: %s (%d messages)", p.room_key, p.local_date, p.outcome, p.messages)
        return posted
