"""Teams-side refusals for the fake Bot Connector (``tests.fakes.connector``).

``ConversationLimits`` answers posts (send and reply) as Teams would when the bot
goes too fast or the conversation cannot take them:

* ``enforce(...)``: Teams' per-thread throttling (7 per 1 s, 8 per 2 s, 60 per
  30 s, 1,800 per hour by default), counted on arrival; a post over a limit is
  answered 429 with ``Retry-After`` (whole seconds until it would be allowed) and
  is not counted.
* ``enforce(..., app_windows=TEAMS_APP_LIMITS)``: also the per app per tenant limit
  (about 50 requests per second), over every conversation at once (the fake serves
  one tenant).
* ``refuse(conversation_id, status)``: every post into that conversation is
  answered ``status`` (404 ``ConversationNotFound`` for a deleted conversation,
  403 ``ConversationBlockedByUser`` for a blocked chat) until ``accept``.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from typing import Any

from tests.fakes.connector_records import RecordedRequest, error_body

__all__ = ["TEAMS_APP_LIMITS", "TEAMS_THREAD_LIMITS", "ConversationLimits"]

TEAMS_THREAD_LIMITS: tuple[tuple[int, float], ...] = ((7, 1.0), (8, 2.0), (60, 30.0), (1800, 3600.0))
TEAMS_APP_LIMITS: tuple[tuple[int, float], ...] = ((50, 1.0),)
REFUSAL_CODES = {403: "ConversationBlockedByUser", 404: "ConversationNotFound"}
POST_KINDS = ("send", "reply")


class ConversationLimits:
    """Throttling and refusals per conversation; called with the fake's lock held."""

    def __init__(self) -> None:
        self.windows: tuple[tuple[int, float], ...] = ()
        self.app_windows: tuple[tuple[int, float], ...] = ()
        self._arrivals: dict[str, deque[float]] = {}
        self._app_arrivals: deque[float] = deque()
        self._refused: dict[str, tuple[int, str]] = {}

    def enforce(self, windows: Sequence[tuple[int, float]] = TEAMS_THREAD_LIMITS,
                app_windows: Sequence[tuple[int, float]] = ()) -> None:  # fmt: skip
        """Throttle posts per conversation (and, with app_windows, over all of them): at most ``count``
        in any ``seconds`` for each window."""
        self.windows, self.app_windows = tuple(windows), tuple(app_windows)
        self._arrivals.clear()
        self._app_arrivals = deque(maxlen=max((n for n, _ in self.app_windows), default=1))

    def refuse(self, conversation_id: str, status: int = 404, code: str | None = None) -> None:
        """Answer every post into this conversation with ``status``."""
        self._refused[conversation_id] = (status, code or REFUSAL_CODES.get(status, "ServiceError"))

    def accept(self, conversation_id: str) -> None:
        """Stop refusing posts into this conversation."""
        self._refused.pop(conversation_id, None)

    def answer(self, rec: RecordedRequest) -> tuple[int, Any, dict[str, str]] | None:
        """The refusal for this request, or None to let it through (and count it)."""
        if rec.kind not in POST_KINDS or rec.conversation_id is None:
            return None
        conversation = rec.conversation_id
        refused = self._refused.get(conversation)
        if refused is not None:
            status, code = refused
            return status, error_body(code, f"Refused posting into {conversation}"), {}
        if not self.windows and not self.app_windows:
            return None
        arrivals = self._arrivals.setdefault(conversation, deque(maxlen=max((n for n, _ in self.windows),
                                                                            default=1)))  # fmt: skip
        wait = max(_wait(arrivals, self.windows, rec.received_at), _wait(self._app_arrivals, self.app_windows,
                                                                         rec.received_at))  # fmt: skip
        if wait > 0:
            rec.throttled = True
            headers = {"Retry-After": str(max(1, math.ceil(wait)))}
            return 429, error_body("Throttled", "Too many requests for this conversation"), headers
        arrivals.append(rec.received_at)
        self._app_arrivals.append(rec.received_at)
        return None


def _wait(arrivals: deque[float], windows: Sequence[tuple[int, float]], now: float) -> float:
    """Seconds until one more arrival keeps every window (0: now)."""
    wait = 0.0
    for count, seconds in windows:
        if len(arrivals) >= count:
            wait = max(wait, arrivals[-count] + seconds - now)
    return wait
