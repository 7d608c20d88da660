"""Outbound calls over HTTP: pooled connector clients, one shared session, cached tokens, retries."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from aiohttp.test_utils import TestServer
from botbuilder.core import TurnContext

from bot.app import RUNTIME, Runtime, create_app
from tests import fixtures
from tests.fakes.connector import FakeConnector
from tests.fakes.openid import FakeOpenId, claims_of
from tests.scenarios.conftest import BASE_SETTINGS, Harness


class LifetimeOpenId(FakeOpenId):
    """The fake AAD, with a settable lifetime for the tokens it issues (3600 s like AAD by default)."""

    lifetime = 3600

    def _token_response(
        self, path: str, tenant: str, form: dict[str, str], headers: dict[str, str]
    ) -> tuple[int, dict[str, Any]]:
        status, body = super()._token_response(path, tenant, form, headers)
        if status == 200 and self.lifetime != 3600:
            claims = claims_of(body["access_token"])
            extra = {k: v for k, v in claims.items() if k not in ("aud", "iss", "exp", "nbf")}
            body["access_token"] = self.mint(audience=claims["aud"], issuer=claims["iss"],
                                             expires_in=self.lifetime, extra_claims=extra)  # fmt: skip
            body["expires_in"] = body["ext_expires_in"] = self.lifetime
        return status, body


@pytest.fixture
def openid() -> Iterator[FakeOpenId]:
    """Overrides the shared fixture (the secure harness uses it) with settable token lifetimes."""
    with LifetimeOpenId() as fake:
        yield fake


class ClientRecorder:
    """Stands in front of the bot and notes the clients the SDK put in each turn."""

    def __init__(self, runtime: Runtime) -> None:
        self.bot = runtime.bot
        self.adapter = runtime.adapter
        self.connector_clients: list[Any] = []
        self.user_token_clients: list[Any] = []
        runtime.bot = self  # type: ignore[assignment]

    async def on_turn(self, context: TurnContext) -> None:
        self.connector_clients.append(context.turn_state[self.adapter.BOT_CONNECTOR_CLIENT_KEY])
        self.user_token_clients.append(context.turn_state[self.adapter.USER_TOKEN_CLIENT_KEY])
        await self.bot.on_turn(context)


def runtime_of(harness: Harness) -> Runtime:
    return harness.server.app[RUNTIME]


def sign_in(harness: Harness, openid: FakeOpenId, connector: FakeConnector | None = None) -> None:
    harness.token = openid.mint(audience=fixtures.BOT_APP_ID, service_url=(connector or harness.connector).url)


async def test_one_connector_client_serves_every_turn_for_a_service_url(harness: Harness) -> None:
    recorder = ClientRecorder(runtime_of(harness))
    for _ in range(3):
        assert len((await harness.say("personal_message", "/help")).replies) == 1
    await asyncio.gather(*(harness.say("personal_message", "/help") for _ in range(5)))
    replies = harness.connector.activities()
    assert len(replies) == 8 and all("Commands you can run here" in r["text"] for r in replies)
    assert len(recorder.connector_clients) == 8
    assert len({id(c) for c in recorder.connector_clients}) == 1
    assert len({id(c) for c in recorder.user_token_clients}) == 1
    assert runtime_of(harness).outbound.connector_builds == 1


async def test_local_mode_replies_carry_no_authorization(harness: Harness) -> None:
    result = await harness.say("personal_message", "/help")
    [reply] = result.replies
    assert "Authorization" not in reply.request.headers
    assert "Microsoft-BotFramework" in reply.request.headers["User-Agent"]


async def test_each_service_url_has_its_own_client_and_replies_land_there(
    harness: Harness, other_connector: FakeConnector
) -> None:
    recorder = ClientRecorder(runtime_of(harness))
    first = await harness.say("personal_message", "/help")
    elsewhere = await harness.send(fixtures.load("personal_message", service_url=other_connector.url, text="/help"))
    again = await harness.say("personal_message", "/help")
    assert len(first.replies) == 1 and len(again.replies) == 1
    assert elsewhere.replies == []  # nothing reached the first connector
    [there] = other_connector.activities()
    assert "Commands you can run here" in there["text"]
    assert len(harness.connector.activities()) == 2
    a, b, c = recorder.connector_clients
    assert a is c and a is not b
    assert a.config.base_url == harness.connector.url and b.config.base_url == other_connector.url


async def test_a_threaded_conversation_id_is_sent_encoded_as_the_sdk_encodes_it(harness: Harness) -> None:
    result = await harness.say("channel_message_mention", "help")
    [reply] = result.replies
    assert reply.conversation_id == fixtures.THREAD_CONVERSATION_ID
    assert quote(fixtures.THREAD_CONVERSATION_ID, safe="") in reply.request.raw_path


async def test_with_an_app_id_many_turns_cost_one_token_request(
    secure_harness: Harness, openid: FakeOpenId
) -> None:
    sign_in(secure_harness, openid)
    recorder = ClientRecorder(runtime_of(secure_harness))
    await asyncio.gather(*(secure_harness.say("personal_message", "/help") for _ in range(4)))
    for _ in range(4):
        await secure_harness.say("personal_message", "/help")
    replies = secure_harness.connector.activities()
    assert len(replies) == 8
    assert len(openid.token_requests) == 1
    [request] = openid.token_requests
    assert request.client_id == fixtures.BOT_APP_ID
    assert request.scope == "https://api.botframework.com/.default"
    headers = {r.request.headers["Authorization"] for r in replies}
    assert len(headers) == 1
    [header] = headers
    scheme, token = header.split(" ", 1)
    claims = claims_of(token)
    assert scheme == "Bearer"
    assert (claims["appid"], claims["aud"]) == (fixtures.BOT_APP_ID, "https://api.botframework.com")
    assert len({id(c) for c in recorder.connector_clients}) == 1


async def test_a_token_near_expiry_is_refreshed(secure_harness: Harness, openid: FakeOpenId) -> None:
    assert isinstance(openid, LifetimeOpenId)
    # MSAL, and we, treat a token as expired 300 s before its exp. Three seconds more leaves the first
    # turn time to finish before either cache thinks its token near expiry.
    openid.lifetime = 303
    sign_in(secure_harness, openid)
    [first] = (await secure_harness.say("personal_message", "/help")).replies
    received_by = time.time()
    old = first.request.headers["Authorization"].split(" ", 1)[1]
    # Two clocks decide "near expiry": ours reads the token's exp claim, MSAL's own cache counts
    # expires_in from the whole second it received the reply in (at the latest, received_by). Between
    # the two, MSAL hands back the old token and ours keeps it for half its remaining life (tested
    # below), so wait past both.
    refresh_due = max(claims_of(old)["exp"] - 300, received_by + openid.lifetime - 300)
    await asyncio.sleep(max(0.0, refresh_due + 0.5 - time.time()))
    [second] = (await secure_harness.say("personal_message", "/help")).replies
    [third] = (await secure_harness.say("personal_message", "/help")).replies
    new = second.request.headers["Authorization"].split(" ", 1)[1]
    assert len(openid.token_requests) == 2
    assert new != old and claims_of(new)["exp"] > claims_of(old)["exp"]
    assert third.request.headers["Authorization"] == f"Bearer {new}"


async def test_with_an_app_id_each_service_url_gets_its_client_and_the_token(
    secure_harness: Harness, openid: FakeOpenId, other_connector: FakeConnector
) -> None:
    recorder = ClientRecorder(runtime_of(secure_harness))
    sign_in(secure_harness, openid)
    here = await secure_harness.say("personal_message", "/help")
    sign_in(secure_harness, openid, other_connector)
    await secure_harness.send(fixtures.load("personal_message", service_url=other_connector.url, text="/help"))
    [there] = other_connector.activities()
    [reply] = here.replies
    assert there.request.headers["Authorization"] == reply.request.headers["Authorization"]
    assert len(openid.token_requests) == 1  # one app id, one scope: one token for both
    assert recorder.connector_clients[0] is not recorder.connector_clients[1]


async def test_throttling_waits_for_retry_after_then_delivers(harness: Harness) -> None:
    harness.connector.fail_next(1, 429, retry_after=1, path_contains="/activities")
    result = await harness.say("personal_message", "/help")
    [reply] = result.replies
    [refused] = harness.connector.failed_requests()
    assert refused.status == 429
    assert reply.request.received_at - refused.received_at >= 1.0
    assert "Commands you can run here" in reply["text"]


async def test_a_503_is_retried(harness: Harness) -> None:
    harness.connector.fail_next(1, 503, path_contains="/activities")
    result = await harness.say("personal_message", "/help")
    [reply] = result.replies
    assert [r.status for r in harness.connector.failed_requests()] == [503]
    assert "Commands you can run here" in reply["text"]


async def test_a_client_error_is_not_retried(harness: Harness) -> None:
    harness.connector.fail_next(1, 400, path_contains="/activities")
    result = await harness.say("personal_message", "/help")
    assert result.replies == []
    assert [r.status for r in harness.connector.requests if r.kind in ("send", "reply")] == [400]


async def test_the_shared_session_is_closed_at_cleanup(db: Any, connector: FakeConnector) -> None:
    server = TestServer(create_app(BASE_SETTINGS, db=db), host="127.0.0.1", port=0)
    await server.start_server()
    runtime = server.app[RUNTIME]
    session = runtime.outbound.session
    assert not session.closed
    harness = Harness(server, connector, db)
    try:
        assert len((await harness.say("personal_message", "/help")).replies) == 1
        assert runtime.outbound.session is session  # the same session served the turn
    finally:
        await harness.close()
        await server.close()
    assert session.closed and runtime.outbound.closed
