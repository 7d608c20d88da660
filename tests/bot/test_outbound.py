"""bot.outbound against the fake connector and fake AAD: clients per key, tokens, retries, timeouts."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import jwt
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from botbuilder.schema import Activity, ConversationAccount, ErrorResponseException
from botframework.connector.auth import PasswordServiceClientCredentialFactory
from msrest.exceptions import ClientRequestError

from bot.outbound import CachedCredentialsFactory, Outbound, PooledConnectorFactory, TokenSource
from bot.outbound_http import ExchangeFailed, RetrySettings, parse_retry_after
from tests.fakes.connector import FakeConnector
from tests.fakes.openid import FakeOpenId, claims_of

APP_A = "aaaaaaaa-0000-4000-8000-00000000000a"
APP_B = "bbbbbbbb-0000-4000-8000-00000000000b"
SCOPE = "https://api.botframework.com"
CONVERSATION = "a:1conversation"


def message(text: str = "hello") -> Activity:
    return Activity(type="message", text=text, conversation=ConversationAccount(id=CONVERSATION))


@pytest.fixture
async def outbound() -> AsyncIterator[Outbound]:
    running = Outbound(retry=RetrySettings(backoff=0.01, max_backoff=0.05))
    await running.start()
    yield running
    await running.close()


@pytest.fixture
async def connector() -> AsyncIterator[FakeConnector]:
    async with FakeConnector() as fake:
        yield fake


@pytest.fixture
def aad(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOpenId]:
    with FakeOpenId() as fake:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", fake.ca_bundle_path)  # MSAL trusts the fake's certificate
        yield fake


def credentials_for(app_id: str | None) -> CachedCredentialsFactory:
    return CachedCredentialsFactory(PasswordServiceClientCredentialFactory(app_id, "secret"))


async def client_for(outbound: Outbound, url: str, app_id: str | None, aad: FakeOpenId | None = None,
                     factory: CachedCredentialsFactory | None = None, audience: str = SCOPE) -> Any:  # fmt: skip
    return await outbound.connector_client(
        url, app_id=app_id, audience=audience, login_endpoint=aad.login_url if aad else None,
        validate_authority=False, credentials_factory=factory or credentials_for(app_id),
    )  # fmt: skip


# -- clients ----------------------------------------------------------------------------------------


async def test_one_client_per_service_url_app_and_audience(
    outbound: Outbound, connector: FakeConnector, aad: FakeOpenId
) -> None:
    factory_a, factory_b = credentials_for(APP_A), credentials_for(APP_B)
    a1 = await client_for(outbound, connector.url, APP_A, aad, factory_a)
    a2 = await client_for(outbound, connector.url, APP_A, aad, factory_a)
    b = await client_for(outbound, connector.url, APP_B, aad, factory_b)
    other_audience = await client_for(outbound, connector.url, APP_A, aad, factory_a, audience="https://other.example")
    assert a1 is a2
    assert len({id(a1), id(b), id(other_audience)}) == 3
    assert factory_a.builds == 2 and factory_b.builds == 1  # credentials: one per (app id, scope)

    for client in (a1, b, other_audience):
        await client.conversations.send_to_conversation(CONVERSATION, message())
    sent = [claims_of(r.request.headers["Authorization"].split(" ", 1)[1]) for r in connector.activities()]
    assert [(c["appid"], c["aud"]) for c in sent] == [
        (APP_A, SCOPE), (APP_B, SCOPE), (APP_A, "https://other.example")
    ]  # fmt: skip
    assert sorted((r.client_id, r.scope) for r in aad.token_requests) == [
        (APP_A, "https://api.botframework.com/.default"),
        (APP_A, "https://other.example/.default"),
        (APP_B, "https://api.botframework.com/.default"),
    ]


async def test_the_pooled_factory_serves_the_sdk_the_same_client(outbound: Outbound, connector: FakeConnector) -> None:
    def factory() -> PooledConnectorFactory:
        return PooledConnectorFactory(outbound, app_id=None, oauth_scope=SCOPE, login_endpoint=None,
                                      validate_authority=True, credentials_factory=credentials)  # fmt: skip

    credentials = credentials_for(None)
    first = await factory().create(connector.url)
    assert await factory().create(connector.url, SCOPE) is first
    assert await factory().create(connector.url, "https://other.example") is not first
    await first.conversations.send_to_conversation(CONVERSATION, message())
    [sent] = connector.activities()
    assert "Authorization" not in sent.request.headers
    # Bodies go out without msrest's client-side re-validation, and still as the SDK would write them.
    assert first._serialize.client_side_validation is False
    assert (sent["type"], sent["text"]) == ("message", message().text)


async def test_leaving_a_client_context_keeps_the_shared_session(outbound: Outbound, connector: FakeConnector) -> None:
    client = await client_for(outbound, connector.url, None)
    async with client:
        await client.conversations.send_to_conversation(CONVERSATION, message())
    assert not outbound.session.closed
    await client.conversations.send_to_conversation(CONVERSATION, message("again"))
    assert len(connector.activities()) == 2


async def test_a_closed_outbound_refuses_to_send(connector: FakeConnector) -> None:
    outbound = Outbound()
    await outbound.start()
    session = outbound.session
    client = await client_for(outbound, connector.url, None)
    await outbound.close()
    assert session.closed
    with pytest.raises(RuntimeError, match="closed"):
        await client.conversations.send_to_conversation(CONVERSATION, message())


# -- retries and timeouts ---------------------------------------------------------------------------


async def test_retries_are_bounded(outbound: Outbound, connector: FakeConnector) -> None:
    connector.fail_next(10, 503)
    client = await client_for(outbound, connector.url, None)
    with pytest.raises(ErrorResponseException):
        await client.conversations.send_to_conversation(CONVERSATION, message())
    assert len(connector.failed_requests()) == outbound.retry.attempts == 4


@pytest.mark.parametrize("status", [412, 429, 502, 503, 504])
async def test_transient_statuses_are_retried(outbound: Outbound, connector: FakeConnector, status: int) -> None:
    connector.fail_next(2, status)
    client = await client_for(outbound, connector.url, None)
    result = await client.conversations.send_to_conversation(CONVERSATION, message())
    assert result.id and len(connector.failed_requests()) == 2


@pytest.mark.parametrize("status", [400, 401, 403, 404, 500])
async def test_other_failures_are_not_retried(outbound: Outbound, connector: FakeConnector, status: int) -> None:
    connector.fail_next(1, status)
    client = await client_for(outbound, connector.url, None)
    with pytest.raises(ErrorResponseException):
        await client.conversations.send_to_conversation(CONVERSATION, message())
    assert connector.activities() == []


async def test_a_retry_after_beyond_the_limit_is_not_waited_for(outbound: Outbound, connector: FakeConnector) -> None:
    connector.fail_next(1, 429, retry_after=3600)
    client = await client_for(outbound, connector.url, None)
    started = time.monotonic()
    with pytest.raises(ErrorResponseException):
        await client.conversations.send_to_conversation(CONVERSATION, message())
    assert time.monotonic() - started < 1


async def test_an_unreachable_connector_fails_after_bounded_attempts(outbound: Outbound) -> None:
    client = await client_for(outbound, "http://127.0.0.1:9/", None)
    with pytest.raises(ClientRequestError):
        await client.conversations.send_to_conversation(CONVERSATION, message())


async def test_a_slow_connector_times_out() -> None:
    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(5)
        return web.json_response({"id": "1"}, status=201)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", slow)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    outbound = Outbound(timeout=aiohttp.ClientTimeout(total=0.2))
    try:
        client = await client_for(outbound, str(server.make_url("/")), None)
        started = time.monotonic()
        with pytest.raises(ClientRequestError):
            await client.conversations.send_to_conversation(CONVERSATION, message())
        assert time.monotonic() - started < 2
    finally:
        await outbound.close()
        await server.close()


class CutShort:
    """A raw HTTP server that cuts its first `cut` answers short (headers, then the connection closes)."""

    def __init__(self, cut: int) -> None:
        self.cut = cut
        self.methods: list[str] = []
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> str:
        self.server = await asyncio.start_server(self._answer, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/"

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                head = (await reader.readuntil(b"\r\n\r\n")).decode()
            except asyncio.IncompleteReadError:  # the client closed its kept connection
                return
            self.methods.append(head.split()[0])
            fields = dict(line.lower().partition(":")[::2] for line in head.split("\r\n")[1:] if line)
            await reader.readexactly(int(fields.get("content-length", 0)))
            body = b"[]" if self.methods[-1] == "GET" else b'{"id": "1"}'
            if len(self.methods) <= self.cut:
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n[")
                await writer.drain()
                writer.close()
                return
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                         % (len(body), body))  # fmt: skip
            await writer.drain()


async def test_an_idempotent_request_whose_answer_was_cut_short_is_sent_again(outbound: Outbound) -> None:
    server = CutShort(cut=2)
    async with server as url:
        client = await client_for(outbound, url, None)
        assert await client.conversations.get_conversation_members(CONVERSATION) == []
    assert server.methods == ["GET", "GET", "GET"]


async def test_a_post_whose_answer_was_cut_short_is_not_sent_again(outbound: Outbound) -> None:
    server = CutShort(cut=1)
    async with server as url:
        client = await client_for(outbound, url, None)
        with pytest.raises(ExchangeFailed, match="ClientPayloadError"):
            await client.conversations.send_to_conversation(CONVERSATION, message())
    assert server.methods == ["POST"]  # it may have been posted: a second one could post it twice


async def test_an_idempotent_request_cut_short_every_time_fails_after_bounded_attempts(outbound: Outbound) -> None:
    server = CutShort(cut=10)
    async with server as url:
        client = await client_for(outbound, url, None)
        with pytest.raises(ExchangeFailed):
            await client.conversations.get_conversation_members(CONVERSATION)
    assert server.methods == ["GET"] * outbound.retry.attempts


def test_retry_after_is_read_as_seconds_or_a_date() -> None:
    assert parse_retry_after("2") == 2.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480.0) == 10.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


# -- tokens -----------------------------------------------------------------------------------------


class SlowCredentials:
    """Credentials whose (synchronous) token fetch takes a while, like MSAL's."""

    def __init__(self, lifetime: float = 3600, app_id: str = APP_A) -> None:
        self.microsoft_app_id = app_id
        self.lifetime = lifetime
        self.threads: list[int] = []
        self.fail = False

    def get_access_token(self, force_refresh: bool = False) -> str:
        self.threads.append(threading.get_ident())
        time.sleep(0.1)
        if self.fail:
            raise PermissionError("AAD is down")
        exp = int(time.time() + self.lifetime)
        return jwt.encode({"exp": exp, "n": len(self.threads)}, "k" * 32, algorithm="HS256")


