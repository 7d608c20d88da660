"""Outbound calls to the Bot Connector: pooled clients, one aiohttp session, tokens off the loop.

Workarounds for botframework-connector 4.17 and msrest, all kept here (and wired in
`bot.auth`), because the SDK's defaults cost most of a turn:

* `CloudAdapterBase.process_activity` asks for a new `ConnectorClient` and a new
  `UserTokenClient` on every turn. Each builds an msrest configuration (its retry
  set-up alone is ~6 ms of list building) and a `requests` session, and with an
  app id new credentials, i.e. a new MSAL application with an empty token cache.
  `PooledConnectorFactory` hands the SDK one client per (service URL, app id,
  audience, login endpoint); `CachedCredentialsFactory` one credentials object
  per (app id, scope, login endpoint), so MSAL's cache is kept.
* msrest's default async pipeline runs `requests` in a thread pool and, through
  `signed_session`, acquires tokens with synchronous MSAL on the event loop. Our
  pipeline sends through one pooled `aiohttp.ClientSession` (`PooledDriver` and
  `RetryPolicy`, in `bot.outbound_http`) and adds the bearer token from a
  `TokenSource`, which calls MSAL in a worker thread, one refresh at a time, and
  reuses the token until close to its expiry.
"""

from __future__ import annotations

import asyncio
import logging
import time
import urllib.request
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import jwt
from botframework.connector.aio import ConnectorClient
from botframework.connector.auth import (
    AuthenticationConstants,
    ConnectorFactory,
    ServiceClientCredentialsFactory,
    UserTokenClient,
)
from botframework.connector.auth._connector_factory_impl import USER_AGENT, _ConnectorFactoryImpl
from botframework.connector.bot_framework_sdk_client_async import BotFrameworkConnectorConfiguration
from botframework.connector.token_api.aio import TokenApiClient
from msrest.pipeline import Request, Response
from msrest.pipeline.async_abc import AsyncHTTPPolicy, AsyncPipeline
from msrest.pipeline.universal import RawDeserializer
from yarl import URL

from bot.outbound_http import (
    CONNECT_TIMEOUT,
    REQUEST_TIMEOUT,
    DriverSender,
    PooledDriver,
    RetryPolicy,
    RetrySettings,
    next_step,
)

log = logging.getLogger(__name__)

PipelineRequest = Request[Any]
PipelineResponse = Response[Any, Any]

POOL_SIZE = 100
MAX_CLIENTS = 256
"""Connector clients kept (LRU); service URLs are few in practice, but local mode trusts any."""
TOKEN_MARGIN = 300.0
"""Refresh this long before expiry: MSAL's own margin, so a refresh really fetches a new token."""
UNKNOWN_TOKEN_TTL = 60.0


# -- tokens ------------------------------------------------------------------------------------------


class TokenSource:
    """The bearer token for one credentials object, fetched off the loop and reused until near expiry."""

    def __init__(self, credentials: Any, *, clock: Callable[[], float] = time.time) -> None:
        self.credentials = credentials
        self._clock = clock
        self._token: str | None = None
        self._expires = 0.0
        self._refresh_at = 0.0
        self._lock: asyncio.Lock | None = None
        self.fetches = 0

    @property
    def anonymous(self) -> bool:
        """No app id (local mode, anonymous skill): requests go without Authorization."""
        app_id = getattr(self.credentials, "microsoft_app_id", None)
        return not app_id or app_id == AuthenticationConstants.ANONYMOUS_SKILL_APP_ID

    async def token(self) -> str:
        """A valid token; at most one fetch runs at a time, concurrent callers share it."""
        if self._token is not None and self._clock() < self._refresh_at:
            return self._token
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            now = self._clock()
            if self._token is not None and now < self._refresh_at:
                return self._token
            try:
                # MSAL is synchronous (and builds its app, with HTTP discovery, on first use).
                token = str(await asyncio.to_thread(self.credentials.get_access_token))
            except Exception:
                if self._token is not None and now < self._expires - 30:
                    log.warning("token refresh failed; keeping the current token", exc_info=True)
                    return self._token
                raise
            self.fetches += 1
            self._token, self._expires, self._refresh_at = token, *self._schedule(token, now)
            return token

    def _schedule(self, token: str, now: float) -> tuple[float, float]:
        """(expiry, refresh time) from the token's exp claim."""
        try:
            claims = jwt.decode(token, options={"verify_signature": False})
            expires = float(claims["exp"])
        except (jwt.PyJWTError, KeyError, TypeError, ValueError):
            return now + UNKNOWN_TOKEN_TTL, now + UNKNOWN_TOKEN_TTL
        lifetime = expires - now
        if lifetime > TOKEN_MARGIN:
            return expires, expires - TOKEN_MARGIN
        return expires, now + max(lifetime, 0.0) / 2


