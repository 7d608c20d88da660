"""Route handling for the fake Bot Connector (``tests.fakes.connector``).

``classify`` names the route a request hit; ``ConnectorRoutes`` (a mixin of
``FakeConnector``) answers it from the seeded members/teams, applying pending
``fail_next`` rules first.  Every ``_handle`` result is ``(status, json, headers)``.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

from tests.fakes.connector_limits import ConversationLimits
from tests.fakes.connector_records import ACTIVITY_KINDS, FailureRule, RecordedRequest, error_body

__all__ = ["ERROR_CODES", "ConnectorRoutes", "base_conversation_id", "classify"]

ERROR_CODES = {
    400: "BadArgument",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    412: "PreconditionFailed",
    429: "Throttled",
    500: "InternalServerError",
    502: "BadGateway",
    503: "ServiceUnavailable",
    504: "GatewayTimeout",
}


def base_conversation_id(conversation_id: str) -> str:
    """``19:x@thread.tacv2;messageid=123`` -> ``19:x@thread.tacv2``."""
    return conversation_id.split(";", 1)[0]


def classify(rec: RecordedRequest, seg: Sequence[str]) -> None:
    """Set ``rec.kind`` (and conversation/activity ids) from the decoded path segments."""
    m = rec.method
    n = len(seg)
    kind = "unknown"
    if n >= 2 and seg[0] == "v3" and seg[1] == "conversations":
        if n == 2 and m == "POST":
            kind = "create"
        elif n >= 3:
            rec.conversation_id = seg[2]
            if n == 4 and seg[3] == "activities" and m == "POST":
                kind = "send"
            elif n == 5 and seg[3] == "activities":
                rec.activity_id = seg[4]
                kind = {"POST": "reply", "PUT": "update", "DELETE": "delete"}.get(m, "unknown")
            elif n == 6 and seg[3] == "activities" and seg[5] == "members" and m == "GET":
                rec.activity_id = seg[4]
                kind = "activity_members"
            elif n == 4 and seg[3] == "members" and m == "GET":
                kind = "members"
            elif n == 5 and seg[3] == "members" and m == "GET":
                kind = "member"
            elif n == 4 and seg[3] == "pagedmembers" and m == "GET":
                kind = "pagedmembers"
    elif n >= 3 and seg[0] == "v3" and seg[1] == "teams" and m == "GET":
        if n == 3:
            kind = "team"
        elif n == 4 and seg[3] == "conversations":
            kind = "team_channels"
    rec.kind = kind


class ConnectorRoutes:
    """Request handlers of ``FakeConnector``; called with its lock held."""

    conversations: dict[str, dict[str, Any]]
    _members: dict[str, list[dict[str, Any]]]
    _teams: dict[str, dict[str, Any]]
    _failures: list[FailureRule]
    _ids: Iterator[int]
    limits: ConversationLimits

    @property
    def url(self) -> str:
        raise NotImplementedError

    def members_of(self, conversation_id: str) -> list[dict[str, Any]]:
        raise NotImplementedError

    def _new_id(self) -> str:
        return f"{int(time.time() * 1000)}{next(self._ids):04d}"

    def _take_failure(self, rec: RecordedRequest) -> FailureRule | None:
        for rule in self._failures:
            if rule.matches(rec.method, rec.path):
                rule.remaining -= 1
                if rule.remaining <= 0:
                    self._failures.remove(rule)
                return rule
        return None

    def _handle(
        self, rec: RecordedRequest, seg: Sequence[str], body_text: str
    ) -> tuple[int, Any, dict[str, str]]:
        rule = self._take_failure(rec)
        if rule is not None:
            rec.failed = True
            rec.delay = rule.delay
            headers: dict[str, str] = {}
            if rule.retry_after is not None:
                headers["Retry-After"] = str(rule.retry_after)
            code = rule.code or ERROR_CODES.get(rule.status, "ServiceError")
            message = "Too many requests" if rule.status == 429 else f"Injected failure {rule.status}"
            return rule.status, error_body(code, message), headers
        refused = self.limits.answer(rec)
        if refused is not None:
            return refused

        if body_text.strip():
            try:
                rec.json = json.loads(body_text)
            except ValueError as exc:
                return 400, error_body("BadSyntax", f"Invalid JSON body: {exc}"), {}
        if rec.method in ("POST", "PUT") and rec.kind in ACTIVITY_KINDS and not isinstance(rec.json, dict):
            return 400, error_body("BadArgument", "Request body must be a JSON object"), {}

        kind = rec.kind
        conv = rec.conversation_id or ""
        if kind == "create":
            return self._create_conversation(rec)
        if kind in ("send", "reply"):
            return 201, {"id": self._new_id()}, {}
        if kind == "update":
            return 200, {"id": rec.activity_id}, {}
        if kind == "delete":
            return 200, None, {}
        if kind in ("members", "activity_members"):
            return 200, list(self.members_of(conv)), {}
        if kind == "member":
            wanted = seg[4]
            for member in self.members_of(conv):
                if wanted in (member.get("id"), member.get("aadObjectId")):
                    return 200, member, {}
            return (
                404,
                error_body(
                    "MemberNotFoundInConversation", f"The member {wanted} is not in conversation {conv}"
                ),
                {},
            )
        if kind == "pagedmembers":
            return self._paged_members(rec, conv)
        if kind in ("team", "team_channels"):
            team = self._teams.get(seg[2])
            if team is None:
                return 404, error_body("NotFound", f"Team {seg[2]} not found"), {}
            if kind == "team":
                return (
                    200,
                    {
                        "id": team["id"],
                        "name": team["name"],
                        "aadGroupId": team["aadGroupId"],
                        "channelCount": len(team["channels"]),
                        "memberCount": len(self._members.get(team["id"], [])),
                        "type": "standard",
                    },
                    {},
                )
            return 200, {"conversations": [dict(c) for c in team["channels"]]}, {}
        return 404, error_body("NotFound", f"No fake route for {rec.method} {rec.path}"), {}

    def _create_conversation(self, rec: RecordedRequest) -> tuple[int, Any, dict[str, str]]:
        body = rec.json if isinstance(rec.json, dict) else {}
        activity_id = self._new_id()
        channel_id = ((body.get("channelData") or {}).get("channel") or {}).get("id")
        if channel_id and body.get("activity"):
            conversation_id = f"{channel_id};messageid={activity_id}"
        elif channel_id:
            conversation_id = channel_id
        elif body.get("isGroup"):
            conversation_id = f"19:{uuid.uuid4().hex}@thread.v2"
        else:
            conversation_id = f"a:1{uuid.uuid4().hex}"
        rec.conversation_id = conversation_id
        self.conversations[conversation_id] = body
        return 201, {"id": conversation_id, "activityId": activity_id, "serviceUrl": self.url}, {}

    def _paged_members(self, rec: RecordedRequest, conv: str) -> tuple[int, Any, dict[str, str]]:
        members = self.members_of(conv)
        try:
            size = int(rec.query.get("pageSize") or 200)
            start = int(rec.query.get("continuationToken") or 0)
        except ValueError:
            return 400, error_body("BadArgument", "Invalid pageSize or continuationToken"), {}
        size = max(1, min(size, 500))
        page = members[start : start + size]
        nxt = start + size
        token = str(nxt) if nxt < len(members) else None
        return 200, {"members": list(page), "continuationToken": token}, {}
