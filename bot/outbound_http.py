"""Outbound HTTP for the SDK's connector clients: one aiohttp session behind an msrest driver, and retries.

msrest's default async pipeline runs `requests` in a thread pool, and the SDK's
retry set-up (inside `requests`/urllib3) does not apply to it. Here the pipeline
ends in `PooledDriver`, sending through the one shared `aiohttp.ClientSession`,
and `RetryPolicy` retries throttling and transient failures: Retry-After
honoured, jittered back-off, a bounded number of attempts (DESIGN: Teams limits).
A request that never reached the service is sent again whatever its method; one
whose connection failed during the exchange only if its method is idempotent (a
member look-up is, a posted message is not); one that ran out of time is not.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import random
import time
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
from msrest.exceptions import ClientRequestError
from msrest.pipeline import Request, Response
from msrest.pipeline.async_abc import AsyncHTTPPolicy, AsyncHTTPSender
from msrest.universal_http import ClientRequest
from msrest.universal_http.async_abc import AsyncClientResponse
from msrest.universal_http.async_abc import AsyncHTTPSender as AsyncHttpDriver
from multidict import CIMultiDict
from yarl import URL

log = logging.getLogger(__name__)

PipelineRequest = Request[Any]
PipelineResponse = Response[Any, Any]

CONNECT_TIMEOUT = 5.0
REQUEST_TIMEOUT = 20.0
"""Seconds for one attempt, connect included; Teams re-sends an activity after about 15 s."""


class SessionSource(Protocol):
    """Where the driver gets the shared session and the proxy for a URL (bot.outbound.Outbound)."""

    @property
    def session(self) -> aiohttp.ClientSession: ...

    def proxy_for(self, url: str | URL) -> str | None: ...


@dataclass(frozen=True)
class RetrySettings:
    """How outbound calls are retried (DESIGN: Teams limits)."""

    attempts: int = 4
    statuses: frozenset[int] = frozenset({412, 429, 502, 503, 504})
    backoff: float = 0.5
    max_backoff: float = 8.0
    max_retry_after: float = 60.0
    """A Retry-After longer than this is not waited for: the call fails with the 429."""

    def backoff_delay(self, attempt: int) -> float:
        """Exponential back-off with jitter for the attempt-th retry (0-based)."""
        ceiling = min(self.max_backoff, self.backoff * 2**attempt)
        return random.uniform(ceiling / 2, ceiling)

    def retry_after_delay(self, seconds: float) -> float:
        """At least what the service asked for, plus jitter so that callers do not return together."""
        return seconds + random.uniform(0, self.backoff)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP date); None if absent or malformed."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


# -- HTTP: one session, an msrest driver over it, a retry policy ------------------------------------


IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
"""Methods whose request may be sent twice with the effect of once (RFC 9110, 9.2.2)."""


class ConnectionFailed(ClientRequestError):
    """The request was not delivered (connect refused or timed out, connection dropped): safe to retry."""


class ExchangeFailed(ClientRequestError):
    """The connection failed once the request may have reached the service (reset, answer cut short).

    Retried only for an idempotent method: a POST may have been acted on (a message posted twice).
    """


class PooledResponse(AsyncClientResponse):
    """An aiohttp response, body already read (the connector's bodies are small JSON)."""

    def __init__(self, request: ClientRequest, response: aiohttp.ClientResponse, body: bytes) -> None:
        super().__init__(request, response)
        self.status_code = response.status
        self.headers = CIMultiDict(response.headers)
        self.reason = response.reason
        self._body = body

    def body(self) -> bytes:
        return self._body


class PooledDriver(AsyncHttpDriver):
    """An msrest async driver sending through the shared aiohttp session."""

    def __init__(self, outbound: SessionSource) -> None:
        self._outbound = outbound

    async def __aenter__(self) -> PooledDriver:
        return self

    async def __aexit__(self, *exc_details: object) -> None:
        # `async with connector_client` would otherwise close the session every client shares;
        # the session belongs to Outbound and is closed at app cleanup.
        return None

    async def send(self, request: ClientRequest, **config: Any) -> PooledResponse:
        if request.files:
            raise ClientRequestError("multipart form data is not supported by the pooled driver")
        headers = {k: v for k, v in request.headers.items() if k.lower() != "content-length"}
        data = request.data.encode("utf-8") if isinstance(request.data, str) else request.data
        session = self._outbound.session
        options: dict[str, Any] = {"headers": headers, "data": data}
        proxy = self._outbound.proxy_for(request.url)
        if proxy is not None:
            options["proxy"] = proxy
        timeout = _timeout(config.get("timeout"))
        if timeout is not None:  # passing timeout=None to aiohttp would mean "no timeout at all"
            options["timeout"] = timeout
        try:
            # encoded=True: send the path exactly as msrest quoted it (conversation ids carry ';', ':').
            async with session.request(request.method, URL(request.url, encoded=True), **options) as response:
                body = await response.read()
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError,
                aiohttp.ServerDisconnectedError) as exc:  # fmt: skip
            message = f"could not reach {_origin(request.url)}: {type(exc).__name__}"
            raise ConnectionFailed(message, exc) from exc
        except (aiohttp.ClientOSError, aiohttp.ClientPayloadError) as exc:  # resets included
            message = f"connection to {_origin(request.url)} failed: {type(exc).__name__}: {exc}"
            raise ExchangeFailed(message, exc) from exc
        except (aiohttp.ClientError, TimeoutError) as exc:  # the time allowed is spent: no retry
            message = f"request to {_origin(request.url)} failed: {type(exc).__name__}"
            raise ClientRequestError(message, exc) from exc
        return PooledResponse(request, response, body)


