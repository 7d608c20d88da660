"""The fake Graph's guest routes: users found by email, B2B invitations, team members.

A mixin for ``FakeGraph`` (tests/fakes/graph.py), which owns the state these read and write:
``users`` (directory users by lower-case object id, seeded with ``add_user``), ``invitations`` and
``team_members``; and the knob ``tenant_domain``.

* ``GET /v1.0/users?$filter=mail eq '{email}' or otherMails/any(x:x eq '{email}')``: users whose
  ``mail`` or ``otherMails`` hold the address (case-insensitive; quotes doubled inside the literal).
  A filter with a lambda must come with ``ConsistencyLevel: eventual`` and ``$count=true`` (400
  ``Request_UnsupportedQuery`` otherwise), as the client sends them for an advanced query. Other filters
  are 400. ``$select`` and ``@odata.count`` are honoured.
* ``POST /v1.0/invitations``: creates a guest user (``userType`` Guest, UPN
  ``{local}_{domain}#EXT#@{tenant_domain}``, ``mail`` and ``otherMails`` the address) and records the
  invitation; an address that already has a guest account gets that account back, as Graph does.
* ``POST /v1.0/teams/{team}/members``: records the member; 404 for a user not in ``users``, 409 for one
  already in the team. ``GET`` lists them.
"""

from __future__ import annotations

import re
import secrets
import uuid
from typing import Any

from aiohttp import web

from tests.fakes.graph_channels import bound_user, graph_error

_MEMBER_TYPE = "#microsoft.graph.aadUserConversationMember"
_LITERAL = r"'((?:[^']|'')*)'"
_BY_EMAIL = re.compile(rf"mail eq {_LITERAL} or otherMails/any\((\w+):\2 eq {_LITERAL}\)")


class GuestRoutes:
    """Route handlers for ``/v1.0/users`` (the list), ``/v1.0/invitations`` and ``/v1.0/teams/{team}/members``."""

    tenant_id: str
    tenant_domain: str
    users: dict[str, dict[str, Any]]
    invitations: list[dict[str, Any]]
    team_members: dict[str, list[dict[str, Any]]]

    @property
    def graph_url(self) -> str:
        raise NotImplementedError

    def add_guest_routes(self, app: web.Application) -> None:
        app.router.add_get("/v1.0/users", self._list_users)
        app.router.add_post("/v1.0/invitations", self._invite)
        app.router.add_get("/v1.0/teams/{team}/members", self._list_team_members)
        app.router.add_post("/v1.0/teams/{team}/members", self._add_team_member)

    async def _list_users(self, request: web.Request) -> web.Response:
        condition = request.query.get("$filter")
        found = list(self.users.values())
        if condition is not None:
            match = _BY_EMAIL.fullmatch(condition)
            if match is None:
                return graph_error(400, "Request_UnsupportedQuery", "Unsupported or invalid query filter clause.")
            advanced = request.headers.get("ConsistencyLevel") == "eventual" and request.query.get("$count") == "true"
            if not advanced:
                return graph_error(400, "Request_UnsupportedQuery",
                                   "Unsupported query: it needs ConsistencyLevel: eventual and $count=true.")  # fmt: skip
            mail, other = (_unquote(match[1]).lower(), _unquote(match[3]).lower())
            found = [u for u in found if str(u.get("mail") or "").lower() == mail
                     or other in [str(m).lower() for m in u.get("otherMails") or []]]  # fmt: skip
        wanted = request.query.get("$select")
        value = [{k: v for k, v in u.items() if not wanted or k in wanted.split(",")} for u in found]
        body: dict[str, Any] = {"@odata.context": f"{self.graph_url}/$metadata#users", "value": value}
        if request.query.get("$count") == "true":
            body["@odata.count"] = len(value)
        return web.json_response(body)

    async def _invite(self, request: web.Request) -> web.Response:
        body = await request.json()
        email = str(body.get("invitedUserEmailAddress") or "")
        if email.count("@") != 1 or not body.get("inviteRedirectUrl"):
            return graph_error(400, "BadRequest", "invitedUserEmailAddress and inviteRedirectUrl are required.")
        user = next((u for u in self.users.values()
                     if u.get("userType") == "Guest" and str(u.get("mail") or "").lower() == email.lower()), None)  # fmt: skip
        if user is None:
            local, domain = email.split("@")
            user = {"id": str(uuid.uuid4()), "userType": "Guest",
                    "userPrincipalName": f"{local}_{domain}#EXT#@{self.tenant_domain}", "mail": email,
                    "otherMails": [email], "accountEnabled": True}  # fmt: skip
            self.users[user["id"]] = user
        invitation = {
            "id": str(uuid.uuid4()),
            "inviteRedeemUrl": "https://login.microsoftonline.com/redeem?rd=" + secrets.token_urlsafe(16),
            "invitedUserDisplayName": body.get("invitedUserDisplayName"),
            "invitedUserEmailAddress": email,
            "inviteRedirectUrl": body["inviteRedirectUrl"],
            "sendInvitationMessage": bool(body.get("sendInvitationMessage")),
            "invitedUserType": body.get("invitedUserType") or "Guest",
            "status": "PendingAcceptance",
            "invitedUser": {"id": user["id"]},
        }
        self.invitations.append(invitation)
        context = f"{self.graph_url}/$metadata#invitations/$entity"
        return web.json_response({"@odata.context": context, **invitation}, status=201)

    async def _list_team_members(self, request: web.Request) -> web.Response:
        return web.json_response({"value": self.team_members.get(request.match_info["team"], [])})

    async def _add_team_member(self, request: web.Request) -> web.Response:
        body = await request.json()
        if body.get("@odata.type") != _MEMBER_TYPE:
            return graph_error(400, "BadRequest", "Expected an aadUserConversationMember.")
        user = self.users.get(bound_user(body).lower())
        if user is None:
            return graph_error(404, "NotFound", "User not found.")
        members = self.team_members.setdefault(request.match_info["team"], [])
        if any(m["userId"] == user["id"] for m in members):
            return graph_error(409, "Conflict", "The user is already a member of the team.")
        member = {
            "@odata.type": _MEMBER_TYPE,
            "id": "MCMj" + secrets.token_hex(12) + "==",
            "roles": list(body.get("roles") or []),
            "userId": user["id"],
            "displayName": None,
            "email": user.get("mail"),
            "tenantId": self.tenant_id,
        }
        members.append(member)
        return web.json_response(member, status=201)


def _unquote(literal: str) -> str:
    return literal.replace("''", "'")
