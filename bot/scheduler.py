"""Housekeeping on a schedule (APScheduler 3.x, in the bot's event loop).

Each replica runs the same jobs; they are idempotent, so no coordination is
needed. Work that must happen exactly once (digests) is claimed in the
database (DESIGN.md, "Scale"): the jobs live in memory, one scheduler per
process, and only wake that work up (APScheduler 3.x job stores cannot be
shared between processes).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.logs import new_request_id, request_id
from bot.metrics import Metrics
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


class Jobs:
    """The scheduler's runs in flight, each with a request id of its own (its log lines and audit events
    carry it), so that shutdown can wait for them: AsyncIOScheduler.shutdown(wait=True) waits only for
    jobs run in threads, not for coroutine jobs, which it starts as tasks and forgets."""

    def __init__(self, metrics: Metrics | None = None) -> None:
        self.metrics = metrics
        self.closed = False
        self._running: set[asyncio.Task[Any]] = set()

    def wrap(self, name: str, fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        """fn as a job: a fresh request id, tracked while it runs, counted by outcome; not started once
        closed."""

        @functools.wraps(fn)
        async def run(*args: Any, **kwargs: Any) -> Any:
            task = asyncio.current_task()
            if self.closed or task is None:
                return None
            self._running.add(task)
            token = request_id.set(new_request_id())
            outcome = "error"
            try:
                result = await fn(*args, **kwargs)
                outcome = "ok"
                return result
            finally:
                request_id.reset(token)
                self._running.discard(task)
                if self.metrics is not None:
                    self.metrics.jobs.labels(job=name, outcome=outcome).inc()

        return run

    @property
    def running(self) -> int:
        """Runs in flight now."""
        return len(self._running)

    async def wait(self, timeout: float) -> bool:
        """Start no more runs; wait up to timeout for those in flight, then cancel the rest (each unit of
        work is one transaction: a cancelled run leaves it committed or rolled back, never half).
        True when every run finished by itself."""
        self.closed = True
        running = set(self._running)
        if not running:
            return True
        _, late = await asyncio.wait(running, timeout=max(0.0, timeout))
        for task in late:
            task.cancel()
        if late:
            log.warning("shutdown: %d scheduler jobs cut off after %.1f s", len(late), timeout)
            await asyncio.gather(*late, return_exceptions=True)
        return not late


def build_scheduler(
    db: Database, *, keep_days: int, clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    wake: Callable[[], None] = lambda: None, digests: Callable[[], Awaitable[object]] | None = None,
    access: Callable[[], Awaitable[object]] | None = None, jobs: Jobs | None = None,
) -> AsyncIOScheduler:  # fmt: skip
    """The scheduler with Opsroom's jobs; start it inside the running loop.

    The jobs only wake work up: what must happen once is claimed in the database, so every
    replica may run them. digests: the digest tick (bot.digests.DigestTick.run, a coroutine
    function), run every minute and once at start (a digest missed while the bot was down goes out
    within its grace window). access: the access tick (bot.access.AccessTick.run: ended access claimed,
    told and audited, guests taken out of channels, weekly reminders), every two minutes and 30 s
    after start. jobs: where runs are tracked (Jobs.wrap) so that shutdown can wait for them.
    """
    jobs = jobs or Jobs()
    scheduler = AsyncIOScheduler(timezone=UTC)
    scheduler.add_job(jobs.wrap("sweep-openings", sweep_openings), "interval", minutes=1, args=[db],
                      kwargs={"clock": clock, "wake": wake}, id="sweep-openings", coalesce=True,
                      max_instances=1,
                      next_run_time=datetime.now(UTC) + timedelta(seconds=30))  # fmt: skip
    scheduler.add_job(jobs.wrap("prune-processed", prune_processed), "interval", hours=6, args=[db],
                      kwargs={"keep_days": keep_days}, id="prune-processed", coalesce=True, max_instances=1,
                      next_run_time=datetime.now(UTC) + timedelta(minutes=1))  # fmt: skip
    if digests is not None:
        scheduler.add_job(jobs.wrap("digests", digests), "interval", minutes=1, id="digests", coalesce=True,
                          max_instances=1, misfire_grace_time=30,
                          next_run_time=datetime.now(UTC))  # fmt: skip
    if access is not None:
        soon = datetime.now(UTC) + timedelta(seconds=30)
        scheduler.add_job(jobs.wrap("access", access), "interval", minutes=2, id="access", coalesce=True,
                          max_instances=1, misfire_grace_time=60, next_run_time=soon)  # fmt: skip
    return scheduler