def _timeout(value: Any) -> aiohttp.ClientTimeout | None:
    """A per-call msrest/requests style timeout (seconds, or (connect, read)); None: the session's."""
    if isinstance(value, int | float) and value > 0:
        return aiohttp.ClientTimeout(total=float(value), connect=min(CONNECT_TIMEOUT, float(value)))
    if isinstance(value, tuple) and len(value) == 2:
        return aiohttp.ClientTimeout(sock_connect=value[0], sock_read=value[1])
    return None


def _origin(url: str) -> str:
    parsed = URL(url, encoded=True)
    return f"{parsed.scheme}://{parsed.host}:{parsed.port}"


class DriverSender(AsyncHTTPSender[Any, Any]):
    """Pipeline end: hands the request to the driver, with the call's options (msrest's drops them)."""

    def __init__(self, driver: PooledDriver) -> None:
        self.driver = driver

    async def __aenter__(self) -> DriverSender:
        return self

    async def __aexit__(self, *exc_details: object) -> None:
        return None

    async def send(self, request: PipelineRequest, **kwargs: Any) -> PipelineResponse:
        return Response(request, await self.driver.send(request.http_request, **kwargs))


def next_step(policy: AsyncHTTPPolicy[Any, Any]) -> AsyncHTTPPolicy[Any, Any] | AsyncHTTPSender[Any, Any]:
    """The next step of a pipeline (msrest sets it when the pipeline is built)."""
    if policy.next is None:
        raise RuntimeError(f"{type(policy).__name__} is not part of a pipeline")
    return policy.next


class RetryPolicy(AsyncHTTPPolicy[Any, Any]):
    """Retries throttling, transient statuses, undelivered requests and idempotent ones whose connection
    failed, a bounded number of times."""

    def __init__(self, settings: RetrySettings) -> None:
        super().__init__()
        self.settings = settings

    async def send(self, request: PipelineRequest, **kwargs: Any) -> PipelineResponse:
        settings = self.settings
        attempt = 0
        while True:
            last = attempt + 1 >= settings.attempts
            try:
                response = await next_step(self).send(request, **kwargs)
            except ConnectionFailed:
                if last:
                    raise
                delay = settings.backoff_delay(attempt)
                reason = "connection failed"
            except ExchangeFailed:
                if last or request.http_request.method.upper() not in IDEMPOTENT:
                    raise
                delay = settings.backoff_delay(attempt)
                reason = "connection failed during the exchange"
            else:
                status = response.http_response.status_code
                if status not in settings.statuses or last:
                    return response
                wait = parse_retry_after(response.http_response.headers.get("Retry-After"))
                if wait is not None and wait > settings.max_retry_after:
                    log.warning("connector asked to wait %.0f s; not retrying", wait)
                    return response
                delay = settings.backoff_delay(attempt) if wait is None else settings.retry_after_delay(wait)
                reason = f"HTTP {status}"
            log.info("retrying %s %s in %.2f s (%s)", request.http_request.method,
                     _origin(request.http_request.url), delay, reason)  # fmt: skip
            await asyncio.sleep(delay)
            attempt += 1
