"""The outbox sender: the only code that posts into Teams outside a reply (DESIGN.md, step 7).

One per bot process, an asyncio task in the bot's event loop. It claims due rows
(`core.outbox.service.claim`: across processes each row once, a conversation's rows
in id order), and gives each conversation a lane that posts its rows one after
another, paced per conversation and per tenant (`bot.pacing`), so that a message
that may not go yet never holds up another conversation. Leases on held rows are
renewed while they wait; on stop, rows not sent are given back. How each answer
from Teams is recorded (retries, 429, 404, 403) is `bot.sender_outcomes`.

A retried row goes back to the database with its time (`retry_later`), and the
rows after it in its conversation are given back too: they wait behind it there
(the claim keeps id order), whichever process takes them next.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import secrets
import socket
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlmodel import Session

from bot.auth import GuardedAuthentication
from bot.config import Settings
from bot.metrics import Metrics
from bot.outbound import Outbound
from bot.outbox_http import ConnectorPost, Post, connector_for
from bot.pacing import Pacer
from bot.sender_outcomes import Outcomes, SenderSettings, Verdict, job
from core.db import Database
from core.outbox import service as outbox
from core.outbox.models import OutboxMessage

__all__ = ["OutboxSender", "SenderSettings", "default_worker"]

log = logging.getLogger(__name__)


@dataclass
class _Lane:
    conversation_id: str
    queue: deque[OutboxMessage] = field(default_factory=deque)
    task: asyncio.Task[None] | None = None


def default_worker() -> str:
    """A claimant name unique to this process: host, pid and a random part (pids are reused)."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(4)}"


def _utcnow() -> datetime:
    return datetime.now(UTC)


