"""A small app-only Microsoft Graph client: group membership checks and channel creation."""

from __future__ import annotations

import asyncio
import json
import logging
import random
import re
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Any
from urllib.parse import quote

import aiohttp

__all__ = ["GraphClient", "GraphConfig", "GraphError"]

log = logging.getLogger(__name__)

GRAPH_SCOPE = "https://graph.microsoft.com/.default"
DEFAULT_GRAPH_URL = "https://graph.microsoft.com/v1.0"
DEFAULT_LOGIN_URL = "https://login.microsoftonline.com"
# Graph resolves odata.bind references against its own public URL, whatever host we call.
_BIND_BASE = "https://graph.microsoft.com/v1.0"
_CHECK_MEMBER_GROUPS_MAX = 20  # Graph rejects a checkMemberGroups call with more ids
# Only statuses where Graph did not act on the request: retrying a POST after a 502/504 could
# create the channel twice.
_RETRY_STATUSES = frozenset({429, 503})
_MEMBERSHIP_TYPES = frozenset({"private", "shared"})
_CONTENT_CHANNEL = re.compile(r"channels\('([^']+)'\)")
OPERATION_POLLS = (0.5, 1.0, 1.5, 2.0, 2.5, 2.5)
"""Waits between polls of a long-running Graph operation: 10 s in all, so that the turn still
answers inside the 15 s the Bot Connector waits for it."""


@dataclass(frozen=True)
class GraphConfig:
    """Where and as whom to call Graph; Graph features stay off unless `configured`."""

    tenant_id: str
    client_id: str
    client_secret: str = field(repr=False)
    graph_url: str = DEFAULT_GRAPH_URL
    login_url: str = DEFAULT_LOGIN_URL

    def __repr__(self) -> str:
        secret = "***" if self.client_secret else ""
        return (
            f"GraphConfig(tenant_id={self.tenant_id!r}, client_id={self.client_id!r}, "
            f"client_secret={secret!r}, graph_url={self.graph_url!r}, login_url={self.login_url!r})"
        )

    @property
    def configured(self) -> bool:
        """All three credentials are set."""
        return bool(self.tenant_id and self.client_id and self.client_secret)

    @classmethod
    def from_values(
        cls,
        tenant_id: str | None,
        client_id: str | None,
        client_secret: str | None,
        graph_url: str | None = None,
        login_url: str | None = None,
    ) -> GraphConfig:
        """Build from raw settings; blank URLs mean the public cloud's."""
        return cls(
            tenant_id=(tenant_id or "").strip(),
            client_id=(client_id or "").strip(),
            client_secret=client_secret or "",
            graph_url=((graph_url or "").strip() or DEFAULT_GRAPH_URL).rstrip("/"),
            login_url=((login_url or "").strip() or DEFAULT_LOGIN_URL).rstrip("/"),
        )


