"""A fake Microsoft Graph (and its AAD token endpoint) on 127.0.0.1.

Runs an aiohttp server on the caller's event loop, so use it from async tests::

    async with FakeGraph() as graph:
        graph.add_group_member("group-1", "user-1")
        config = GraphConfig.from_values(graph.tenant_id, graph.client_id, graph.client_secret,
                                         graph_url=graph.graph_url, login_url=graph.login_url)

Routes:

* ``POST /{tenant}/oauth2/v2.0/token``: client credentials; checks the tenant,
  client id, secret, grant type and scope it was given; issues opaque tokens
  valid for ``expires_in`` seconds (counted in ``token_requests``).
* ``POST /v1.0/users/{id}/checkMemberGroups``: answers from the memberships
  seeded with ``add_group_member`` (nested groups count: membership is
  transitive). Group ids come back spelled as they were seeded.
* ``POST /v1.0/teams/{team}/channels`` and ``GET /v1.0/teams/{team}/channels``.
  With ``async_shared_channels``, a shared channel is accepted the way Graph
  documents it: 202, no body, ``Content-Location: /teams/{team}/operations/{op}``;
  ``GET /v1.0/teams/{team}/operations/{op}`` answers ``inProgress`` for
  ``operation_polls`` polls, then ``operation_outcome`` (``succeeded`` with the
  channel in ``targetResourceId``/``targetResourceLocation``, or ``failed``).
* ``GET|POST /v1.0/teams/{team}/channels/{channel}/members`` (pages of
  ``member_page_size`` with ``@odata.nextLink``), ``PATCH .../members/{id}`` and
  ``DELETE .../members/{id}`` (204; 404 for a membership that is not there);
  a channel's members start as the owner named at creation (``channel_members``);
  members from another tenant (``tenantId``) join shared channels only (``external_users``).
* ``GET /v1.0/users?$filter=...`` (by email), ``POST /v1.0/invitations`` and
  ``GET|POST /v1.0/teams/{team}/members``: see tests/fakes/graph_guests.py.

Every ``/v1.0`` call needs a bearer token this fake issued and has not expired
or been revoked (``revoke_tokens``); otherwise 401. Every request is recorded in
``requests``; ``fail_next`` makes the next matching requests fail.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from aiohttp import web

from tests.fakes.graph_channels import ChannelRoutes
from tests.fakes.graph_channels import graph_error as _error
from tests.fakes.graph_guests import GuestRoutes

__all__ = ["FakeGraph", "GraphRequest"]

SCOPE = "https://graph.microsoft.com/.default"
_CODES = {
    400: "BadRequest",
    401: "InvalidAuthenticationToken",
    403: "Authorization_RequestDenied",
    404: "Request_ResourceNotFound",
    409: "Conflict",
    429: "TooManyRequests",
    500: "InternalServerError",
    502: "BadGateway",
    503: "ServiceUnavailable",
    504: "GatewayTimeout",
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class GraphRequest:
    """One request the fake received (failed and refused ones included)."""

    method: str
    path: str
    headers: dict[str, str]
    json: Any | None = None
    form: dict[str, str] | None = None
    query: str = ""
    """The query string as sent (still percent-encoded)."""
    status: int = 0
    failed: bool = False
    """True when the answer came from ``fail_next``."""

    @property
    def bearer(self) -> str | None:
        auth = self.headers.get("Authorization", "")
        return auth[7:] if auth.startswith("Bearer ") else None


@dataclass
class _Failure:
    remaining: int
    status: int
    retry_after: float | int | str | None
    path_contains: str


@dataclass
class FakeGraph(ChannelRoutes, GuestRoutes):
    """Fake Graph v1.0 + AAD token endpoint (see module docstring)."""

    tenant_id: str = "00000000-0000-4000-8000-00000000fa4e"
    client_id: str = "11111111-1111-4111-8111-111111111111"
    client_secret: str = field(default_factory=lambda: "fake-secret-" + secrets.token_hex(8), repr=False)
    expires_in: int = 3599
    known_users: Iterable[str] | None = None
    """When given, checkMemberGroups for any other user answers 404."""
    async_shared_channels: bool = False
    """Answer shared-channel creation like Graph's long-running form: 202, no body, an operation."""
    operation_polls: int = 1
    """How many polls of an operation answer inProgress before its outcome."""
    operation_outcome: str = "succeeded"
    member_page_size: int = 100
    tenant_domain: str = "fakeforce.onmicrosoft.com"
    """The force's own domain: invited guests' UPNs end #EXT#@ it."""
    host: str = "127.0.0.1"

    def __post_init__(self) -> None:
        self.requests: list[GraphRequest] = []
        self.token_requests = 0
        self.issued_tokens: list[str] = []
        self.channels: dict[str, list[dict[str, Any]]] = {}
        self.operations: dict[str, dict[str, Any]] = {}
        self.channel_members: dict[str, list[dict[str, Any]]] = {}
        self.external_users: dict[str, set[str]] = {}
        """Another tenant's users by lower-case UPN; a tenant not listed accepts any name."""
        self.invitations: list[dict[str, Any]] = []
        self.team_members: dict[str, list[dict[str, Any]]] = {}
        self._members: dict[str, set[str]] = {}
        self.users: dict[str, dict[str, Any]] = {}
        """Directory users by object id (lower case): what GET /users/{id} answers."""
        self._spelling: dict[str, str] = {}
        self._tokens: dict[str, float] = {}
        self._failures: list[_Failure] = []
        self._known = None if self.known_users is None else {u.lower() for u in self.known_users}
        self._runner: web.AppRunner | None = None
        self.port = 0

    # ------------------------------------------------------------------ lifecycle
    @property
    def base_url(self) -> str:
        if not self.port:
            raise RuntimeError("FakeGraph not started")
        return f"http://{self.host}:{self.port}"

    @property
    def login_url(self) -> str:
        """What to configure as the login URL (the tenant is appended by the client)."""
        return self.base_url

    @property
    def graph_url(self) -> str:
        """What to configure as the Graph URL (``.../v1.0``)."""
        return f"{self.base_url}/v1.0"

    async def start(self) -> FakeGraph:
        if self._runner is not None:
            return self
        app = web.Application(middlewares=[self._middleware])
        app.router.add_post("/{tenant}/oauth2/v2.0/token", self._token)
        app.router.add_post("/v1.0/users/{user}/checkMemberGroups", self._check_member_groups)
        app.router.add_get("/v1.0/users/{user}", self._user)
        self.add_channel_routes(app)
        self.add_guest_routes(app)
        app.router.add_route("*", "/{tail:.*}", self._unknown)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, 0).start()
        self.port = int(self._runner.addresses[0][1])
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        self._runner = None

    async def __aenter__(self) -> FakeGraph:
        return await self.start()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    # ------------------------------------------------------------------ seeding and control
    def add_group_member(self, group_id: str, member_id: str) -> None:
        """Make a user (or another group, for nesting) a direct member of a group."""
        self._spelling.setdefault(group_id.lower(), group_id)
        self._members.setdefault(group_id.lower(), set()).add(member_id.lower())

    def fail_next(
        self,
        n: int,
        status: int,
        retry_after: float | int | str | None = None,
        *,
        path_contains: str = "/v1.0/",
    ) -> None:
        """Answer the next ``n`` requests whose path contains ``path_contains`` with ``status``."""
        self._failures.append(_Failure(n, status, retry_after, path_contains))

    def revoke_tokens(self) -> None:
        """Forget every issued token, as if they were revoked: the next Graph call gets 401."""
        self._tokens.clear()

    def graph_requests(self, contains: str = "") -> list[GraphRequest]:
        """Recorded ``/v1.0`` requests, optionally only those whose path contains ``contains``."""
        return [r for r in self.requests if r.path.startswith("/v1.0/") and contains in r.path]

    # ------------------------------------------------------------------ plumbing
    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        raw = await request.read()
        rec = GraphRequest(request.method, request.path, dict(request.headers), query=request.query_string)
        if raw and request.content_type == "application/json":
            rec.json = await request.json()
        elif raw:
            rec.form = {k: str(v) for k, v in (await request.post()).items()}
        self.requests.append(rec)
        response: web.StreamResponse | None = self._injected_failure(request.path)
        if response is not None:
            rec.failed = True
        elif request.path.startswith("/v1.0/") and not self._token_ok(rec.bearer):
            message = (
                "Access token is empty."
                if rec.bearer is None
                else "Access token has expired or is not valid."
            )
            response = _error(401, "InvalidAuthenticationToken", message)
        else:
            response = await handler(request)
        rec.status = response.status
        return response

    def _injected_failure(self, path: str) -> web.Response | None:
        for rule in self._failures:
            if rule.remaining > 0 and rule.path_contains in path:
                rule.remaining -= 1
                response = _error(rule.status, _CODES.get(rule.status, "UnknownError"), "Injected failure.")
                if rule.retry_after is not None:
                    response.headers["Retry-After"] = str(rule.retry_after)
                return response
        return None

    def _token_ok(self, token: str | None) -> bool:
        return token is not None and self._tokens.get(token, 0.0) > time.monotonic()

    def _is_member(self, group: str, member: str) -> bool:
        seen: set[str] = set()
        pending = [group]
        while pending:
            current = pending.pop()
            if current in seen:
                continue
            seen.add(current)
            direct = self._members.get(current, set())
            if member in direct:
                return True
            pending.extend(direct)
        return False

    # ------------------------------------------------------------------ routes
    async def _token(self, request: web.Request) -> web.Response:
        self.token_requests += 1
        form = await request.post()
        if request.match_info["tenant"] != self.tenant_id:
            return _aad_error(400, "invalid_request", "AADSTS90002: Tenant not found.")
        if form.get("grant_type") != "client_credentials" or form.get("scope") != SCOPE:
            return _aad_error(400, "invalid_request", "AADSTS900144: Bad grant_type or scope.")
        if form.get("client_id") != self.client_id:
            return _aad_error(400, "unauthorized_client", "AADSTS700016: Application not found.")
        if form.get("client_secret") != self.client_secret:
            return _aad_error(401, "invalid_client", "AADSTS7000215: Invalid client secret provided.")
        token = "fake-token-" + secrets.token_urlsafe(24)
        self._tokens[token] = time.monotonic() + self.expires_in
        self.issued_tokens.append(token)
        body = {"token_type": "Bearer", "expires_in": self.expires_in, "ext_expires_in": self.expires_in}
        return web.json_response({**body, "access_token": token})

    async def _check_member_groups(self, request: web.Request) -> web.Response:
        user = request.match_info["user"].lower()
        if self._known is not None and user not in self._known:
            return _error(
                404,
                "Request_ResourceNotFound",
                f"Resource '{user}' does not exist or one of its queried reference-property objects "
                "are not present.",
            )
        ids = (await request.json()).get("groupIds")
        if not isinstance(ids, list) or not 1 <= len(ids) <= 20:
            return _error(400, "Request_BadRequest", "groupIds must hold between 1 and 20 ids.")
        found = [self._spelling.get(g.lower(), g) for g in ids if self._is_member(g.lower(), user)]
        return web.json_response(
            {"@odata.context": f"{self.graph_url}/$metadata#Collection(Edm.String)", "value": found}
        )

    def add_user(self, aad_id: str, *, user_type: str, upn: str, mail: str | None = None) -> None:
        """A directory user; `user_type` is Graph's "Member" or "Guest"."""
        self.users[aad_id.lower()] = {"id": aad_id, "userType": user_type, "userPrincipalName": upn,
                                      "mail": mail, "accountEnabled": True}  # fmt: skip

    async def _user(self, request: web.Request) -> web.Response:
        user = self.users.get(request.match_info["user"].lower())
        if user is None:
            return _error(404, "Request_ResourceNotFound", "Resource does not exist.")
        wanted = request.query.get("$select")
        body = {k: v for k, v in user.items() if not wanted or k in wanted.split(",")}
        return web.json_response({"@odata.context": f"{self.graph_url}/$metadata#users/$entity", **body})

    async def _unknown(self, request: web.Request) -> web.Response:
        return _error(400, "BadRequest", f"Resource not found for the segment '{request.path}'.")


def _aad_error(status: int, error: str, description: str) -> web.Response:
    return web.json_response(
        {"error": error, "error_description": description, "error_codes": []}, status=status
    )