class OutboxSender:
    """Delivers outbox rows after commit; see the module docstring.

    In the app: `sender = OutboxSender.for_app(db, auth, outbound, settings)`, then
    `await sender.start()` at start-up (after `outbound.start()`), `sender.wake()` after
    a commit that wrote outbox rows, and `await sender.stop()` at cleanup, before the
    outbound session and the database are closed.
    """

    def __init__(
        self, db: Database, post: Post, *, settings: SenderSettings | None = None, worker: str | None = None,
        clock: Callable[[], datetime] = _utcnow, pacer: Pacer | None = None, rng: random.Random | None = None,
        metrics: Metrics | None = None,
    ) -> None:  # fmt: skip
        self.db = db
        self.metrics = metrics or Metrics()
        self.settings = s = settings or SenderSettings()
        self.clock = clock
        self.pacer = pacer or Pacer(conversation=s.conversation_limits, tenant=s.tenant_limits, slack=s.slack)
        self.outcomes = Outcomes(db, post, worker=worker or default_worker(), settings=s, pacer=self.pacer,
                                 clock=clock, rng=rng or random.Random(), wake_in=self._wake_in,
                                 metrics=self.metrics)  # fmt: skip
        self._lanes: dict[str, _Lane] = {}
        self._held: dict[int, OutboxMessage] = {}
        self._sending: set[int] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._renewer: asyncio.Task[None] | None = None
        self._wakeup = asyncio.Event()
        self._stopped = asyncio.Event()
        self._gate = asyncio.Semaphore(s.concurrency)
        self._timers: set[asyncio.TimerHandle] = set()
        self._stopping = False

    @classmethod
    def for_app(
        cls, db: Database, auth: GuardedAuthentication, outbound: Outbound, settings: Settings,
        *, options: SenderSettings | None = None, worker: str | None = None,
    ) -> OutboxSender:  # fmt: skip
        """The sender of a running app: posts with the app's credentials through its shared session."""
        post = ConnectorPost(outbound, connector_for(auth, settings.app_id or None))
        return cls(db, post, settings=options, worker=worker)

    # -- life ----------------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """Started and not stopped."""
        return self._task is not None and not self._stopping

    @property
    def worker(self) -> str:
        """This sender's name on the rows it claims."""
        return self.outcomes.worker

    @property
    def stats(self) -> Counter[str]:
        """Outcomes so far: sent, retried, throttled, failed, dead, blocked, lost."""
        return self.outcomes.stats

    @property
    def held(self) -> int:
        """Rows claimed and not yet settled."""
        return len(self._held)

    async def start(self) -> None:
        """Start claiming and sending (inside the running loop)."""
        if self._task is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._stopping = False
        # Made here, not in __init__: asyncio primitives belong to the loop that first waits on them.
        self._wakeup, self._stopped = asyncio.Event(), asyncio.Event()
        self._gate = asyncio.Semaphore(self.settings.concurrency)
        self._task = asyncio.create_task(self._run(), name="outbox-sender")
        self._renewer = asyncio.create_task(self._renew_leases(), name="outbox-leases")

    def wake(self) -> None:
        """Claim now rather than at the next poll (call after a commit that wrote outbox rows).

        Safe from any thread.
        """
        loop = self._loop
        if loop is None or self._stopping:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._wakeup.set()
        else:
            with contextlib.suppress(RuntimeError):  # the loop has closed
                loop.call_soon_threadsafe(self._wakeup.set)

    async def stop(self, timeout: float = 10.0) -> None:
        """Finish the posts in flight (up to timeout), then give back every row not sent.

        A post cut off at the timeout is given back too: whether Teams got it is unknown either way, and
        its lease would only make another sender wait to try it again (a double post is as likely then).
        """
        if self._task is None:
            return
        self._stopping = True
        self._stopped.set()
        self._wakeup.set()
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        tasks: list[asyncio.Task[None]] = [self._task]
        if self._renewer is not None:
            tasks.append(self._renewer)
        tasks.extend(lane.task for lane in self._lanes.values() if lane.task is not None)
        _, late = await asyncio.wait(tasks, timeout=max(0.0, timeout))
        abandoned = set(self._sending)
        holding = set(self._held)  # before the cancelled lanes forget the rows they were posting
        for task in late:
            task.cancel()
        await asyncio.gather(*late, return_exceptions=True)
        if abandoned:
            log.warning("outbox: %d posts cut off by shutdown after %.1f s; given back", len(abandoned),
                        timeout)  # fmt: skip
        unsent = sorted(holding | set(self._held))
        self._held.clear()
        self._lanes.clear()
        self._task = self._renewer = None
        if unsent:
            try:
                released = await self.db.commit(
                    lambda s: outbox.release(session=s, worker=self.worker, message_ids=unsent)
                )
                self.metrics.released.inc(released)
                log.info("outbox: gave back %d unsent messages", released)
            except Exception:
                log.exception("outbox: could not give back %d messages; they return when their lease ends",
                              len(unsent))  # fmt: skip

    # -- claiming ------------------------------------------------------------------------------------

    async def _run(self) -> None:
        while not self._stopping:
            self._wakeup.clear()
            more = False
            try:
                more = await self._claim()
            except Exception:
                log.exception("outbox: claim failed")
            if not more:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), self.settings.poll_interval)

    async def _claim(self) -> bool:
        """Claim what is due into the lanes; True when the claim was full (more may be due)."""
        s = self.settings
        room = s.max_held - len(self._held)
        if room <= 0:
            return False
        limit = min(s.claim_limit, room)
        claim = job(outbox.claim, worker=self.worker, now=self.clock(), lease=s.lease, limit=limit,
                     per_conversation=s.per_conversation)  # fmt: skip
        rows = await self.db.commit(claim)
        touched: dict[str, _Lane] = {}
        for row in rows:
            assert row.id is not None
            self._held[row.id] = row
            lane = self._lanes.get(row.conversation_id)
            if lane is None:
                lane = self._lanes[row.conversation_id] = _Lane(row.conversation_id)
            lane.queue.append(row)
            touched[row.conversation_id] = lane
        if self._stopping:
            return False  # stop() gives them back
        for lane in touched.values():
            lane.queue = deque(sorted(lane.queue, key=lambda m: m.id or 0))
            if lane.task is None or lane.task.done():
                lane.task = asyncio.create_task(
                    self._drive(lane), name=f"outbox-lane-{lane.conversation_id[:40]}"
                )
        return len(rows) >= limit

    async def _renew_leases(self) -> None:
        """Keep the claims on held rows alive; forget rows another sender took over."""
        lease = self.settings.lease
        interval = max(0.05, lease.total_seconds() / 3)
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopped.wait(), interval)
            if self._stopping:
                return
            ids = list(self._held)
            if not ids:
                continue
            renew = job(outbox.renew, worker=self.worker, message_ids=ids, now=self.clock(), lease=lease)
            try:
                kept = await self.db.commit(renew)
            except Exception:
                log.exception("outbox: lease renewal failed")
                continue
            for message_id in ids:
                if message_id not in kept and message_id in self._held and message_id not in self._sending:
                    del self._held[message_id]  # its lane skips it
                    self.stats["lost"] += 1
                    self.metrics.delivered("lost")
                    log.warning("outbox: message %d was taken over by another sender", message_id)

    # -- one conversation ----------------------------------------------------------------------------

    async def _drive(self, lane: _Lane) -> None:
        """Post a conversation's held rows in order, paced, until none is left or a retry holds them back."""
        try:
            while lane.queue and not self._stopping:
                message = lane.queue.popleft()
                assert message.id is not None
                if message.id not in self._held:
                    continue  # taken over by another sender while it waited
                if not await self._turn(message):
                    return  # stopping: stop() gives back what is held, this one included
                if message.id not in self._held:  # lost while it waited for its turn
                    self._gate.release()
                    continue
                self._sending.add(message.id)
                try:
                    verdict = await self.outcomes.deliver(message)
                finally:
                    self._gate.release()
                    self._sending.discard(message.id)
                    self._held.pop(message.id, None)
                if verdict is Verdict.HOLD_BACK:
                    await self._give_back(lane)
                elif verdict is Verdict.BLOCKED:
                    await self._kill(lane, message)
        except Exception:
            log.exception("outbox: lane failed; its rows return when their lease ends")
            for message in lane.queue:
                self._held.pop(message.id or 0, None)
            lane.queue.clear()
        finally:
            if self._lanes.get(lane.conversation_id) is lane and not lane.queue:
                del self._lanes[lane.conversation_id]

    async def _turn(self, message: OutboxMessage) -> bool:
        """Wait for pacing to let the message go and for a post slot (held on return); False if stopping."""
        while True:
            if self._stopping:
                return False
            delay = self.pacer.wait(message.conversation_id, message.tenant_id)
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopped.wait(), delay)
                continue
            await self._gate.acquire()
            if self._stopping or self.pacer.wait(message.conversation_id, message.tenant_id) > 0:
                self._gate.release()  # another lane of this tenant took the slot meanwhile
                continue
            self.pacer.take(message.conversation_id, message.tenant_id)
            return True

    async def _give_back(self, lane: _Lane) -> None:
        """Return the rest of a lane to the store: it waits there behind the row being retried."""
        ids = [m.id for m in lane.queue if m.id is not None and self._held.pop(m.id, None) is not None]
        lane.queue.clear()
        if ids:
            give_back = job(outbox.release, worker=self.worker, message_ids=ids)
            released = await self.db.commit(give_back)
            self.metrics.released.inc(released)

    async def _kill(self, lane: _Lane, blocked: OutboxMessage) -> None:
        """The conversation is blocked: the rest of its lane is dead, unsent."""
        ids = [m.id for m in lane.queue if m.id is not None and self._held.pop(m.id, None) is not None]
        lane.queue.clear()
        error = f"conversation blocked after message {blocked.id}"

        def kill(session: Session) -> None:
            for message_id in ids:
                outbox.mark_dead(session=session, message_id=message_id, worker=self.worker, error=error)

        if ids:
            await self.db.commit(kill)
            self.stats["dead"] += len(ids)
            self.metrics.delivered("dead", len(ids))

    def _wake_in(self, delay: float) -> None:
        """Claim again when a retry comes due, without waiting for the next poll."""
        if self._loop is None or self._stopping:
            return
        timer = self._loop.call_later(delay, self._wakeup.set)
        self._timers.add(timer)
        if len(self._timers) > 1000:
            self._timers = {t for t in self._timers if not t.cancelled() and t.when() > self._loop.time()}
