"""Records kept by the fake Bot Connector (``tests.fakes.connector``).

``RecordedRequest`` is one request the fake received, ``PostedActivity`` an
activity body the bot delivered, ``FailureRule`` one ``fail_next`` injection;
``error_body`` builds the connector's ``ErrorResponse`` JSON.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ACTIVITY_KINDS",
    "FailureRule",
    "PostedActivity",
    "RecordedRequest",
    "error_body",
]

ACTIVITY_KINDS = ("send", "reply", "update", "create")


def error_body(code: str, message: str) -> dict[str, Any]:
    """The Bot Connector ``ErrorResponse`` shape."""
    return {"error": {"code": code, "message": message}}


@dataclass
class RecordedRequest:
    """One request received by the fake connector (failed ones included)."""

    method: str
    path: str
    """Decoded path, e.g. ``/v3/conversations/19:x@thread.tacv2;messageid=1/activities``."""
    raw_path: str
    """Path exactly as received (still percent-encoded)."""
    headers: dict[str, str]
    json: Any | None
    query: dict[str, str]
    conversation_id: str | None = None
    activity_id: str | None = None
    """The ``{activityId}`` path segment (reply target / updated activity)."""
    kind: str | None = None
    """``send`` | ``reply`` | ``update`` | ``create`` | ``delete`` | ``members`` |
    ``member`` | ``pagedmembers`` | ``activity_members`` | ``team`` |
    ``team_channels`` | ``unknown``."""
    status: int = 0
    """HTTP status the fake answered."""
    failed: bool = False
    """True when the answer came from ``fail_next`` injection."""
    throttled: bool = False
    delay: float = 0.0
    """Seconds the fake waited before answering (a failure rule's `delay`)."""
    """True when the answer was a 429 from enforced rate limits (``FakeConnector.enforce_rate_limits``)."""
    response: Any | None = None
    """JSON body the fake answered with."""
    received_at: float = field(default_factory=time.time)

    @property
    def is_activity(self) -> bool:
        return self.kind in ACTIVITY_KINDS


class PostedActivity(dict[str, Any]):
    """An activity JSON body the bot sent (a plain ``dict``) plus request context."""

    def __init__(self, body: Mapping[str, Any], request: RecordedRequest, assigned_id: str | None) -> None:
        super().__init__(body)
        self.request = request
        self.conversation_id: str | None = request.conversation_id
        self.kind: str | None = request.kind
        self.method: str = request.method
        self.reply_to_id: str | None = request.activity_id if request.kind == "reply" else None
        self.assigned_id: str | None = assigned_id
        """The id the fake returned (``{"id": ...}``) / the updated activity's id."""

    @property
    def is_update(self) -> bool:
        return self.kind == "update"


@dataclass
class FailureRule:
    remaining: int
    status: int
    retry_after: float | int | str | None = None
    path_contains: str | None = None
    method: str | None = None
    code: str | None = None
    delay: float = 0.0
    """Seconds to wait before answering: a slow refusal (the client may be gone by then)."""

    def matches(self, method: str, path: str) -> bool:
        if self.remaining <= 0:
            return False
        if self.method is not None and self.method.upper() != method.upper():
            return False
        return self.path_contains is None or self.path_contains in path
