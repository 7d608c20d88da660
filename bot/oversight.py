"""The misuse monitor's tick: one in-memory APScheduler job per process, every few seconds
(OPSROOM_OVERSIGHT_SECONDS, 5 by default).

Every process ticks; the database decides which one reads on (core/oversight/monitor.py: the cursor's
lease). One tick:

1. On a read-only transaction, beside the writer: is another process's lease live (then nothing more),
   is there anything to read or a lease to renew, and, when this process's engine does not stand where
   the cursor does (a fresh start, or another process read on meanwhile), its rebuild from the audit
   trail. Rebuilding there keeps it out of the group writer, where the step holds the audit lock.
2. The step in the group writer: alerts, their outbox rows and audit events, and the cursor's move
   commit together with whatever requests are being committed. A step that does not commit leaves the
   engine ahead of the database, so it is dropped and rebuilt next time.
3. The outbox sender is woken when a step queued alerts; a full batch is followed by another at once
   (at most `batches` a tick).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from datetime import UTC, datetime

from bot.metrics import Metrics
from bot.sender import default_worker
from core.db import Database
from core.oversight.monitor import Monitor, Stepped
from core.oversight.rules import Rules
from dialogs.oversight_cards import alert_activity

log = logging.getLogger(__name__)


class OversightTick:
    """This process's misuse monitor tick (see the module docstring)."""

    def __init__(
        self, db: Database, monitor: Monitor, *, clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        wake: Callable[[], None] = lambda: None, batches: int = 10, metrics: Metrics | None = None,
    ) -> None:  # fmt: skip
        self.db, self.monitor, self.clock, self.wake, self.batches = db, monitor, clock, wake, batches
        self.metrics = metrics or Metrics()
        self._lock = asyncio.Lock()  # one tick at a time: the scheduler's, or one run by hand

    @classmethod
    def build(
        cls, db: Database, rules: Rules, *, timezone: str, clock: Callable[[], datetime],
        wake: Callable[[], None], metrics: Metrics | None = None,
    ) -> OversightTick:  # fmt: skip
        """The tick of a monitor running these rules, its alerts shown in this time zone."""
        render = functools.partial(alert_activity, timezone=timezone)
        monitor = Monitor(rules, owner=default_worker(), render=render, timezone=timezone)
        return cls(db, monitor, clock=clock, wake=wake, metrics=metrics)

    async def run(self) -> list[Stepped]:
        """One tick; a failure is logged, and the next tick tries again."""
        async with self._lock:
            try:
                return await self._run()
            except Exception:
                log.exception("misuse monitor tick failed")
                return []

    async def _run(self) -> list[Stepped]:
        monitor, done = self.monitor, []
        for _ in range(self.batches):
            now = self.clock()
            if not await self.db.run(functools.partial(monitor.prepare, now=now), readonly=True):
                break
            try:
                stepped = await self.db.commit(functools.partial(monitor.step, now=now))
            except BaseException:
                monitor.forget()
                raise
            done.append(stepped)
            if stepped.held_by is not None:
                break
            if stepped.queued:
                self.wake()
            for raised in stepped.raised:
                self.metrics.alerts.labels(rule=raised.alert.rule[:64], outcome=raised.outcome).inc()
                log.info("misuse alert %d: rule %s, events %d-%d, %s", raised.alert_id, raised.alert.rule,
                         raised.alert.first_seq, raised.alert.last_seq, raised.outcome)  # fmt: skip
            if not stepped.more:
                break
        return done