class GraphError(Exception):
    """Graph (or the token endpoint) refused a request; status 0 means it was never reached."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"Graph {status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


@dataclass(frozen=True)
class _Response:
    status: int
    headers: Mapping[str, str]  # aiohttp's case-insensitive view
    body: Any


class GraphClient:
    """App-only Graph calls over one shared session; create and close it inside one event loop."""

    def __init__(
        self,
        config: GraphConfig,
        *,
        max_retries: int = 3,
        max_retry_sleep: float = 30.0,
        timeout: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        operation_polls: Sequence[float] = OPERATION_POLLS,
    ) -> None:
        if not config.configured:
            raise ValueError("GraphConfig needs tenant_id, client_id and client_secret")
        self.config = config
        self.max_retries = max_retries
        self.max_retry_sleep = max_retry_sleep
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._clock = clock
        self.operation_polls = tuple(operation_polls)
        self._session: aiohttp.ClientSession | None = None
        self._token: str | None = None  # never logged, never in repr
        self._token_refresh_at = 0.0
        self._token_lock = asyncio.Lock()

    async def __aenter__(self) -> GraphClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the shared session (safe to call twice)."""
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    async def member_groups(self, user_id: str, group_ids: Iterable[str]) -> set[str]:
        """The given groups the user is a transitive member of, lower-cased."""
        wanted = sorted({g.strip().lower() for g in group_ids if g.strip()})
        found: set[str] = set()
        for start in range(0, len(wanted), _CHECK_MEMBER_GROUPS_MAX):
            chunk = wanted[start : start + _CHECK_MEMBER_GROUPS_MAX]
            resp = await self._call(
                "POST", f"/users/{_segment(user_id)}/checkMemberGroups", {"groupIds": chunk}
            )
            found.update(str(g).lower() for g in (resp.body or {}).get("value", []))
        return found

    async def user(self, user_id: str) -> dict[str, Any]:
        """A user's userType, UPN, mail and home tenant facts (GET /users/{id}; needs User.Read.All)."""
        fields = "id,userType,userPrincipalName,mail,accountEnabled"
        resp = await self._call("GET", f"/users/{_segment(user_id)}?$select={fields}")
        return resp.body if isinstance(resp.body, dict) else {}

    async def create_channel(
        self, *, team_id: str, name: str, description: str, membership_type: str, owner_aad_id: str
    ) -> dict[str, Any]:
        """Create a private or shared channel owned by one user; returns Graph's channel JSON."""
        if membership_type not in _MEMBERSHIP_TYPES:
            raise ValueError(f"membership_type must be 'private' or 'shared', not {membership_type!r}")
        if not name.strip():
            raise ValueError("a channel needs a name")
        # A private/shared channel created app-only must name its owner, or Graph refuses it.
        owner = _owner(owner_aad_id)
        payload = {"displayName": name, "description": description, "membershipType": membership_type}
        resp = await self._call(
            "POST", f"/teams/{_segment(team_id)}/channels", {**payload, "members": [owner]}
        )
        if isinstance(resp.body, dict) and resp.body:
            return resp.body
        # Shared channels are created as a long-running operation: 202, no body, and the operation
        # in Content-Location (Location in some answers). Follow it until it names the channel.
        where = resp.headers.get("Content-Location") or resp.headers.get("Location") or ""
        match = _CONTENT_CHANNEL.search(where)
        channel_id = match.group(1) if match else await self._channel_of_operation(where)
        return {**payload, "id": channel_id, "operation": where}

    async def _channel_of_operation(self, where: str) -> str:
        """Poll a teamsAsyncOperation until it succeeds (its channel id) or fails (GraphError)."""
        if not where:
            raise GraphError(202, "operation_unknown", "Graph accepted the channel but named no operation")
        for delay in self.operation_polls:
            await asyncio.sleep(delay)
            operation = (await self._call("GET", where)).body
            operation = operation if isinstance(operation, dict) else {}
            status = str(operation.get("status") or "")
            if status == "succeeded":
                match = _CONTENT_CHANNEL.search(str(operation.get("targetResourceLocation") or ""))
                found = match.group(1) if match else operation.get("targetResourceId")
                if found:
                    return str(found)
                raise GraphError(202, "operation_unknown", "the operation succeeded without naming a channel")
            if status == "failed":
                error = operation.get("error")
                detail = error.get("message") if isinstance(error, dict) else None
                message = str(detail or "the operation failed")
                raise GraphError(202, "operation_failed", message)
        raise GraphError(202, "operation_pending", "Teams is still creating the channel")

    async def make_channel_owner(self, *, team_id: str, channel_id: str, user_aad_id: str) -> str:
        """Make a user an owner of a private or shared channel: "added", "promoted" or "already"."""
        user_aad_id = str(uuid.UUID(user_aad_id))  # an object id is a GUID
        owner = _owner(user_aad_id)
        members_path = f"/teams/{_segment(team_id)}/channels/{_segment(channel_id)}/members"
        role = {key: owner[key] for key in ("@odata.type", "roles")}
        page: str | None = members_path
        while page:
            body = (await self._call("GET", page)).body
            body = body if isinstance(body, dict) else {}
            for member in body.get("value") or []:
                if str(member.get("userId") or "").lower() != user_aad_id:
                    continue
                if "owner" in (member.get("roles") or []):
                    return "already"
                await self._call("PATCH", f"{members_path}/{_segment(str(member['id']))}", role)
                return "promoted"
            following = str(body.get("@odata.nextLink") or "")
            # Only follow a next page on the Graph we were configured with: it carries our token.
            page = following if following.startswith(self.config.graph_url + "/") else None
        await self._call("POST", members_path, owner)
        return "added"

    # ------------------------------------------------------------------ plumbing
    async def _call(
        self, method: str, path: str, payload: Any = None, *, headers: Mapping[str, str] | None = None
    ) -> _Response:
        refreshed = False
        while True:
            token = await self._access_token()
            # Graph hands back operation locations relative to the version root, or absolute.
            url = path if path.startswith(("https://", "http://")) else self.config.graph_url + path
            resp = await self._send(method, url, json_body=payload, token=token, extra_headers=headers)
            if resp.status == 401 and not refreshed:
                # The token may have been revoked or rotated early; one fresh token, one more try.
                refreshed = True
                if self._token == token:
                    self._token = None
                continue
            if resp.status >= 400:
                raise _graph_error(resp)
            return resp

    async def _access_token(self) -> str:
        if self._token is not None and self._clock() < self._token_refresh_at:
            return self._token
        async with self._token_lock:
            # Another caller may have refreshed while this one waited for the lock.
            if self._token is None or self._clock() >= self._token_refresh_at:
                self._token, self._token_refresh_at = await self._fetch_token()
            return self._token

    async def _fetch_token(self) -> tuple[str, float]:
        cfg = self.config
        form = {
            "client_id": cfg.client_id,
            "client_secret": cfg.client_secret,
            "scope": GRAPH_SCOPE,
            "grant_type": "client_credentials",
        }
        resp = await self._send(
            "POST", f"{cfg.login_url}/{_segment(cfg.tenant_id)}/oauth2/v2.0/token", form=form
        )
        body = resp.body if isinstance(resp.body, dict) else {}
        if resp.status >= 400 or not body.get("access_token"):
            code = str(body.get("error") or "token_error")
            # AAD's description starts with an AADSTS code and carries no credentials.
            message = str(body.get("error_description") or "no access token").splitlines()[0]
            raise GraphError(resp.status, code, message)
        lifetime = max(float(body.get("expires_in", 3600)), 0.0)
        # Refresh a little early so a token never expires between check and use.
        margin = min(300.0, lifetime / 10)
        log.debug("graph token obtained, valid for %.0fs", lifetime)
        return str(body["access_token"]), self._clock() + lifetime - margin

    async def _send(
        self,
        method: str,
        url: str,
        *,
        json_body: Any = None,
        form: Any = None,
        token: str | None = None,
        extra_headers: Mapping[str, str] | None = None,
    ) -> _Response:
        headers = {**(extra_headers or {}), "Accept": "application/json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        session = self._get_session()
        attempt = 0
        while True:
            try:
                async with session.request(method, url, json=json_body, data=form, headers=headers) as r:
                    text = await r.text()
                    resp = _Response(r.status, r.headers, _parse(text))
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise GraphError(0, "network_error", f"{type(exc).__name__} calling {url}") from exc
            log.debug("graph %s %s -> %s", method, url, resp.status)
            if resp.status not in _RETRY_STATUSES or attempt >= self.max_retries:
                return resp
            attempt += 1
            delay = self._retry_delay(resp.headers.get("Retry-After"), attempt)
            log.info("graph %s throttled (%s), retry %d in %.1fs", url, resp.status, attempt, delay)
            await asyncio.sleep(delay)

    def _retry_delay(self, retry_after: str | None, attempt: int) -> float:
        delay: float | None = None
        if retry_after:
            try:
                delay = float(retry_after)
            except ValueError:
                try:
                    delay = (parsedate_to_datetime(retry_after) - datetime.now(UTC)).total_seconds()
                except (TypeError, ValueError):
                    delay = None
        if delay is None:
            # No hint: exponential backoff with jitter so replicas do not retry in lockstep.
            delay = (2**attempt) * random.uniform(0.5, 1.0)
        return min(max(delay, 0.0), self.max_retry_sleep)

    def _get_session(self) -> aiohttp.ClientSession:
        # Created on first use so that it binds to the loop that is running, not an import-time one.
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self._session


def _owner(user_aad_id: str) -> dict[str, Any]:
    """A channel member with the owner role; parsing the object id as a GUID keeps quotes out of the bind."""
    return {
        "@odata.type": "#microsoft.graph.aadUserConversationMember",
        "user@odata.bind": f"{_BIND_BASE}/users('{uuid.UUID(user_aad_id)}')",
        "roles": ["owner"],
    }


def _segment(value: str) -> str:
    """Quote an id for one path segment, so an odd id cannot walk to another route."""
    return quote(value.strip(), safe="@:")


def _parse(text: str) -> Any:
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def _graph_error(resp: _Response) -> GraphError:
    body = resp.body
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return GraphError(resp.status, str(error.get("code") or "unknown"), str(error.get("message") or ""))
    message = body[:200] if isinstance(body, str) else ""
    return GraphError(resp.status, f"http_{resp.status}", message)