class BearerTokenPolicy(AsyncHTTPPolicy[Any, Any]):
    """Adds `Authorization: Bearer ...` unless the credentials are anonymous."""

    def __init__(self, tokens: TokenSource) -> None:
        super().__init__()
        self.tokens = tokens

    async def send(self, request: PipelineRequest, **kwargs: Any) -> PipelineResponse:
        headers = request.http_request.headers
        if self.tokens.anonymous:
            headers.pop("Authorization", None)
        else:
            headers["Authorization"] = f"Bearer {await self.tokens.token()}"
        return await next_step(self).send(request, **kwargs)


# -- caches ------------------------------------------------------------------------------------------


class CachedCredentialsFactory(ServiceClientCredentialsFactory):  # type: ignore[misc]
    """The SDK's credentials factory, building one credentials object per (app id, scope, endpoint)."""

    def __init__(self, inner: ServiceClientCredentialsFactory) -> None:
        self._inner = inner
        self._cache: dict[tuple[Any, ...], Any] = {}
        self.builds = 0

    async def is_valid_app_id(self, app_id: str) -> bool:
        return bool(await self._inner.is_valid_app_id(app_id))

    async def is_authentication_disabled(self) -> bool:
        return bool(await self._inner.is_authentication_disabled())

    async def create_credentials(
        self, app_id: str, oauth_scope: str, login_endpoint: str, validate_authority: bool
    ) -> Any:
        key = (app_id, oauth_scope, login_endpoint, validate_authority)
        found = self._cache.get(key)
        if found is None:
            # The inner factory refuses unknown app ids, so the cache only grows by scope.
            built = await self._inner.create_credentials(
                app_id, oauth_scope, login_endpoint, validate_authority
            )
            self.builds += 1
            if len(self._cache) >= MAX_CLIENTS:
                self._cache.clear()
            found = self._cache.setdefault(key, built)
        return found


ClientKey = tuple[str, str | None, str, str | None]