async def test_tokens_are_fetched_off_the_loop_once_for_concurrent_callers() -> None:
    credentials = SlowCredentials()
    source = TokenSource(credentials)
    ticks = 0

    async def heartbeat() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.001)

    beat = asyncio.create_task(heartbeat())
    tokens = await asyncio.gather(*(source.token() for _ in range(10)))
    during = ticks
    beat.cancel()
    assert len(set(tokens)) == 1 and source.fetches == 1
    assert credentials.threads and threading.get_ident() not in credentials.threads
    assert during >= 5  # the loop kept running during the 100 ms fetch (a blocking fetch gives 1)


async def test_a_token_is_reused_until_near_expiry_then_refreshed() -> None:
    now = [time.time()]
    source = TokenSource(SlowCredentials(lifetime=3600), clock=lambda: now[0])
    first = await source.token()
    now[0] += 3600 - 301
    assert await source.token() == first
    now[0] += 2
    assert await source.token() != first
    assert source.fetches == 2


async def test_a_token_already_inside_the_margin_is_kept_for_half_its_remaining_life() -> None:
    """MSAL counts expiry from when it received the token, we from its exp claim: in the second or so
    between, MSAL hands back the old token, which we keep for half of what it has left, not refetch per call."""
    now = [time.time()]
    credentials = SlowCredentials(lifetime=3600)
    source = TokenSource(credentials, clock=lambda: now[0])
    first = await source.token()
    exp = claims_of(first)["exp"]
    credentials.get_access_token = lambda force_refresh=False: first  # type: ignore[method-assign]
    now[0] = exp - 299
    assert await source.token() == first and source.fetches == 2
    now[0] += 149
    assert await source.token() == first and source.fetches == 2
    now[0] += 1
    assert await source.token() == first and source.fetches == 3


async def test_a_failed_refresh_keeps_a_still_valid_token() -> None:
    now = [time.time()]
    credentials = SlowCredentials(lifetime=3600)
    source = TokenSource(credentials, clock=lambda: now[0])
    first = await source.token()
    credentials.fail = True
    now[0] += 3600 - 200
    assert await source.token() == first
    now[0] += 200
    with pytest.raises(PermissionError):
        await source.token()


async def test_anonymous_credentials_send_no_token() -> None:
    assert TokenSource(SlowCredentials(app_id="")).anonymous
    assert TokenSource(SlowCredentials(app_id="AnonymousSkill")).anonymous
    assert not TokenSource(SlowCredentials()).anonymous
