"""Inbound authentication: the SDK's validation, made safe to run inside aiohttp.

Two workarounds for botframework-connector 4.17, both kept here:

* The SDK fetches OpenID metadata and signing keys with a blocking
  `requests.get` inside the event loop (`jwt_token_extractor._OpenIdMetadata`),
  stalling every request for the length of the fetch. We put our own metadata
  object in the SDK's shared cache: it fetches in a worker thread, lets one
  refresh run at a time, and is prefetched at start-up.
* A bad token surfaces from the SDK as PyJWT errors, bare `Exception`s,
  IndexError (unknown key id) or AttributeError, which aiohttp turns into 500.
  `GuardedAuthentication` maps every validation failure to PermissionError,
  which the HTTP layer answers with 401. Only a failure to reach the metadata
  endpoint is reported as unavailable (503), so Teams retries.

Outbound calls (connector and user-token clients, credentials, tokens) are
pooled by `bot.outbound`; `GuardedAuthentication` is where the SDK picks them up.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

import requests
from botbuilder.integration.aiohttp import (
    ConfigurationBotFrameworkAuthentication,
    ConfigurationServiceClientCredentialFactory,
)
from botbuilder.schema import Activity
from botframework.connector.auth import (
    AuthenticateRequestResult,
    AuthenticationConstants,
    BotFrameworkAuthentication,
    ClaimsIdentity,
    ConnectorFactory,
    UserTokenClient,
)
from botframework.connector.auth.jwt_token_extractor import (
    JwtTokenExtractor,
    _OpenIdConfig,
    _OpenIdMetadata,
)
from jwt.algorithms import RSAAlgorithm

from bot.config import Settings
from bot.outbound import CachedCredentialsFactory, Outbound, PooledConnectorFactory

log = logging.getLogger(__name__)

METADATA_TIMEOUT = 10.0


class AuthUnavailable(Exception):
    """The signing keys could not be fetched; the request may be retried."""


class OffLoopOpenIdMetadata(_OpenIdMetadata):  # type: ignore[misc]
    """Signing keys fetched in a worker thread, one refresh at a time."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.last_updated: datetime = datetime.min  # noqa: DTZ901 - the SDK compares naive times
        self.keys: list[dict[str, Any]] = []
        self._lock: asyncio.Lock | None = None

    async def get(self, key_id: str) -> _OpenIdConfig:
        """The key for key_id; unknown ids are a PermissionError, never an IndexError."""
        if self.last_updated < datetime.now() - timedelta(days=1):  # noqa: DTZ005 - the SDK's naive clock
            await self.refresh()
        key = self._lookup(key_id)
        if key is None and self.last_updated < datetime.now() - timedelta(hours=1):  # noqa: DTZ005
            await self.refresh(force=True)
            key = self._lookup(key_id)
        if key is None:
            raise PermissionError("token signed with an unknown key")
        return key

    async def refresh(self, *, force: bool = False) -> None:
        """Fetch metadata and keys off the loop; concurrent callers share one fetch."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        before = self.last_updated
        async with self._lock:
            if self.last_updated != before and not force:
                return
            try:
                self.keys = await asyncio.to_thread(self._fetch_keys)
            except (requests.RequestException, ValueError, KeyError) as exc:
                raise AuthUnavailable(f"OpenID metadata unavailable: {type(exc).__name__}") from exc
            self.last_updated = datetime.now()  # noqa: DTZ005

    async def _refresh(self) -> None:
        await self.refresh()

    def _fetch_keys(self) -> list[dict[str, Any]]:
        response = requests.get(self.url, timeout=METADATA_TIMEOUT)
        response.raise_for_status()
        keys_url = response.json()["jwks_uri"]
        keys = requests.get(keys_url, timeout=METADATA_TIMEOUT)
        keys.raise_for_status()
        found: list[dict[str, Any]] = keys.json()["keys"]
        return found

    def _lookup(self, key_id: str) -> _OpenIdConfig | None:
        for key in self.keys or []:
            if key.get("kid") == key_id:
                public_key = RSAAlgorithm.from_jwk(json.dumps(key))
                return _OpenIdConfig(public_key, key.get("endorsements", []))
        return None


def install_metadata(url: str) -> OffLoopOpenIdMetadata:
    """Make the SDK use our off-loop metadata object for url."""
    current = JwtTokenExtractor.metadataCache.get(url)
    if isinstance(current, OffLoopOpenIdMetadata):
        return current
    metadata = OffLoopOpenIdMetadata(url)
    JwtTokenExtractor.metadataCache[url] = metadata
    return metadata


class GuardedAuthentication(BotFrameworkAuthentication):  # type: ignore[misc]
    """The SDK's authentication with every token failure turned into PermissionError.

    It also hands the SDK pooled outbound clients (`bot.outbound`) in place of the
    ones it would build on every turn.
    """

    def __init__(
        self, inner: BotFrameworkAuthentication, metadata: list[OffLoopOpenIdMetadata],
        outbound: Outbound | None = None,
    ) -> None:  # fmt: skip
        self._inner = inner
        self.metadata = metadata
        self.outbound = outbound or Outbound()

    async def authenticate_request(
        self, activity: Activity, auth_header: str | None
    ) -> AuthenticateRequestResult:
        try:
            result = await self._inner.authenticate_request(activity, auth_header)
        except (PermissionError, AuthUnavailable):
            raise
        except Exception as exc:  # PyJWT errors, bare Exception, IndexError, ...: all a bad token
            raise PermissionError(f"token rejected: {type(exc).__name__}") from exc
        if result.connector_factory is not None:
            pooled = PooledConnectorFactory.replacing(result.connector_factory, self.outbound)
            result.connector_factory = pooled
        return result

    async def authenticate_streaming_request(self, auth_header: str, channel_id_header: str) -> Any:
        raise PermissionError("streaming connections are not supported")

    def create_connector_factory(self, claims_identity: ClaimsIdentity) -> ConnectorFactory:
        sdk_factory = self._inner.create_connector_factory(claims_identity)
        return PooledConnectorFactory.replacing(sdk_factory, self.outbound)

    async def create_user_token_client(self, claims_identity: ClaimsIdentity) -> UserTokenClient:
        # The SDK asks for one on every turn (for OAuth prompts, which Opsroom has none of);
        # it depends only on the app id, as the SDK derives it from the claims.
        app_id = claims_identity.get_claim_value(AuthenticationConstants.AUDIENCE_CLAIM)
        if app_id is None:
            app_id = claims_identity.get_claim_value(AuthenticationConstants.APP_ID_CLAIM)
        return await self.outbound.user_token_client(
            app_id, lambda: self._inner.create_user_token_client(claims_identity)
        )

    def create_bot_framework_client(self) -> Any:
        return self._inner.create_bot_framework_client()

    def get_originating_audience(self) -> str:
        return str(self._inner.get_originating_audience())

    async def authenticate_channel_request(self, auth_header: str) -> ClaimsIdentity:
        try:
            return await self._inner.authenticate_channel_request(auth_header)
        except (PermissionError, AuthUnavailable):
            raise
        except Exception as exc:
            raise PermissionError(f"token rejected: {type(exc).__name__}") from exc

    async def prefetch(self) -> None:
        """Load signing keys before the first request (best effort)."""
        for metadata in self.metadata:
            try:
                await metadata.refresh()
            except AuthUnavailable as exc:
                log.warning("could not prefetch signing keys from %s: %s", metadata.url, exc)


def sdk_configuration(settings: Settings) -> SimpleNamespace:
    """The attribute-style configuration object the SDK reads."""
    config = SimpleNamespace(
        APP_ID=settings.app_id or None,
        APP_PASSWORD=settings.app_password or None,
        APP_TYPE=settings.app_type,
        APP_TENANTID=settings.app_tenant_id or None,
    )
    if settings.openid_metadata_url:
        config.TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL = settings.openid_metadata_url
    if settings.token_issuer:
        config.TO_BOT_FROM_CHANNEL_TOKEN_ISSUER = settings.token_issuer
    if settings.login_url:
        config.TO_CHANNEL_FROM_BOT_LOGIN_URL = settings.login_url
        config.VALIDATE_AUTHORITY = False
    if settings.oauth_scope:
        config.TO_CHANNEL_FROM_BOT_OAUTH_SCOPE = settings.oauth_scope
    return config


def build_authentication(settings: Settings, outbound: Outbound | None = None) -> GuardedAuthentication:
    """The one place authentication (inbound validation, outbound credentials) is assembled."""
    config = sdk_configuration(settings)
    channel_url = (
        settings.openid_metadata_url or AuthenticationConstants.TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL
    )
    # Emulator tokens are checked against their own keys; install that too so no
    # path through the SDK fetches on the loop, but only prefetch the channel's.
    install_metadata(AuthenticationConstants.TO_BOT_FROM_EMULATOR_OPENID_METADATA_URL)
    # One credentials object per app id and scope, so MSAL's token cache survives between turns.
    credentials = CachedCredentialsFactory(ConfigurationServiceClientCredentialFactory(config))
    inner = ConfigurationBotFrameworkAuthentication(config, credentials_factory=credentials)
    return GuardedAuthentication(inner, [install_metadata(channel_url)], outbound)