class Outbound:
    """The shared session and the caches of clients and tokens; one per app.

    The session is created inside the running loop (`start`, at app start-up) and
    closed at cleanup; clients built from it live as long as the app.
    """

    def __init__(
        self,
        *,
        retry: RetrySettings | None = None,
        timeout: aiohttp.ClientTimeout | None = None,
        pool_size: int = POOL_SIZE,
    ) -> None:
        self.retry = retry or RetrySettings()
        self.timeout = timeout or aiohttp.ClientTimeout(total=REQUEST_TIMEOUT, connect=CONNECT_TIMEOUT)
        self.pool_size = pool_size
        self.driver = PooledDriver(self)
        self._session: aiohttp.ClientSession | None = None
        self._proxies: dict[str, str | None] = {}
        self._closed = False
        self._clients: OrderedDict[ClientKey, ConnectorClient] = OrderedDict()
        self._tokens: dict[int, TokenSource] = {}
        self._user_token_clients: dict[str | None, UserTokenClient] = {}
        self.connector_builds = 0

    async def start(self) -> None:
        """Open the session (inside the running loop)."""
        _ = self.session

    @property
    def session(self) -> aiohttp.ClientSession:
        """The one session; opened on first use if `start` was not called."""
        if self._session is None:
            if self._closed:
                raise RuntimeError("outbound HTTP is closed")
            asyncio.get_running_loop()  # a session made outside a loop is bound to the wrong one
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self.pool_size, ttl_dns_cache=300),
                timeout=self.timeout,
                # trust_env would re-read the proxy variables and ~/.netrc on every request
                # (a measurable share of each turn); proxy_for() reads them once instead.
                trust_env=False,
                # The Bot Framework's services set no cookies; aiohttp's jar would still look for some to
                # send, and parse what comes back, on every request.
                cookie_jar=aiohttp.DummyCookieJar(),
            )
        return self._session

    def proxy_for(self, url: str | URL) -> str | None:
        """The proxy for a URL from the environment (HTTPS_PROXY, NO_PROXY...), read once per host."""
        parsed = url if isinstance(url, URL) else URL(url)
        key = f"{parsed.scheme}://{parsed.host}"
        if key not in self._proxies:
            if len(self._proxies) > 1024:
                self._proxies.clear()
            proxies = urllib.request.getproxies()
            proxy = proxies.get(parsed.scheme or "https")
            bypass = parsed.host is not None and urllib.request.proxy_bypass(parsed.host)
            self._proxies[key] = None if bypass or not proxy else proxy
        return self._proxies[key]

    @property
    def closed(self) -> bool:
        """True once `close` ran."""
        return self._closed

    async def close(self) -> None:
        """Close the session; clients built on it stop working."""
        self._closed = True
        session, self._session = self._session, None
        self._clients.clear()
        self._user_token_clients.clear()
        if session is not None:
            await session.close()

    def tokens(self, credentials: Any) -> TokenSource:
        """The token source of a credentials object (credentials are cached, so this is too)."""
        source = self._tokens.get(id(credentials))
        if source is None or source.credentials is not credentials:
            if len(self._tokens) >= 2 * MAX_CLIENTS:
                self._tokens.clear()
            source = self._tokens[id(credentials)] = TokenSource(credentials)
        return source

    def pipeline(self, config: Any) -> AsyncPipeline[Any, Any]:
        """An msrest pipeline for a client configuration: pooled aiohttp, bearer token, retry."""
        policies = [
            config.user_agent_policy,
            BearerTokenPolicy(self.tokens(config.credentials)),
            RawDeserializer(),
            config.http_logger_policy,
            RetryPolicy(self.retry),
        ]
        return AsyncPipeline(policies, DriverSender(self.driver))

    async def connector_client(
        self, service_url: str, *, app_id: str | None, audience: str, login_endpoint: str | None,
        validate_authority: bool, credentials_factory: ServiceClientCredentialsFactory,
    ) -> ConnectorClient:  # fmt: skip
        """The client for (service URL, app id, audience, login endpoint), built once."""
        key: ClientKey = (service_url, app_id, audience, login_endpoint)
        client = self._clients.get(key)
        if client is not None:
            self._clients.move_to_end(key)
            return client
        credentials = await credentials_factory.create_credentials(
            app_id, audience, login_endpoint, validate_authority
        )
        client = self._clients.get(key)
        if client is None:
            config = BotFrameworkConnectorConfiguration(credentials, service_url, pipeline_type=self.pipeline)
            client = ConnectorClient(credentials, base_url=service_url, custom_configuration=config)
            client.config.add_user_agent(USER_AGENT)
            # msrest re-checks every outgoing body against the models' constraints (a recursive walk
            # costing about a tenth of a request's CPU); the connector validates what it receives.
            client._serialize.client_side_validation = False
            self.connector_builds += 1
            self._clients[key] = client
            while len(self._clients) > MAX_CLIENTS:
                self._clients.popitem(last=False)
        return client

    async def user_token_client(
        self, app_id: str | None, build: Callable[[], Awaitable[UserTokenClient]]
    ) -> UserTokenClient:
        """The SDK's user-token client for app_id, built once, sending through the pooled pipeline."""
        client = self._user_token_clients.get(app_id)
        if client is None:
            client = await build()
            # `_UserTokenClientImpl` keeps its TokenApiClient private; give it our pipeline so an
            # OAuth prompt does not block the loop on requests and MSAL. Other shapes are left alone.
            api = getattr(client, "_client", None)
            if isinstance(api, TokenApiClient):
                api.config.pipeline = self.pipeline(api.config)
            client = self._user_token_clients.setdefault(app_id, client)
        return client


class PooledConnectorFactory(ConnectorFactory):  # type: ignore[misc]
    """The SDK's connector factory for one request, handing out cached clients."""

    def __init__(
        self, outbound: Outbound, *, app_id: str | None, oauth_scope: str, login_endpoint: str | None,
        validate_authority: bool, credentials_factory: ServiceClientCredentialsFactory,
    ) -> None:  # fmt: skip
        self._outbound = outbound
        self._app_id = app_id
        self._oauth_scope = oauth_scope
        self._login_endpoint = login_endpoint
        self._validate_authority = validate_authority
        self._credentials_factory = credentials_factory

    @classmethod
    def replacing(cls, sdk_factory: ConnectorFactory, outbound: Outbound) -> ConnectorFactory:
        """Ours in place of the SDK's `_ConnectorFactoryImpl`, with the settings the SDK chose for it.

        The SDK builds that factory per request (public, government or private
        cloud, skill audience...) and keeps its settings private; reading them keeps
        those decisions the SDK's. Any other factory is returned unchanged.
        """
        if not isinstance(sdk_factory, _ConnectorFactoryImpl):
            return sdk_factory
        return cls(
            outbound,
            app_id=sdk_factory._app_id,
            oauth_scope=sdk_factory._to_channel_from_bot_oauth_scope,
            login_endpoint=sdk_factory._login_endpoint,
            validate_authority=sdk_factory._validate_authority,
            credentials_factory=sdk_factory._credential_factory,
        )

    async def create(self, service_url: str, audience: str | None = None) -> ConnectorClient:
        return await self._outbound.connector_client(
            service_url, app_id=self._app_id, audience=audience or self._oauth_scope,
            login_endpoint=self._login_endpoint, validate_authority=self._validate_authority,
            credentials_factory=self._credentials_factory,
        )  # fmt: skip
