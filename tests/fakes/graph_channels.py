"""The fake Graph's Teams channel routes: channels, shared-channel operations, channel members.

A mixin for ``FakeGraph`` (tests/fakes/graph.py), which owns the state these read:
``channels``, ``operations``, ``channel_members``, ``external_users`` and the knobs
``async_shared_channels``, ``operation_polls``, ``operation_outcome``, ``member_page_size``.

A channel member from another tenant (a body with ``tenantId``, B2B direct connect) is accepted in a
shared channel only (400 elsewhere), bound by user principal name; when ``external_users`` lists that
tenant, a name it does not list is 404. Its ``userId`` is a stable made-up object id in that tenant.
"""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, unquote

from aiohttp import web


class ChannelRoutes:
    """Route handlers for ``/v1.0/teams/{team}/channels...`` and ``/operations``."""

    tenant_id: str
    async_shared_channels: bool
    operation_polls: int
    operation_outcome: str
    member_page_size: int
    channels: dict[str, list[dict[str, Any]]]
    operations: dict[str, dict[str, Any]]
    channel_members: dict[str, list[dict[str, Any]]]
    external_users: dict[str, set[str]]

    @property
    def base_url(self) -> str:
        raise NotImplementedError

    @property
    def graph_url(self) -> str:
        raise NotImplementedError

    def add_channel_routes(self, app: web.Application) -> None:
        app.router.add_post("/v1.0/teams/{team}/channels", self._create_channel)
        app.router.add_get("/v1.0/teams/{team}/channels", self._list_channels)
        app.router.add_get("/v1.0/teams/{team}/operations/{operation}", self._operation)
        members = "/v1.0/teams/{team}/channels/{channel}/members"
        app.router.add_get(members, self._list_members)
        app.router.add_post(members, self._add_member)
        app.router.add_patch(members + "/{member}", self._update_member)
        app.router.add_delete(members + "/{member}", self._delete_member)

    async def _create_channel(self, request: web.Request) -> web.Response:
        team = request.match_info["team"]
        body = await request.json()
        name = body.get("displayName") or ""
        kind = body.get("membershipType", "standard")
        owners = [m for m in body.get("members", []) if "owner" in m.get("roles", [])]
        if not name or len(name) > 50 or kind not in ("standard", "private", "shared"):
            return graph_error(400, "BadRequest", "Invalid displayName or membershipType.")
        if kind != "standard" and len(owners) != 1:
            return graph_error(400, "BadRequest", "A private or shared channel created by an app needs one owner.")
        existing = self.channels.setdefault(team, [])
        if any(c["displayName"].lower() == name.lower() for c in existing):
            return graph_error(409, "NameAlreadyExists", "Channel name already existed, please use other name.")
        channel_id = f"19:{uuid.uuid4().hex}@thread.tacv2"
        channel = {
            "id": channel_id,
            "createdDateTime": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "displayName": name,
            "description": body.get("description"),
            "membershipType": kind,
            "email": "",
            "webUrl": f"https://teams.microsoft.com/l/channel/{quote(channel_id, safe='')}/{quote(name)}"
            f"?groupId={team}&tenantId={self.tenant_id}",
        }
        existing.append(channel)
        self.channel_members[channel_id] = [self._member(m) for m in body.get("members", [])]
        if kind == "shared" and self.async_shared_channels:
            operation = str(uuid.uuid4())
            self.operations[operation] = {"team": team, "channel": channel_id, "polls": 0}
            response = web.Response(status=202)
            response.headers["Content-Location"] = f"/teams/{team}/operations/{operation}"
            return response
        context = f"{self.graph_url}/$metadata#teams('{team}')/channels/$entity"
        return web.json_response({"@odata.context": context, **channel}, status=201)

    # ------------------------------------------------------------------ channel members
    @staticmethod
    def _member(body: dict[str, Any]) -> dict[str, Any]:
        user_id = bound_user(body)
        member = {
            "@odata.type": "#microsoft.graph.aadUserConversationMember",
            "id": "MCMj" + secrets.token_hex(12) + "==",
            "roles": list(body.get("roles") or []),
            "userId": user_id,
            "displayName": None,
        }
        tenant = body.get("tenantId")
        if tenant:  # bound by name in another tenant: Graph answers with their object id there
            member.update(userId=str(uuid.uuid5(uuid.NAMESPACE_URL, f"{tenant}/{user_id.lower()}")),
                          email=user_id, tenantId=tenant)  # fmt: skip
        return member

    def _channel_of(self, request: web.Request) -> list[dict[str, Any]] | None:
        team, channel = request.match_info["team"], request.match_info["channel"]
        if not any(c["id"] == channel for c in self.channels.get(team, [])):
            return None
        return self.channel_members.setdefault(channel, [])

    async def _list_members(self, request: web.Request) -> web.Response:
        members = self._channel_of(request)
        if members is None:
            return graph_error(404, "NotFound", "Channel not found.")
        start = int(request.query.get("$skiptoken", "0"))
        end = start + self.member_page_size
        body: dict[str, Any] = {"value": members[start:end]}
        if end < len(members):
            body["@odata.nextLink"] = f"{self.base_url}{request.path}?$skiptoken={end}"
        return web.json_response(body)

    async def _add_member(self, request: web.Request) -> web.Response:
        members = self._channel_of(request)
        if members is None:
            return graph_error(404, "NotFound", "Channel not found.")
        body = await request.json()
        tenant = str(body.get("tenantId") or "")
        if tenant:
            [channel] = [c for c in self.channels[request.match_info["team"]]
                         if c["id"] == request.match_info["channel"]]  # fmt: skip
            if channel["membershipType"] != "shared":
                return graph_error(400, "BadRequest", "Users from another tenant can only join shared channels.")
            known = self.external_users.get(tenant)
            if known is not None and bound_user(body).lower() not in known:
                return graph_error(404, "NotFound", "The user was not found in the given tenant.")
        member = self._member(body)
        if any(m["userId"] == member["userId"] for m in members):
            return graph_error(409, "Conflict", "The user is already a member of the channel.")
        members.append(member)
        return web.json_response(member, status=201)

    async def _update_member(self, request: web.Request) -> web.Response:
        members = self._channel_of(request)
        found = [m for m in members or [] if m["id"] == request.match_info["member"]]
        if not found:
            return graph_error(404, "NotFound", "Member not found.")
        found[0]["roles"] = list((await request.json()).get("roles") or [])
        return web.json_response(found[0])

    async def _delete_member(self, request: web.Request) -> web.Response:
        members = self._channel_of(request)
        found = [m for m in members or [] if m["id"] == request.match_info["member"]]
        if members is None or not found:
            return graph_error(404, "NotFound", "Member not found.")
        members.remove(found[0])
        return web.Response(status=204)

    async def _operation(self, request: web.Request) -> web.Response:
        found = self.operations.get(request.match_info["operation"])
        if found is None or found["team"] != request.match_info["team"]:
            return graph_error(404, "NotFound", "Operation not found.")
        found["polls"] += 1
        status = "inProgress" if found["polls"] <= self.operation_polls else self.operation_outcome
        body: dict[str, Any] = {
            "id": request.match_info["operation"],
            "operationType": "unknownFutureValue",
            "status": status,
            "attemptsCount": found["polls"],
            "targetResourceId": None,
            "targetResourceLocation": None,
            "error": None,
        }
        if status == "succeeded":
            body["targetResourceId"] = found["channel"]
            body["targetResourceLocation"] = f"/teams('{found['team']}')/channels('{found['channel']}')"
        elif status == "failed":
            body["error"] = {"code": "InternalServerError", "message": "Failed to create the shared channel."}
        return web.json_response(body)

    async def _list_channels(self, request: web.Request) -> web.Response:
        return web.json_response({"value": self.channels.get(request.match_info["team"], [])})


def bound_user(body: dict[str, Any]) -> str:
    """The key in a member's ``user@odata.bind`` (an object id or a user principal name), unescaped."""
    bound = str(body.get("user@odata.bind") or "")
    if "users('" not in bound or not bound.endswith("')"):
        return ""
    return unquote(bound.split("users('", 1)[1][:-2]).replace("''", "'")


def graph_error(status: int, code: str, message: str) -> web.Response:
    inner = {"date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"), "request-id": str(uuid.uuid4())}
    return web.json_response(
        {"error": {"code": code, "message": message, "innerError": inner}}, status=status
    )
