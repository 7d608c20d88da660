"""Requests refused before they reach the bot, audited without letting a flood fill the audit store.

The first few rejections from one source in a minute are each recorded; beyond that they are
counted, and one summary event per source and minute records how many more there were. An
unauthenticated body's claims (who sent it, from where) are never recorded as the actor.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

from bot.logs import request_id
from bot.metrics import Metrics
from core.audit import flows
from core.audit.models import Actor, EventDraft
from core.db import Database

log = logging.getLogger(__name__)

THRESHOLD = 5
"""Rejections per source and minute recorded one by one."""
MAX_SOURCES = 10_000
"""Sources counted at once; past it (a flood from everywhere) they are counted together as `*`."""
UNVERIFIED = Actor(kind="unverified")


class RejectionLog:
    """Audits rejected requests per source and minute (see the module docstring)."""

    def __init__(
        self, db: Database, *, threshold: int = THRESHOLD, clock: Callable[[], float] = time.time,
        metrics: Metrics | None = None,
    ) -> None:
        self.db = db
        self.metrics = metrics or Metrics()
        self.threshold = threshold
        self.clock = clock
        self._counts: dict[tuple[str, int], int] = {}
        self._task: asyncio.Task[None] | None = None

    async def record(self, *, source: str, status: int, reason: str, action: str,
                     activity_id: str | None = None, activity_type: str | None = None) -> None:  # fmt: skip
        """Count one rejection; audit it while under the threshold for its source and minute."""
        minute = int(self.clock() // 60)
        if len(self._counts) >= MAX_SOURCES and (source, minute) not in self._counts:
            source = "*"
        key = (source, minute)
        seen = self._counts[key] = self._counts.get(key, 0) + 1
        if any(m < minute for _, m in self._counts):
            await self.flush()
        if seen > self.threshold:
            return
        draft = EventDraft(action=action, outcome="unauthorized" if status == 401 else "rejected",
                           actor=UNVERIFIED, activity_id=activity_id, activity_type=activity_type,
                           detail=f"HTTP {status}: {reason} (from {source})",
                           request_id=request_id.get())  # fmt: skip
        started = time.perf_counter()
        await self.db.commit(lambda session: flows.record(session, draft))
        self.metrics.audit_append.labels(path="rejection").observe(time.perf_counter() - started)

    async def flush(self, *, everything: bool = False) -> int:
        """Write the summaries of finished minutes (all of them with everything); how many were written."""
        minute = int(self.clock() // 60)
        done = [key for key in self._counts if everything or key[1] < minute]
        drafts = []
        for source, at in done:
            extra = self._counts.pop((source, at)) - self.threshold
            if extra > 0:
                start = datetime.fromtimestamp(at * 60, UTC).strftime("%Y-%m-%d %H:%M")
                drafts.append(EventDraft(action="http.rejected.summary", outcome="rejected", actor=UNVERIFIED,
                                         detail=f"{extra} more rejected requests from {source} in the minute "
                                                f"from {start} UTC"))  # fmt: skip
        if drafts:
            # A summary counts many requests: it is not the event of the request whose arrival flushed it.
            token = request_id.set(None)
            try:
                await self.db.commit(lambda session: [flows.record(session, d) for d in drafts])
            finally:
                request_id.reset(token)
        return len(drafts)

    async def start(self) -> None:
        """Flush finished minutes every half minute, so a flood that stops is still summarised."""

        async def run() -> None:
            while True:
                await asyncio.sleep(30)
                try:
                    await self.flush()
                except Exception:
                    log.exception("could not write rejection summaries")

        self._task = asyncio.get_running_loop().create_task(run())

    async def stop(self) -> None:
        """Write every summary still counted."""
        if self._task is not None:
            self._task.cancel()
            self._task = None
        await self.flush(everything=True)
