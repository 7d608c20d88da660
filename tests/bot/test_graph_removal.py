"""Taking someone whose access ended out of a room's channel, against the fake Graph."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.graph import GraphClient
from bot.graph_guests import remove_channel_member, remove_guest
from tests.bot.test_graph import OTHER_USER, TEAM, USER, Clock, config_for
from tests.fakes.graph import FakeGraph

GUEST = "aaaaaaaa-0000-4000-8000-0000000000e1"
EXTERNAL_TENANT = "eeeeeeee-0000-4000-8000-0000000000a1"


@pytest.fixture
async def graph() -> AsyncIterator[FakeGraph]:
    async with FakeGraph(member_page_size=2) as fake:
        yield fake


@pytest.fixture
async def client(graph: FakeGraph) -> AsyncIterator[GraphClient]:
    async with GraphClient(config_for(graph), max_retry_sleep=0.01, clock=Clock()) as c:
        yield c


async def channel_with(client: GraphClient, graph: FakeGraph, kind: str, *members: str) -> str:
    """A channel owned by USER, with these members added (object ids), as admitting them would."""
    created = await client.create_channel(team_id=TEAM, name=f"OP-HERON {kind}", description="",
                                          membership_type=kind, owner_aad_id=USER)  # fmt: skip
    channel = str(created["id"])
    for user in members:
        graph.channel_members[channel].append({"id": f"MCMj-{user}", "userId": user, "roles": [], "email": None})
    return channel


def user_ids(graph: FakeGraph, channel: str) -> list[str]:
    return [m["userId"] for m in graph.channel_members[channel]]


async def test_the_member_is_found_on_a_later_page_and_deleted(graph: FakeGraph, client: GraphClient) -> None:
    channel = await channel_with(client, graph, "private", OTHER_USER, "x-1", "x-2", GUEST)

    taken = await remove_channel_member(client, team_id=TEAM, channel_id=channel, user_ids=["unknown", GUEST.upper()])
    again = await remove_channel_member(client, team_id=TEAM, channel_id=channel, user_ids=[GUEST])

    assert (taken, again) == ("removed", "absent")
    assert user_ids(graph, channel) == [USER, OTHER_USER, "x-1", "x-2"]
    [delete] = [r for r in graph.graph_requests() if r.method == "DELETE"]
    assert delete.path == f"/v1.0/teams/{TEAM}/channels/{channel}/members/MCMj-{GUEST}"


async def test_an_external_member_of_a_shared_channel_is_found_by_email(graph: FakeGraph, client: GraphClient) -> None:
    channel = await channel_with(client, graph, "shared")
    graph.channel_members[channel].append({"id": "MCMj-ext", "userId": "their-own-id", "roles": [],
                                           "email": "Nia@NHS.example", "tenantId": EXTERNAL_TENANT})  # fmt: skip

    taken = await remove_guest(client, group_id=TEAM, channel_id=channel, user_ids=[], email="nia@nhs.example")

    assert (taken.outcome, taken.detail) == ("removed", "taken out of the room's channel")
    assert user_ids(graph, channel) == [USER]


async def test_refusals_come_back_as_the_problem_and_a_gone_channel_as_absent(
    graph: FakeGraph, client: GraphClient
) -> None:
    channel = await channel_with(client, graph, "private", GUEST)
    graph.fail_next(1, 403, path_contains="/members")

    refused = await remove_guest(client, group_id=TEAM, channel_id=channel, user_ids=[GUEST], email="g@x.example")
    gone = await remove_guest(client, group_id=TEAM, channel_id="19:gone@thread.tacv2", user_ids=[GUEST],
                              email="g@x.example")  # fmt: skip

    assert refused.outcome is None
    assert refused.detail == ("Graph refused taking them out of the room's channel (403 Authorization_RequestDenied): "
                              "the app needs ChannelMember.ReadWrite.All")
    assert (gone.outcome, gone.detail) == ("absent", "the room's channel is gone")
    assert GUEST in user_ids(graph, channel)
