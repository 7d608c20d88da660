"""Housekeeping on a schedule (APScheduler 3.x, in the bot's event loop).

Each replica runs the same jobs; they are idempotent, so no coordination is
needed. Work that must happen exactly once (digests) is claimed in the
database (DESIGN.md, "Scale"): the jobs live in memory, one scheduler per
process, and only wake that work up (APScheduler 3.x job stores cannot be
shared between processes).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from core.audit.service import utc_stamp
from core.db import Database
from core.dedupe import service as dedupe
from core.rooms import scheduled

log = logging.getLogger(__name__)


async def prune_processed(db: Database, *, keep_days: int) -> int:
    """Drop dedupe claims older than keep_days; returns how many went."""
    before = utc_stamp(datetime.now(UTC) - timedelta(days=keep_days))
    removed = await db.run(lambda s: dedupe.prune(session=s, before=before))
    log.info("pruned %d processed-activity claims older than %d days", removed, keep_days)
    return removed


async def sweep_openings(
    db: Database, *, clock: Callable[[], datetime], wake: Callable[[], None]
) -> int:
    """Cancel rooms whose opening was interrupted (system principal, audited, notices via the outbox)."""
    now = clock()
    swept = await db.commit(lambda s: scheduled.sweep_openings(s, now=now))
    if swept:
        log.warning("cancelled %d rooms whose opening was interrupted", len(swept))
        wake()
    return len(swept)


def build_scheduler(
    db: Database, *, keep_days: int, clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    wake: Callable[[], None] = lambda: None, digests: Callable[[], Awaitable[object]] | None = None,
    access: Callable[[], Awaitable[object]] | None = None,
) -> AsyncIOScheduler:  # fmt: skip
    """The scheduler with Opsroom's jobs; start it inside the running loop.

    The jobs only wake work up: what must happen once is claimed in the database, so every
    replica may run them. digests: the digest tick (bot.digests.DigestTick.run, a coroutine
    function), run every minute and once at start (a digest missed while the bot was down goes out
    within its grace window). access: the access tick (bot.access.AccessTick.run: ended access claimed,
    told and audited, guests taken out of channels, weekly reminders), every two minutes and 30 s
    after start.
    """
    scheduler = AsyncIOScheduler(timezone=UTC)
    scheduler.add_job(sweep_openings, "interval", minutes=1, args=[db], kwargs={"clock": clock, "wake": wake},
                      id="sweep-openings", coalesce=True, max_instances=1,
                      next_run_time=datetime.now(UTC) + timedelta(seconds=30))  # fmt: skip
    scheduler.add_job(prune_processed, "interval", hours=6, args=[db], kwargs={"keep_days": keep_days},
                      id="prune-processed", coalesce=True, max_instances=1,
                      next_run_time=datetime.now(UTC) + timedelta(minutes=1))  # fmt: skip
    if digests is not None:
        scheduler.add_job(digests, "interval", minutes=1, id="digests", coalesce=True, max_instances=1,
                          misfire_grace_time=30, next_run_time=datetime.now(UTC))  # fmt: skip
    if access is not None:
        soon = datetime.now(UTC) + timedelta(seconds=30)
        scheduler.add_job(access, "interval", minutes=2, id="access", coalesce=True, max_instances=1,
                          misfire_grace_time=60, next_run_time=soon)  # fmt: skip
    return scheduler
