"""Self-tests for the fake connector's Teams-side refusals (``tests.fakes.connector_limits``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import quote

import aiohttp
import pytest_asyncio

from tests.fakes.connector import FakeConnector

THREAD = "19:ops@thread.tacv2;messageid=1700000000001"
OTHER = "19:other@thread.tacv2;messageid=1700000000002"


@pytest_asyncio.fixture
async def connector() -> AsyncIterator[FakeConnector]:
    async with FakeConnector() as fake:
        yield fake


async def post(connector: FakeConnector, conversation_id: str, text: str = "hi") -> aiohttp.ClientResponse:
    url = f"{connector.url}v3/conversations/{quote(conversation_id, safe='')}/activities"
    async with (
        aiohttp.ClientSession() as http,
        http.post(url, json={"type": "message", "text": text}) as resp,
    ):
        await resp.read()
        return resp


async def test_no_throttling_unless_asked(connector: FakeConnector) -> None:
    statuses = [(await post(connector, THREAD, str(n))).status for n in range(10)]
    assert statuses == [201] * 10
    assert connector.throttled_requests() == []


async def test_enforced_limits_throttle_one_conversation_with_retry_after(connector: FakeConnector) -> None:
    connector.enforce_rate_limits([(3, 60.0)])

    statuses = [(await post(connector, THREAD, str(n))).status for n in range(4)]
    throttled = await post(connector, THREAD, "again")
    elsewhere = await post(connector, OTHER, "other conversation")

    assert statuses == [201, 201, 201, 429]
    assert throttled.status == 429 and 1 <= int(throttled.headers["Retry-After"]) <= 60
    assert elsewhere.status == 201
    assert [a["text"] for a in connector.activities()] == ["0", "1", "2", "other conversation"]
    assert [r.conversation_id for r in connector.throttled_requests()] == [THREAD, THREAD]


async def test_app_limits_count_every_conversation(connector: FakeConnector) -> None:
    connector.enforce_rate_limits([(100, 60.0)], app_windows=[(3, 60.0)])

    statuses = [(await post(connector, f"19:c{n}@thread.tacv2", str(n))).status for n in range(4)]

    assert statuses == [201, 201, 201, 429]
    assert len(connector.throttled_requests()) == 1


async def test_a_refused_conversation_answers_its_status_until_accepted(connector: FakeConnector) -> None:
    connector.refuse_conversation(THREAD, 404)
    gone = await post(connector, THREAD)
    connector.refuse_conversation(OTHER, 403)
    blocked = await post(connector, OTHER)
    connector.accept_conversation(THREAD)
    back = await post(connector, THREAD, "back")

    assert (gone.status, blocked.status, back.status) == (404, 403, 201)
    codes = [r.response["error"]["code"] for r in connector.requests if r.status >= 400]
    assert codes == ["ConversationNotFound", "ConversationBlockedByUser"]
    assert [a["text"] for a in connector.activities()] == ["back"]
