"""Which replies reached Teams: remembered at once here, written to the database in batches.

A command's reply is kept with its dedupe claim until it is known to be delivered, so that a re-send
of the activity whose reply never arrived gets it (bot/pipeline.py). Marks are written together a
moment later (one write for many replies, not one each); a crash before that write means a re-send
gets its reply again, never loses it.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict

from core.db import Database
from core.dedupe import service as dedupe

log = logging.getLogger(__name__)

MEMORY = 10_000
"""Delivered replies remembered in this process (their mark in the database may still be on its way)."""
DELAY = 0.05
"""Seconds a delivered reply waits to be marked in the database with others."""


class DeliveredMarks:
    """The delivered replies of this process, by dedupe key."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._delivered: OrderedDict[str, None] = OrderedDict()
        self._unmarked: list[str] = []
        self._background: set[asyncio.Task[None]] = set()

    def __contains__(self, key: object) -> bool:
        """The reply with this key was delivered lately (by this process)."""
        return key in self._delivered

    def delivered(self, key: str) -> None:
        """Remember a delivered reply here at once, and in the database with the next batch of marks."""
        self._delivered[key] = None
        while len(self._delivered) > MEMORY:
            self._delivered.popitem(last=False)
        self._unmarked.append(key)
        if len(self._unmarked) == 1:
            asyncio.get_running_loop().call_later(DELAY, self._mark)

    async def close(self) -> None:
        """Write the marks still waiting, and wait for the writes (at shutdown)."""
        self._mark()
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)

    def _mark(self) -> None:
        keys, self._unmarked = self._unmarked, []
        if not keys:
            return

        async def write() -> None:
            try:
                await self.db.commit(lambda s: dedupe.mark_delivered(session=s, keys=keys))
            except Exception:
                log.exception("could not record %d replies as delivered", len(keys))

        task = asyncio.get_running_loop().create_task(write())
        self._background.add(task)
        task.add_done_callback(self._background.discard)
