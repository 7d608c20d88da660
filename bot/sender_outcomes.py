"""One outbox message's post and how Teams' answer is recorded (for `bot.sender`).

* 2xx: sent, with the activity id Teams gave it; a message that carried a disclosure (a digest)
  appends its audit event in the same commit (`core.outbox.flows.delivered`).
* 429: the row waits for Retry-After (seconds or HTTP date; a jittered back-off
  without one) and its conversation is paused as long. Failed once it has been
  claimed `max_attempts_throttled` times.
* 412, 5xx, no answer (connection failed, timed out): retried after a jittered
  exponential back-off, `max_attempts` tries in all, then failed.
* 404: the conversation no longer exists: the row is dead and its room orphaned
  (`core.rooms.flows.orphan`, with the room's system audit event), in one commit.
* 403 into a personal chat (the user blocked or removed the bot): the row is dead
  and the chat blocked (`core.outbox.service.block`), which kills what waits for it.
* any other 4xx: failed.

`attempts` on a row counts its claims (a release gives one back), so a row whose
sender keeps dying mid-post is also given up on, after `max_attempts_throttled`.
"""

from __future__ import annotations

import functools
import json
import logging
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import Any, TypeVar

from sqlmodel import Session

from bot.metrics import Metrics
from bot.outbox_http import Post, PostResult
from bot.pacing import SLACK, TEAMS_CONVERSATION_LIMITS, TEAMS_TENANT_LIMITS, Limit, Pacer
from core.db import Database
from core.outbox import service as outbox
from core.outbox.flows import delivered
from core.outbox.models import OutboxMessage
from core.rooms import flows as rooms

log = logging.getLogger(__name__)
T = TypeVar("T")

GONE_REASON = "its Teams conversation no longer exists"


@dataclass(frozen=True)
class SenderSettings:
    """Pacing, retries and claiming of the outbox sender."""

    lease: timedelta = timedelta(seconds=60)
    """How long a claim holds a row; renewed every third of it while the row waits."""
    poll_interval: float = 1.0
    """Seconds between claims when nobody calls wake() (other processes' rows, retries coming due)."""
    claim_limit: int = 100
    per_conversation: int = 20
    max_held: int = 2000
    """Rows held at once; no claim beyond it."""
    concurrency: int = 32
    """Posts in flight at once."""
    max_attempts: int = 5
    max_attempts_throttled: int = 12
    backoff: float = 1.0
    max_backoff: float = 60.0
    max_retry_after: float = 3600.0
    conversation_limits: tuple[Limit, ...] = TEAMS_CONVERSATION_LIMITS
    tenant_limits: tuple[Limit, ...] = TEAMS_TENANT_LIMITS
    slack: float = SLACK

    def backoff_delay(self, attempt: int, rng: random.Random) -> float:
        """Exponential back-off with jitter after the attempt-th try (1-based)."""
        ceiling = min(self.max_backoff, self.backoff * 2 ** max(0, attempt - 1))
        return rng.uniform(ceiling / 2, ceiling)


class Verdict(Enum):
    """What a message's outcome means for the rest of its conversation."""

    NEXT = "next"  # the row is settled: go on with the conversation's next one
    HOLD_BACK = "hold back"  # the row will be retried: the rows after it must wait behind it
    BLOCKED = "blocked"  # the conversation takes nothing more


def is_personal(message: OutboxMessage) -> bool:
    """A 1:1 chat with someone (Teams ids them `a:...`; the reference may also say so)."""
    if message.conversation_id.startswith("a:"):
        return True
    try:
        conversation = json.loads(message.reference).get("conversation") or {}
    except (ValueError, AttributeError):
        return False
    return isinstance(conversation, dict) and conversation.get("conversationType") == "personal"


def job(call: Callable[..., T], **kwargs: Any) -> Callable[[Session], T]:
    """A db.run/db.commit job: a keyword-only service call, given the job's session."""
    return lambda session: call(session=session, **kwargs)


def transient(status: int) -> bool:
    """No answer (0), 412, or any 5xx (Teams names 502, 503 and 504): worth trying again later."""
    return status in (0, 412) or 500 <= status < 600


