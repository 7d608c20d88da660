"""Pacing of posts to Teams: sliding windows per conversation and per tenant, and pauses after a 429.

Teams throttles a bot per thread (7 messages per second, 8 per 2 s, 60 per 30 s,
1,800 per hour) and per app per tenant (about 50 requests per second); DESIGN.md,
"Teams limits the bot lives within". A window keeps the times of recent sends and
says how long until one more keeps every limit. Pure bookkeeping on a monotonic
clock; the sender does the waiting. The limits hold per process: replicas share a
tenant's budget, so each should be given its share when there are several.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Limit:
    """At most `count` sends in any `seconds`."""

    count: int
    seconds: float


TEAMS_CONVERSATION_LIMITS = (Limit(7, 1.0), Limit(8, 2.0), Limit(60, 30.0), Limit(1800, 3600.0))
TEAMS_TENANT_LIMITS = (Limit(50, 1.0),)
SLACK = 0.1
"""Seconds added to every window: Teams counts arrivals, and requests do not all take as long to get there."""


class Window:
    """Times of recent sends for one key, checked against several limits at once."""

    def __init__(self, limits: Sequence[Limit], *, slack: float = SLACK) -> None:
        if not limits or any(limit.count < 1 or limit.seconds <= 0 for limit in limits):
            raise ValueError("a window needs limits of at least one send in a positive time")
        self.limits = tuple(limits)
        self.slack = slack
        self._sent: deque[float] = deque(maxlen=max(limit.count for limit in limits))
        self._span = max(limit.seconds for limit in limits) + slack

    def wait(self, now: float) -> float:
        """Seconds until one more send keeps every limit (0: now)."""
        longest = 0.0
        for limit in self.limits:
            if len(self._sent) >= limit.count:
                # The limit-th most recent send must have left the window.
                longest = max(longest, self._sent[-limit.count] + limit.seconds + self.slack - now)
        return longest

    def record(self, now: float) -> None:
        """Count a send made now."""
        self._sent.append(now)

    def idle(self, now: float) -> bool:
        """No send within the longest window: forgetting this window changes nothing."""
        return not self._sent or now - self._sent[-1] > self._span


class Pacer:
    """Windows per conversation and per tenant, and per-conversation pauses (a 429's Retry-After)."""

    def __init__(
        self, *, conversation: Sequence[Limit] = TEAMS_CONVERSATION_LIMITS,
        tenant: Sequence[Limit] = TEAMS_TENANT_LIMITS, slack: float = SLACK,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:  # fmt: skip
        self.conversation_limits = tuple(conversation)
        self.tenant_limits = tuple(tenant)
        self.slack = slack
        self.clock = clock
        self._conversations: dict[str, Window] = {}
        self._tenants: dict[str, Window] = {}
        self._paused: dict[str, float] = {}
        self._sweep_at = 0.0

    def _window(self, table: dict[str, Window], key: str, limits: tuple[Limit, ...]) -> Window:
        window = table.get(key)
        if window is None:
            window = table[key] = Window(limits, slack=self.slack)
        return window

    def wait(self, conversation_id: str, tenant_id: str | None) -> float:
        """Seconds until this conversation may be posted to (0: now)."""
        now = self.clock()
        delay = max(0.0, self._paused.get(conversation_id, now) - now)
        window = self._conversations.get(conversation_id)
        if window is not None:
            delay = max(delay, window.wait(now))
        tenant = self._tenants.get(tenant_id or "")
        if tenant is not None and self.tenant_limits:
            delay = max(delay, tenant.wait(now))
        return delay

    def take(self, conversation_id: str, tenant_id: str | None) -> None:
        """Count a post starting now against the conversation's and the tenant's windows."""
        now = self.clock()
        self._window(self._conversations, conversation_id, self.conversation_limits).record(now)
        if self.tenant_limits:
            self._window(self._tenants, tenant_id or "", self.tenant_limits).record(now)
        if now >= self._sweep_at:
            self._sweep(now)

    def pause(self, conversation_id: str, seconds: float) -> None:
        """Post nothing into this conversation for the next `seconds` (Teams said so)."""
        until = self.clock() + max(0.0, seconds)
        self._paused[conversation_id] = max(until, self._paused.get(conversation_id, 0.0))

    def _sweep(self, now: float) -> None:
        """Forget idle windows and past pauses, so memory follows activity, not history."""
        for table in (self._conversations, self._tenants):
            for key in [key for key, window in table.items() if window.idle(now)]:
                del table[key]
        for key in [key for key, until in self._paused.items() if until <= now]:
            del self._paused[key]
        self._sweep_at = now + 60.0

    def __len__(self) -> int:
        """Conversations currently tracked (for tests and metrics)."""
        return len(self._conversations)
