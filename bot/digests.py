"""The daily digests' tick: one in-memory APScheduler job per process, every minute and once at start.

APScheduler 3.x job stores cannot be shared between processes (two processes sharing one ran a job
twice), so nothing is stored in APScheduler: each process ticks on its own and the database decides.
A tick asks core.digest.claim.due which rooms' digests are due and unclaimed (room time, with the
clock-change rules of core.digest.timing), then runs core.digest.scheduled.post for each, one job per
room in the group writer: claim, outbox rows and audit event commit together, and a room another
process claimed first is left alone. The outbox sender delivers after commit; a crash in between
leaves the rows to be delivered once the sender runs again.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from datetime import UTC, datetime

from core.db import Database
from core.digest import claim, scheduled, timing
from core.digest.scheduled import Posted
from dialogs.digest_cards import render
from dialogs.digest_scope import scope_by
from policies import Policy

log = logging.getLogger(__name__)

CHUNK = 16
"""Rooms handed to the group writer at once. A digest is built inside its claiming transaction, which
holds the audit append lock until it commits; small batches keep requests from waiting long on it."""


async def post_due(
    db: Database, policy: Policy, *, now: datetime, grace_until: str = timing.DEFAULT_GRACE_UNTIL
) -> list[Posted]:
    """Claim and write every digest due at `now` and not yet claimed (skips, when late, audited);
    what this call did, room by room. Safe to run from every process at once."""
    due = await db.run(lambda s: claim.due(s, now=now, grace_until=grace_until), readonly=True)
    if not due:
        return []
    scope = scope_by(policy.decide_many)
    post = functools.partial(scheduled.post, now=now, scope=scope, render=render)
    results: list[Posted | BaseException | None] = []
    for start in range(0, len(due), CHUNK):
        jobs = [db.commit(functools.partial(post, due=d)) for d in due[start : start + CHUNK]]
        results += await asyncio.gather(*jobs, return_exceptions=True)
    posted: list[Posted] = []
    for item, result in zip(due, results, strict=True):
        if isinstance(result, BaseException):  # that room alone; the next tick tries it again
            log.error("digest of %s for %s failed: %s", item.room_key, item.local_date, type(result).__name__,
                      exc_info=result)  # fmt: skip
        elif result is not None:
            posted.append(result)
    return posted


class DigestTick:
    """This process's digest tick (see the module docstring)."""

    def __init__(
        self, db: Database, policy: Policy, *, clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        grace_until: str = timing.DEFAULT_GRACE_UNTIL, wake: Callable[[], None] = lambda: None,
    ) -> None:  # fmt: skip
        self.db, self.policy, self.clock, self.grace_until, self.wake = db, policy, clock, grace_until, wake

    async def run(self) -> list[Posted]:
        """One tick: post what is due now, and wake the sender if anything was written."""
        try:
            posted = await post_due(self.db, self.policy, now=self.clock(), grace_until=self.grace_until)
        except Exception:
            log.exception("digest tick failed")
            return []
        if any(p.messages for p in posted):
            self.wake()
        for p in posted:
            log.info("digest %s for %s: %s (%d messages)", p.room_key, p.local_date, p.outcome, p.messages)
        return posted