class Outcomes:
    """Posts a claimed message and writes what became of it, as this worker."""

    def __init__(
        self, db: Database, post: Post, *, worker: str, settings: SenderSettings, pacer: Pacer,
        clock: Callable[[], datetime], rng: random.Random, wake_in: Callable[[float], None],
        metrics: Metrics | None = None,
    ) -> None:  # fmt: skip
        self.db = db
        self.post = post
        self.worker = worker
        self.settings = settings
        self.pacer = pacer
        self.clock = clock
        self.rng = rng
        self.wake_in = wake_in
        self.metrics = metrics or Metrics()
        self.stats: Counter[str] = Counter()
        """Outcomes so far: sent, retried, throttled, failed, dead, blocked, lost."""

    async def deliver(self, message: OutboxMessage) -> Verdict:
        """Post one message and record how it went."""
        assert message.id is not None
        if message.attempts > self.settings.max_attempts_throttled:  # taken over again and again
            return await self._fail(message, f"gave up after {message.attempts - 1} attempts")
        try:
            activity: dict[str, Any] = json.loads(message.activity)
            result = await self.post(service_url=message.service_url, conversation_id=message.conversation_id,
                                     activity=activity)  # fmt: skip
        except Exception as exc:  # a bug, or the token endpoint unreachable: retried like no answer
            log.warning("outbox: posting message %d raised %s", message.id, type(exc).__name__)
            result = PostResult(0, error=f"post raised {type(exc).__name__}")
        try:
            return await self._record(message, result)
        except Exception:
            log.exception("outbox: could not record how message %d went", message.id)
            return Verdict.HOLD_BACK

    async def _record(self, message: OutboxMessage, result: PostResult) -> Verdict:
        assert message.id is not None
        message_id, worker, s = message.id, self.worker, self.settings
        error = result.error or f"HTTP {result.status}"
        if result.ok:
            sent = functools.partial(delivered, message_id=message_id, worker=worker, now=self.clock(),
                                     activity_id=result.activity_id, conversation_id=message.conversation_id,
                                     disclosure=message.disclosure)  # fmt: skip
            await self._settle(message, "sent", sent)
            return Verdict.NEXT
        if result.status == 429:
            self.metrics.throttled.inc()
            wait = result.retry_after
            delay = (min(wait, s.max_retry_after) + self.rng.uniform(0, 0.25) if wait is not None
                     else s.backoff_delay(message.attempts, self.rng))  # fmt: skip
            self.pacer.pause(message.conversation_id, delay)
            if message.attempts >= s.max_attempts_throttled:
                return await self._fail(message, f"{error} (throttled {message.attempts} times)")
            return await self._retry(message, delay, error, "throttled")
        if transient(result.status):
            if message.attempts >= s.max_attempts:
                return await self._fail(message, f"{error} (after {message.attempts} attempts)")
            delay = s.backoff_delay(message.attempts, self.rng)
            if result.retry_after is not None:
                delay = max(delay, min(result.retry_after, s.max_retry_after))
            return await self._retry(message, delay, error, "retried")
        if result.status == 404:
            await self._gone(message, error)
            return Verdict.NEXT
        if result.status == 403 and is_personal(message):
            now = self.clock()

            def dead_and_blocked(session: Session) -> bool:
                done = outbox.mark_dead(session=session, message_id=message_id, worker=worker, error=error)
                outbox.block(session=session, conversation_id=message.conversation_id, reason=error, now=now)
                return done

            await self._settle(message, "blocked", dead_and_blocked)
            return Verdict.BLOCKED
        return await self._fail(message, error)

    async def _retry(self, message: OutboxMessage, delay: float, error: str, outcome: str) -> Verdict:
        assert message.id is not None
        not_before = self.clock() + timedelta(seconds=delay)
        retry = job(outbox.retry_later, message_id=message.id, worker=self.worker, not_before=not_before,
                    error=error)  # fmt: skip
        await self._settle(message, outcome, retry)
        self.wake_in(delay)
        return Verdict.HOLD_BACK

    async def _fail(self, message: OutboxMessage, error: str) -> Verdict:
        assert message.id is not None
        failed = job(outbox.mark_failed, message_id=message.id, worker=self.worker, error=error)
        await self._settle(message, "failed", failed)
        return Verdict.NEXT

    async def _gone(self, message: OutboxMessage, error: str) -> None:
        """404: the row is dead and its room orphaned, together."""
        assert message.id is not None
        message_id, worker, room_id = message.id, self.worker, message.room_id

        def dead_and_orphaned(session: Session) -> bool:
            done = outbox.mark_dead(session=session, message_id=message_id, worker=worker, error=error)
            if done and room_id is not None:
                rooms.orphan(session, [room_id], reason=GONE_REASON)
            return done

        try:
            await self._settle(message, "dead", dead_and_orphaned)
        except Exception:
            log.exception(
                "outbox: could not orphan room %s; message %d marked dead alone", room_id, message_id
            )
            dead = job(outbox.mark_dead, message_id=message_id, worker=worker, error=error)
            await self._settle(message, "dead", dead)

    async def _settle(self, message: OutboxMessage, outcome: str, change: Callable[[Session], bool]) -> None:
        """Write the outcome (in the group writer); a row taken over meanwhile is left to its new sender."""
        if await self.db.commit(change):
            self.stats[outcome] += 1
            self.metrics.delivered(outcome)
            log.info("outbox: message %d (%s) %s", message.id, message.kind, outcome)
        else:
            self.stats["lost"] += 1
            self.metrics.delivered("lost")
            log.warning("outbox: message %d was taken over before it was settled (%s)", message.id, outcome)
