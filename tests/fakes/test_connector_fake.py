"""Self-tests for the fake Bot Connector (``tests.fakes.connector``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from urllib.parse import quote

import aiohttp
import pytest
import pytest_asyncio
import requests
import yarl
from botbuilder.schema import Activity, ActivityTypes, ChannelAccount, ConversationAccount
from botframework.connector.aio import ConnectorClient
from botframework.connector.auth import MicrosoftAppCredentials
from botframework.connector.models import ErrorResponseException
from botframework.connector.teams import TeamsConnectorClient

from tests.fakes.connector import FakeConnector, PostedActivity
from tests.fixtures import (
    BOT_ID,
    GENERAL_CHANNEL_ID,
    GUEST_AAD,
    HOME_TENANT,
    OFFICER_AAD,
    OFFICER_ID,
    PERSONAL_CONVERSATION_ID,
    TEAM_AAD_GROUP_ID,
    TEAM_ID,
    TEAM_NAME,
    THREAD_CONVERSATION_ID,
    member,
    team_members,
)

THREAD = THREAD_CONVERSATION_ID


def conv_path(conversation_id: str) -> str:
    """How the SDK (msrest) puts a conversation id into a path."""
    return quote(conversation_id, safe="")


@pytest_asyncio.fixture
async def connector() -> AsyncIterator[FakeConnector]:
    async with FakeConnector() as fake:
        yield fake


@pytest_asyncio.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.mark.asyncio
async def test_connector_url_has_trailing_slash(connector: FakeConnector) -> None:
    assert connector.url.startswith("http://127.0.0.1:")
    assert connector.url.endswith("/")
    assert connector.port > 0


@pytest.mark.asyncio
async def test_send_reply_update_are_recorded_in_order(
    connector: FakeConnector, http: aiohttp.ClientSession
) -> None:
    base = f"{connector.url}v3/conversations/{conv_path(THREAD)}/activities"
    async with http.post(base, json={"type": "message", "text": "one"}) as resp:
        assert resp.status == 201
        first_id = (await resp.json())["id"]
    async with http.post(f"{base}/{first_id}", json={"type": "message", "text": "two"}) as resp:
        assert resp.status == 201
        reply_id = (await resp.json())["id"]
    async with http.put(f"{base}/{first_id}", json={"type": "message", "text": "one (edited)"}) as resp:
        assert resp.status == 200
        assert await resp.json() == {"id": first_id}

    assert first_id != reply_id
    sent = connector.activities()
    assert [a["text"] for a in sent] == ["one", "two", "one (edited)"]
    assert [a.kind for a in sent] == ["send", "reply", "update"]
    assert all(isinstance(a, PostedActivity) and isinstance(a, dict) for a in sent)
    assert {a.conversation_id for a in sent} == {THREAD}
    assert sent[1].reply_to_id == first_id
    assert sent[2].is_update and sent[2].assigned_id == first_id
    assert sent[0].assigned_id == first_id
    rec = connector.requests[0]
    assert rec.method == "POST"
    assert rec.conversation_id == THREAD
    assert rec.path == f"/v3/conversations/{THREAD}/activities"
    assert rec.json == {"type": "message", "text": "one"}

    connector.clear()
    assert connector.requests == [] and connector.activities() == []


@pytest.mark.asyncio
async def test_unencoded_and_encoded_ids_decode_the_same(
    connector: FakeConnector, http: aiohttp.ClientSession
) -> None:
    cid = "a:1Ada=x@y;z"
    encoded = yarl_url(f"{connector.url}v3/conversations/{quote(cid, safe='')}/activities")
    async with http.post(encoded, json={"type": "typing"}) as resp:
        assert resp.status == 201
    assert "%3B" in connector.requests[0].raw_path  # arrived encoded, decoded for us
    raw = yarl_url(f"{connector.url}v3/conversations/{PERSONAL_CONVERSATION_ID}/activities")
    async with http.post(raw, json={"type": "typing"}) as resp:
        assert resp.status == 201
    assert [a.conversation_id for a in connector.activities()] == [cid, PERSONAL_CONVERSATION_ID]


def yarl_url(url: str) -> yarl.URL:
    """A URL aiohttp sends byte-for-byte (no re-quoting)."""
    return yarl.URL(url, encoded=True)


@pytest.mark.asyncio
async def test_create_conversation_new_channel_thread_and_personal(
    connector: FakeConnector, http: aiohttp.ClientSession
) -> None:
    body = {
        "isGroup": True,
        "channelData": {"channel": {"id": GENERAL_CHANNEL_ID}, "tenant": {"id": HOME_TENANT}},
        "activity": {"type": "message", "text": "new thread"},
        "bot": {"id": BOT_ID},
        "tenantId": HOME_TENANT,
    }
    async with http.post(f"{connector.url}v3/conversations", json=body) as resp:
        assert resp.status in (200, 201)
        created = await resp.json()
    assert created["id"] == f"{GENERAL_CHANNEL_ID};messageid={created['activityId']}"
    assert created["serviceUrl"] == connector.url

    personal = {"bot": {"id": BOT_ID}, "members": [{"id": OFFICER_ID}], "tenantId": HOME_TENANT}
    async with http.post(f"{connector.url}v3/conversations", json=personal) as resp:
        created2 = await resp.json()
    assert created2["id"].startswith("a:")

    sent = connector.activities()
    assert len(sent) == 1
    assert sent[0].kind == "create"
    assert sent[0]["text"] == "new thread"
    assert sent[0].conversation_id == created["id"]
    assert sent[0].assigned_id == created["activityId"]
    assert set(connector.conversations) == {created["id"], created2["id"]}


@pytest.mark.asyncio
async def test_wait_for_activities(connector: FakeConnector, http: aiohttp.ClientSession) -> None:
    url = f"{connector.url}v3/conversations/{conv_path(THREAD)}/activities"

    async def later() -> None:
        await asyncio.sleep(0.05)
        async with http.post(url, json={"type": "message", "text": "late"}):
            pass

    task = asyncio.create_task(later())
    got = await connector.wait_for_activities(1, timeout=2)
    await task
    assert got[0]["text"] == "late"

    with pytest.raises(AssertionError, match="expected at least 2 activities") as info:
        await connector.wait_for_activities(2, timeout=0.1)
    assert "late" in str(info.value)


@pytest.mark.asyncio
async def test_members_and_member_lookup(connector: FakeConnector, http: aiohttp.ClientSession) -> None:
    for m in team_members():
        connector.add_member(TEAM_ID, m)
    connector.set_team(TEAM_ID, TEAM_NAME, TEAM_AAD_GROUP_ID)

    # A channel thread resolves to the team roster.
    async with http.get(f"{connector.url}v3/conversations/{conv_path(THREAD)}/members") as resp:
        assert resp.status == 200
        members = await resp.json()
    assert [m["aadObjectId"] for m in members] == [m["aadObjectId"] for m in team_members()]

    async with http.get(
        f"{connector.url}v3/conversations/{conv_path(THREAD)}/members/{quote(OFFICER_ID)}"
    ) as resp:
        assert resp.status == 200
        assert (await resp.json())["aadObjectId"] == OFFICER_AAD
    # Teams also accepts the AAD object id.
    async with http.get(f"{connector.url}v3/conversations/{conv_path(TEAM_ID)}/members/{GUEST_AAD}") as resp:
        assert (await resp.json())["userRole"] == "guest"
    async with http.get(f"{connector.url}v3/conversations/{conv_path(TEAM_ID)}/members/29:nobody") as resp:
        assert resp.status == 404
        err = await resp.json()
    assert err["error"]["code"] == "MemberNotFoundInConversation"
    assert err["error"]["message"]


@pytest.mark.asyncio
async def test_paged_members(connector: FakeConnector, http: aiohttp.ClientSession) -> None:
    for m in team_members():
        connector.add_member(TEAM_ID, m)
    seen: list[str] = []
    token: str | None = None
    pages = 0
    while True:
        params = {"pageSize": "3"}
        if token:
            params["continuationToken"] = token
        async with http.get(
            f"{connector.url}v3/conversations/{conv_path(TEAM_ID)}/pagedmembers", params=params
        ) as r:
            assert r.status == 200
            page = await r.json()
        pages += 1
        assert set(page) == {"members", "continuationToken"}
        seen += [m["aadObjectId"] for m in page["members"]]
        token = page["continuationToken"]
        if not token:
            break
    assert pages == 2
    assert seen == [m["aadObjectId"] for m in team_members()]
    assert connector.requests[-1].query["continuationToken"] == "3"


@pytest.mark.asyncio
async def test_teams_routes(connector: FakeConnector, http: aiohttp.ClientSession) -> None:
    connector.set_team(
        TEAM_ID, TEAM_NAME, TEAM_AAD_GROUP_ID, [(TEAM_ID, None), ("19:incidents@thread.tacv2", "Incidents")]
    )
    async with http.get(f"{connector.url}v3/teams/{conv_path(TEAM_ID)}") as resp:
        details = await resp.json()
    assert (details["id"], details["name"], details["aadGroupId"]) == (TEAM_ID, TEAM_NAME, TEAM_AAD_GROUP_ID)
    async with http.get(f"{connector.url}v3/teams/{conv_path(TEAM_ID)}/conversations") as resp:
        chans = await resp.json()
    assert chans == {
        "conversations": [
            {"id": TEAM_ID, "name": None},
            {"id": "19:incidents@thread.tacv2", "name": "Incidents"},
        ]
    }
    async with http.get(f"{connector.url}v3/teams/19%3Aunknown%40thread.tacv2") as resp:
        assert resp.status == 404
        assert "error" in await resp.json()


@pytest.mark.asyncio
async def test_fail_next_429_then_5xx_then_success(
    connector: FakeConnector, http: aiohttp.ClientSession
) -> None:
    url = f"{connector.url}v3/conversations/{conv_path(THREAD)}/activities"
    connector.fail_next(1, 429, retry_after=2, path_contains="/activities")
    connector.fail_next(1, 503)
    async with http.post(url, json={"type": "message", "text": "x"}) as resp:
        assert resp.status == 429
        assert resp.headers["Retry-After"] == "2"
        assert (await resp.json())["error"]["code"] == "Throttled"
    async with http.post(url, json={"type": "message", "text": "x"}) as resp:
        assert resp.status == 503
        assert "Retry-After" not in resp.headers
        assert (await resp.json())["error"]["code"]
    async with http.post(url, json={"type": "message", "text": "x"}) as resp:
        assert resp.status == 201
    assert [r.failed for r in connector.requests] == [True, True, False]
    assert [r.status for r in connector.requests] == [429, 503, 201]
    assert len(connector.failed_requests()) == 2
    assert len(connector.activities()) == 1


@pytest.mark.asyncio
async def test_fail_next_path_filter(connector: FakeConnector, http: aiohttp.ClientSession) -> None:
    connector.add_member(TEAM_ID, member("officer"))
    connector.fail_next(2, 500, path_contains="/members")
    url = f"{connector.url}v3/conversations/{conv_path(THREAD)}"
    async with http.post(f"{url}/activities", json={"type": "message"}) as resp:
        assert resp.status == 201
    for _ in range(2):
        async with http.get(f"{url}/members") as resp:
            assert resp.status == 500
    async with http.get(f"{url}/members") as resp:
        assert resp.status == 200


@pytest.mark.asyncio
async def test_bad_json_is_400(connector: FakeConnector, http: aiohttp.ClientSession) -> None:
    url = f"{connector.url}v3/conversations/{conv_path(THREAD)}/activities"
    async with http.post(url, data=b"{not json", headers={"Content-Type": "application/json"}) as resp:
        assert resp.status == 400
        assert (await resp.json())["error"]["code"] == "BadSyntax"
    async with http.post(url, json=[1, 2]) as resp:
        assert resp.status == 400
    assert connector.activities() == []
    assert connector.requests[0].status == 400


@pytest.mark.asyncio
async def test_sdk_connector_client_against_fake(connector: FakeConnector) -> None:
    """The SDK's own REST client (msrest, URL-encodes ids) works against the fake."""
    for m in team_members():
        connector.add_member(TEAM_ID, m)
    connector.set_team(TEAM_ID, TEAM_NAME, TEAM_AAD_GROUP_ID)
    creds = MicrosoftAppCredentials.empty()
    client = ConnectorClient(creds, base_url=connector.url)
    activity = Activity(
        type=ActivityTypes.message,
        text="hello from sdk",
        from_property=ChannelAccount(id=BOT_ID),
        conversation=ConversationAccount(id=THREAD),
    )
    sent = await client.conversations.send_to_conversation(THREAD, activity)
    replied = await client.conversations.reply_to_activity(THREAD, sent.id, activity)
    updated = await client.conversations.update_activity(THREAD, sent.id, activity)
    assert updated.id == sent.id and replied.id
    officer = await client.conversations.get_conversation_member(THREAD, OFFICER_ID)
    assert (
        officer.additional_properties.get("aadObjectId") == OFFICER_AAD
        or officer.aad_object_id == OFFICER_AAD
    )
    paged = await client.conversations.get_conversation_paged_members(THREAD, page_size=2)
    assert len(paged.members) == 2 and paged.continuation_token == "2"
    with pytest.raises(ErrorResponseException):
        await client.conversations.get_conversation_member(THREAD, "29:nobody")

    # TeamsConnectorClient.teams.* is *blocking* (sync msrest/requests) although
    # awaited by TeamsInfo: this only works because the fake has its own thread.
    teams = TeamsConnectorClient(creds, base_url=connector.url)
    details = teams.teams.get_team_details(TEAM_ID)
    assert details.aad_group_id == TEAM_AAD_GROUP_ID
    channels = teams.teams.get_teams_channels(TEAM_ID)
    assert [c.id for c in channels.conversations] == [TEAM_ID]

    assert [a.conversation_id for a in connector.activities()] == [THREAD] * 3
    assert [a.kind for a in connector.activities()] == ["send", "reply", "update"]


def test_connector_sync_usage() -> None:
    with FakeConnector() as fake:
        resp = requests.post(
            f"{fake.url}v3/conversations/{conv_path(THREAD)}/activities",
            json={"type": "message", "text": "s"},
            timeout=5,
        )
        assert resp.status_code == 201
        assert fake.wait_for_activities_sync(1)[0]["text"] == "s"
        with pytest.raises(AssertionError):
            fake.wait_for_activities_sync(2, timeout=0.05)
