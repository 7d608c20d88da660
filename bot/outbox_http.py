"""Posting one stored activity to the Bot Connector outside any turn, for the outbox sender.

Workaround for botframework-connector 4.17, kept here: the SDK's connector client
(and our pooled pipeline for it, `bot.outbound.Outbound.pipeline`) retries 429 and
5xx inline, sleeping inside the call, and reports the final failure as an
`ErrorResponseException` that hides the Retry-After header. The sender must own
retries instead: a throttled conversation is paused while the others go on, and a
retry is a row in the database that survives a crash. So the client is used only
for what the SDK decides (which credentials, scope and login endpoint serve a
service URL, as for a proactive turn), and the POST itself goes once through the
shared aiohttp session with the client's bearer token.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote

import aiohttp
from botframework.connector.aio import ConnectorClient
from botframework.connector.auth import AuthenticationConstants, ClaimsIdentity
from multidict import CIMultiDictProxy
from yarl import URL

from bot.auth import GuardedAuthentication
from bot.outbound import Outbound
from bot.outbound_http import CONNECT_TIMEOUT, REQUEST_TIMEOUT, parse_retry_after

MAX_ERROR = 300


@dataclass(frozen=True)
class PostResult:
    """How one POST went: the HTTP status (0 when no answer came), and what the answer said."""

    status: int
    activity_id: str | None = None
    retry_after: float | None = None
    """Seconds the service asked us to wait (429, sometimes 503)."""
    error: str | None = None

    @property
    def ok(self) -> bool:
        """The activity was posted."""
        return 200 <= self.status < 300


class Post(Protocol):
    """Posts one activity into a conversation; never retries, never raises for an HTTP status."""

    async def __call__(
        self, *, service_url: str, conversation_id: str, activity: dict[str, Any]
    ) -> PostResult: ...


ConnectorFor = Callable[[str], Awaitable[ConnectorClient]]


def bot_claims(app_id: str | None) -> ClaimsIdentity:
    """The bot's own identity, as CloudAdapter builds it for a proactive turn."""
    return ClaimsIdentity(
        {
            AuthenticationConstants.AUDIENCE_CLAIM: app_id or None,
            AuthenticationConstants.APP_ID_CLAIM: app_id or None,
        },
        True,
    )


def connector_for(auth: GuardedAuthentication, app_id: str | None) -> ConnectorFor:
    """Connector clients for service URLs outside any turn: the app's pooled factory, for the bot's identity.

    In local mode (no app id) the credentials are anonymous and requests carry no token.
    """
    factory = auth.create_connector_factory(bot_claims(app_id))

    async def create(service_url: str) -> ConnectorClient:
        return await factory.create(service_url)

    return create


def activities_url(service_url: str, conversation_id: str) -> str:
    """`{serviceUrl}v3/conversations/{id}/activities`, the id quoted as msrest quotes it."""
    return f"{service_url.rstrip('/')}/v3/conversations/{quote(conversation_id, safe='')}/activities"


class ConnectorPost:
    """The production `Post`: one POST through the shared session, with the bot's bearer token."""

    def __init__(
        self, outbound: Outbound, connectors: ConnectorFor, *, timeout: float = REQUEST_TIMEOUT
    ) -> None:
        self._outbound = outbound
        self._connectors = connectors
        self._timeout = aiohttp.ClientTimeout(total=timeout, connect=min(CONNECT_TIMEOUT, timeout))

    async def __call__(
        self, *, service_url: str, conversation_id: str, activity: dict[str, Any]
    ) -> PostResult:
        client = await self._connectors(service_url)
        tokens = self._outbound.tokens(client.config.credentials)
        headers = {"Content-Type": "application/json; charset=utf-8", "Accept": "application/json"}
        if not tokens.anonymous:
            headers["Authorization"] = f"Bearer {await tokens.token()}"
        # encoded=True: send the path as quoted (conversation ids carry ';', ':', '@').
        url = URL(activities_url(service_url, conversation_id), encoded=True)
        options: dict[str, Any] = {"headers": headers, "timeout": self._timeout}
        proxy = self._outbound.proxy_for(url)
        if proxy is not None:
            options["proxy"] = proxy
        data = json.dumps(activity, separators=(",", ":")).encode("utf-8")
        try:
            async with self._outbound.session.post(url, data=data, **options) as response:
                body = await response.read()
                return result_of(response.status, response.headers, body)
        except (aiohttp.ClientError, TimeoutError) as exc:
            return PostResult(0, error=f"no answer from {URL(service_url).host}: {type(exc).__name__}")


def result_of(status: int, headers: CIMultiDictProxy[str] | dict[str, str], body: bytes) -> PostResult:
    """A PostResult from the connector's answer (ResourceResponse or ErrorResponse JSON)."""
    try:
        data = json.loads(body) if body else None
    except ValueError:
        data = None
    if 200 <= status < 300:
        activity_id = data.get("id") if isinstance(data, dict) else None
        return PostResult(status, activity_id=activity_id if isinstance(activity_id, str) else None)
    error = data.get("error") if isinstance(data, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    described = f"HTTP {status}" + (f" {code}" if code else "") + (f": {message}" if message else "")
    return PostResult(
        status, retry_after=parse_retry_after(headers.get("Retry-After")), error=described[:MAX_ERROR]
    )
