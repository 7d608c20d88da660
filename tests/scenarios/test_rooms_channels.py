"""Rooms in private and shared channels, through Microsoft Graph (the fake Graph server)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import pytest

from core.db import Database
from tests import fixtures
from tests.fakes.connector import FakeConnector
from tests.fakes.graph import FakeGraph
from tests.scenarios.conftest import BASE_SETTINGS, Clock, Harness, serving, with_graph_settings
from tests.scenarios.rooms_support import in_thread, open_room, rows


@pytest.fixture
async def graph() -> AsyncIterator[FakeGraph]:
    async with FakeGraph() as fake:
        for aad_id, user_type, upn in fixtures.directory():
            fake.add_user(aad_id, user_type=user_type, upn=upn)
        yield fake


@pytest.fixture
async def with_graph(db: Database, connector: FakeConnector, graph: FakeGraph, clock: Clock) -> AsyncIterator[Harness]:
    settings = with_graph_settings(BASE_SETTINGS, graph)
    async with serving(settings, connector, db, clock=clock) as running:
        yield running


async def test_a_private_channel_through_graph(with_graph: Harness, graph: FakeGraph, db: Database) -> None:
    result = await open_room(with_graph, "room open Op Heron --channel private --purpose 'Covert phase'")
    [created] = graph.graph_requests("/channels")
    assert created.json["membershipType"] == "private" and created.json["displayName"] == "Op Heron"
    assert created.json["members"][0]["roles"] == ["owner"]
    assert fixtures.OFFICER_AAD in created.json["members"][0]["user@odata.bind"]
    assert fixtures.TEAM_AAD_GROUP_ID in created.path
    [room] = rows(db, "SELECT key, space_kind, conversation_id FROM room")
    assert room[0] == "OP-HERON" and room[1] == "private" and room[2].startswith("19:")
    assert "new private channel" in result.texts[0]
    # A command in any thread of that channel acts on the room.
    status = await with_graph.send(in_thread(with_graph, f"{room[2]};messageid=123", "room status"))
    assert status.replies[0]["attachments"][0]["content"]["body"][1]["text"] == "Op Heron: status"


async def test_without_the_group_id_in_channel_data_the_team_is_looked_up_through_the_connector(
    with_graph: Harness, graph: FakeGraph, db: Database
) -> None:
    # Some Teams clients send channelData.team without aadGroupId; Graph needs it.
    data = fixtures.load("channel_message_mention", service_url=with_graph.connector.url)["channelData"]
    del data["team"]["aadGroupId"]
    result = await open_room(with_graph, "room open Op Heron --channel private", channelData=data)
    [lookup] = [r for r in with_graph.connector.requests if r.method == "GET" and "/v3/teams/" in r.path]
    assert lookup.raw_path.endswith(quote(fixtures.TEAM_ID, safe=""))
    [created] = graph.graph_requests("/channels")
    assert fixtures.TEAM_AAD_GROUP_ID in created.path
    assert rows(db, "SELECT key, space_kind FROM room") == [("OP-HERON", "private")]
    assert "new private channel" in result.texts[0]


@pytest.mark.parametrize(
    ("status", "answer"),
    [(404, "Teams does not know this team any more (is Opsroom still installed in it?)."),
     (500, "Teams is not answering just now; try again in a few minutes.")],
)  # fmt: skip
async def test_a_team_the_connector_cannot_look_up_is_refused_and_nothing_is_created(
    with_graph: Harness, graph: FakeGraph, db: Database, status: int, answer: str
) -> None:
    data = fixtures.load("channel_message_mention", service_url=with_graph.connector.url)["channelData"]
    del data["team"]["aadGroupId"]
    with_graph.connector.fail_next(9, status, path_contains="/v3/teams/", code="Failed")
    result = await open_room(with_graph, "room open Op Heron --channel private", channelData=data)
    assert result.texts == [answer]
    assert graph.graph_requests("/channels") == []
    assert rows(db, "SELECT key, status FROM room") == [("OP-HERON", "cancelled")]  # reserved, never shown
    event = with_graph.audit()[-1]
    assert (event["action"], event["outcome"]) == ("room.open", "refused")


async def test_a_shared_channel_that_graph_creates_as_an_operation_becomes_the_room(
    with_graph: Harness, graph: FakeGraph, db: Database
) -> None:
    graph.async_shared_channels, graph.operation_polls = True, 0
    result = await open_room(with_graph, "room open Op Heron --channel shared")
    [channel] = graph.channels[fixtures.TEAM_AAD_GROUP_ID]
    assert len(graph.graph_requests("/operations/")) == 1
    assert rows(db, "SELECT key, space_kind, conversation_id FROM room") == [("OP-HERON", "shared", channel["id"])]
    assert "new shared channel" in result.texts[0]


@pytest.mark.parametrize(
    ("arrange", "answer"),
    [
        (lambda g: g.channels.setdefault(fixtures.TEAM_AAD_GROUP_ID, []).append(
            {"id": "19:x@thread.tacv2", "displayName": "op heron", "membershipType": "standard"}),
         "This team already has a channel called “Op Heron”: choose another name."),
        (lambda g: g.fail_next(1, 403, path_contains="/channels"),
         "Opsroom's Microsoft Graph app may not create channels in this team (it needs Channel.Create)."),
        (lambda g: g.fail_next(9, 503, retry_after=0, path_contains="/channels"),
         "Microsoft Graph is not answering just now; try again in a few minutes."),
        (lambda g: setattr(g, "async_shared_channels", True) or setattr(g, "operation_outcome", "failed")
         or setattr(g, "operation_polls", 0),
         "Teams would not create the shared channel: Failed to create the shared channel."),
    ],
    ids=["name-taken", "forbidden", "graph-down", "operation-failed"],
)  # fmt: skip
async def test_a_channel_graph_will_not_create_is_refused_and_leaves_no_room(
    with_graph: Harness, graph: FakeGraph, db: Database, arrange: Any, answer: str
) -> None:
    arrange(graph)
    result = await open_room(with_graph, "room open Op Heron --channel shared")
    assert result.texts == [answer]
    assert rows(db, "SELECT key, status FROM room") == [("OP-HERON", "cancelled")]  # reserved, never shown
    assert not with_graph.connector.activities()[:-1]
    event = with_graph.audit()[-1]
    assert (event["action"], event["outcome"]) == ("room.open", "refused")


async def test_a_channel_room_name_over_fifty_characters_is_refused_before_graph(
    with_graph: Harness, graph: FakeGraph, db: Database
) -> None:
    result = await open_room(with_graph, f"room open {'Operation Lantern ' * 3} --channel private")
    assert result.texts[0].startswith("Teams channel names are at most 50 characters (this one is 53)")
    assert graph.graph_requests("/channels") == [] and rows(db, "SELECT key FROM room") == []


async def open_private(harness: Harness, db: Database) -> str:
    await open_room(harness, "room open Op Heron --channel private")
    [(channel,)] = rows(db, "SELECT conversation_id FROM room")
    return str(channel)


async def test_a_channel_rooms_new_lead_becomes_an_owner_of_its_channel(
    with_graph: Harness, graph: FakeGraph, db: Database
) -> None:
    channel = await open_private(with_graph, db)
    result = await with_graph.send(in_thread(with_graph, f"{channel};messageid=7", "room lead ben.officer@opsroom.example"))
    assert result.texts == ["PC Ben Officer now leads **OP-HERON**."]
    owners = {m["userId"] for m in graph.channel_members[channel] if "owner" in m["roles"]}
    assert owners == {fixtures.OFFICER_AAD, fixtures.OFFICER2_AAD}  # the former lead stays an owner
    event = with_graph.audit()[-1]
    assert (event["action"], event["outcome"]) == ("room.lead", "ok")
    assert event["detail"] == "channel owner added; identity: member of the force (Graph userType Member)"
    assert rows(db, "SELECT lead_aad_id FROM room") == [(fixtures.OFFICER2_AAD,)]


async def test_when_graph_will_not_make_the_lead_an_owner_the_lead_still_changes_and_says_so(
    with_graph: Harness, graph: FakeGraph, db: Database
) -> None:
    channel = await open_private(with_graph, db)
    graph.fail_next(1, 403, path_contains="/members")
    result = await with_graph.send(in_thread(with_graph, f"{channel};messageid=7", "room lead ben.officer@opsroom.example"))
    assert result.texts == [
        "PC Ben Officer now leads **OP-HERON**. I could not make them an owner of the room's channel"
        " (Opsroom's Graph app lacks the ChannelMember.ReadWrite.All permission); a channel owner can."
    ]
    assert rows(db, "SELECT lead_aad_id FROM room") == [(fixtures.OFFICER2_AAD,)]
    detail = with_graph.audit()[-1]["detail"]
    assert detail.startswith("channel owner not set: Opsroom's Graph app lacks the ChannelMember.ReadWrite.All "
                             "permission; identity: ")


async def test_a_thread_rooms_new_lead_needs_no_graph(with_graph: Harness, graph: FakeGraph, db: Database) -> None:
    await open_room(with_graph)
    thread = str([r for r in with_graph.connector.requests if r.kind == "create"][-1].response["id"])
    result = await with_graph.send(in_thread(with_graph, thread, "room lead ben.officer@opsroom.example"))
    assert result.texts == ["PC Ben Officer now leads **OP-LANTERN**."]
    assert graph.graph_requests("/members") == []
