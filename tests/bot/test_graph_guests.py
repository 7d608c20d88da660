"""Letting partner-agency guests into a room's team and channel, against the fake Graph."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs

import pytest
from botbuilder.core import TurnContext
from botbuilder.core.adapters import TestAdapter
from botbuilder.schema import Activity

from bot.graph import GraphClient
from bot.graph_guests import NO_TENANT, admit_guest, find_user_by_email
from bot.teams import TurnTeams
from tests.bot.test_graph import OTHER_USER, TEAM, USER, Clock, config_for
from tests.fakes.graph import FakeGraph

EMAIL = "nia@nhs.net"
AGENCY_TENANT = "eeeeeeee-0000-4000-8000-0000000000a1"
OTHER_TENANT = "eeeeeeee-0000-4000-8000-0000000000a2"
GUEST = "aaaaaaaa-0000-4000-8000-0000000000e1"  # a guest account seeded in the directory
MEMBER_TYPE = "#microsoft.graph.aadUserConversationMember"


@pytest.fixture
async def graph() -> AsyncIterator[FakeGraph]:
    async with FakeGraph(known_users=[USER, OTHER_USER]) as fake:
        yield fake


@pytest.fixture
async def client(graph: FakeGraph) -> AsyncIterator[GraphClient]:
    async with GraphClient(config_for(graph), max_retry_sleep=0.01, clock=Clock()) as c:
        yield c


async def channel(client: GraphClient, kind: str) -> str:
    created = await client.create_channel(
        team_id=TEAM, name=f"OP-LANTERN {kind}", description="", membership_type=kind, owner_aad_id=USER
    )
    return str(created["id"])


async def admit(client: GraphClient, kind: str, channel_id: str | None = None, *, email: str = EMAIL,
                tenants: tuple[str, ...] = ()) -> Any:  # fmt: skip
    return await admit_guest(client, email=email, agency_tenants=tenants, group_id=TEAM, channel_id=channel_id,
                             space_kind=kind)  # fmt: skip


def after_setup(graph: FakeGraph) -> list[tuple[str, str]]:
    """The Graph calls admitting made (method, path), leaving out the channel the test created."""
    calls = [(r.method, r.path) for r in graph.graph_requests()]
    return [c for c in calls if c != ("POST", f"/v1.0/teams/{TEAM}/channels")]


# ---------------------------------------------------------------- private channel


async def test_a_new_guest_is_invited_then_added_to_the_team_then_the_private_channel(
    graph: FakeGraph, client: GraphClient
) -> None:
    channel_id = await channel(client, "private")
    access = await admit(client, "private", channel_id)

    [invited] = [u for u in graph.users.values() if u.get("mail") == EMAIL]
    assert access.email == EMAIL
    assert access.done == ("invited (B2B)", "added to the team", "added to the private channel")
    assert access.problem is None
    assert access.user_id == invited["id"]
    assert invited["userType"] == "Guest"
    assert invited["userPrincipalName"] == "nia_nhs.net#EXT#@fakeforce.onmicrosoft.com"

    members = f"/v1.0/teams/{TEAM}/channels/{channel_id}/members"
    assert after_setup(graph) == [("GET", "/v1.0/users"), ("POST", "/v1.0/invitations"),
                                  ("POST", f"/v1.0/teams/{TEAM}/members"), ("POST", members)]  # fmt: skip
    invitation, team, private = [r.json for r in graph.graph_requests() if r.method == "POST"][1:]
    assert invitation == {"invitedUserEmailAddress": EMAIL, "inviteRedirectUrl": "https://teams.microsoft.com",
                          "sendInvitationMessage": True, "invitedUserType": "Guest"}  # fmt: skip
    bind = f"https://graph.microsoft.com/v1.0/users('{invited['id']}')"
    assert team == {"@odata.type": MEMBER_TYPE, "roles": ["guest"], "user@odata.bind": bind}
    assert private == {"@odata.type": MEMBER_TYPE, "roles": [], "user@odata.bind": bind}
    assert [m["userId"] for m in graph.team_members[TEAM]] == [invited["id"]]
    assert [m["userId"] for m in graph.channel_members[channel_id]] == [USER, invited["id"]]


async def test_the_lookup_asks_for_mail_or_other_mails_as_an_advanced_query(
    graph: FakeGraph, client: GraphClient
) -> None:
    address = "o'neil+duty@nhs.net"  # a quote to double, a plus that must not become a space
    graph.add_user(GUEST, user_type="Guest", upn="oneil_nhs.net#EXT#@fakeforce.onmicrosoft.com", mail=None)
    graph.users[GUEST]["otherMails"] = [address.upper()]
    found = await find_user_by_email(client, address)
    assert found is not None and (found.id, found.guest) == (GUEST, True)
    [lookup] = graph.graph_requests("/users")
    assert lookup.headers["ConsistencyLevel"] == "eventual"
    query = parse_qs(lookup.query)
    assert query["$filter"] == ["mail eq 'o''neil+duty@nhs.net' or otherMails/any(x:x eq 'o''neil+duty@nhs.net')"]
    assert query["$count"] == ["true"]
    assert await find_user_by_email(client, "someone.else@nhs.net") is None


async def test_an_existing_guest_account_is_found_and_not_invited_again(
    graph: FakeGraph, client: GraphClient
) -> None:
    graph.add_user(GUEST, user_type="Guest", upn="nia_nhs.net#EXT#@fakeforce.onmicrosoft.com", mail="Nia@NHS.net")
    channel_id = await channel(client, "private")
    access = await admit(client, "private", channel_id)
    assert access.done == ("guest account found", "added to the team", "added to the private channel")
    assert (access.problem, access.user_id) == (None, GUEST)
    assert graph.graph_requests("/invitations") == []
    assert graph.invitations == []
    assert [m["userId"] for m in graph.team_members[TEAM]] == [GUEST]


async def test_already_a_member_of_the_team_and_channel_counts_as_done(
    graph: FakeGraph, client: GraphClient
) -> None:
    channel_id = await channel(client, "private")
    first = await admit(client, "private", channel_id)
    again = await admit(client, "private", channel_id)
    assert again.done == ("guest account found", "already in the team", "already in the private channel")
    assert (again.problem, again.user_id) == (None, first.user_id)
    assert [r.status for r in graph.graph_requests("/members")][-2:] == [409, 409]
    assert len(graph.team_members[TEAM]) == 1 and len(graph.invitations) == 1


# ---------------------------------------------------------------- failures stop at the first refusal


async def test_a_refused_invitation_is_the_problem_and_nothing_more_is_tried(
    graph: FakeGraph, client: GraphClient
) -> None:
    channel_id = await channel(client, "private")
    graph.fail_next(1, 403, path_contains="/invitations")
    access = await admit(client, "private", channel_id)
    assert access.done == ()
    assert access.problem == "Graph refused the invitation (403 Authorization_RequestDenied): the app needs User.Invite.All"
    assert access.user_id is None
    assert after_setup(graph) == [("GET", "/v1.0/users"), ("POST", "/v1.0/invitations")]
    assert graph.team_members == {}


async def test_a_refused_team_membership_keeps_what_was_done_and_the_account(
    graph: FakeGraph, client: GraphClient
) -> None:
    channel_id = await channel(client, "private")
    graph.fail_next(1, 404, path_contains=f"/teams/{TEAM}/members")
    access = await admit(client, "private", channel_id)
    assert access.done == ("invited (B2B)",)
    assert access.user_id == graph.invitations[0]["invitedUser"]["id"]
    assert access.problem is not None
    assert access.problem.startswith("Graph refused adding them to the team (404 Request_ResourceNotFound): ")
    assert "a new guest can take a few minutes to appear" in access.problem
    assert graph.graph_requests("/channels/") == []


async def test_a_refused_lookup_names_the_permission(graph: FakeGraph, client: GraphClient) -> None:
    graph.fail_next(1, 403, path_contains="/users")
    access = await admit(client, "thread")
    assert access.problem == ("Graph refused the directory lookup (403 Authorization_RequestDenied): "
                              "the app needs User.Read.All")  # fmt: skip
    assert graph.graph_requests("/invitations") == []


# ---------------------------------------------------------------- throttling


async def test_a_throttled_invitation_is_retried_after_retry_after_and_succeeds(graph: FakeGraph) -> None:
    graph.fail_next(1, 429, retry_after=1, path_contains="/invitations")
    async with GraphClient(config_for(graph), max_retry_sleep=5) as patient:
        started = time.monotonic()
        access = await admit(patient, "thread")
        waited = time.monotonic() - started
    assert access.problem is None
    assert access.done[0] == "invited (B2B)"
    assert [r.status for r in graph.graph_requests("/invitations")] == [429, 201]
    assert waited >= 0.9  # it waited the second Graph asked for before trying again
    assert len(graph.invitations) == 1


async def test_throttling_that_outlasts_the_retries_is_a_plain_problem(graph: FakeGraph, client: GraphClient) -> None:
    graph.fail_next(10, 429, retry_after=0, path_contains="/invitations")
    access = await admit(client, "thread")
    assert access.problem == ("Microsoft Graph is too busy just now (the invitation was not done); "
                              "try again in a few minutes")  # fmt: skip
    assert len(graph.graph_requests("/invitations")) == 4  # the first try and three retries


# ---------------------------------------------------------------- thread rooms


async def test_a_thread_room_adds_the_guest_to_the_team_only_and_says_the_team_sees_it(
    graph: FakeGraph, client: GraphClient
) -> None:
    access = await admit(client, "thread")
    assert access.problem is None
    assert access.done[0] == "invited (B2B)"
    assert access.done[1].startswith("added to the team, which sees every thread in its standard channels")
    assert "private channel room is advised" in access.done[1]
    assert after_setup(graph) == [("GET", "/v1.0/users"), ("POST", "/v1.0/invitations"),
                                  ("POST", f"/v1.0/teams/{TEAM}/members")]  # fmt: skip


# ---------------------------------------------------------------- shared channels (B2B direct connect)


async def test_a_shared_channel_takes_the_agencys_own_tenant_user(graph: FakeGraph, client: GraphClient) -> None:
    channel_id = await channel(client, "shared")
    access = await admit(client, "shared", channel_id, tenants=(AGENCY_TENANT,))
    assert access.done == ("added to the shared channel",)
    assert (access.problem, access.user_id) == (None, None)  # no account in the force's directory
    [sent] = [r for r in graph.graph_requests("/members") if r.method == "POST"]
    assert sent.path == f"/v1.0/teams/{TEAM}/channels/{channel_id}/members"
    assert sent.json == {"@odata.type": MEMBER_TYPE, "roles": [],
                         "user@odata.bind": f"https://graph.microsoft.com/v1.0/users('{EMAIL}')",
                         "tenantId": AGENCY_TENANT}  # fmt: skip
    assert graph.graph_requests("/users") == graph.graph_requests("/invitations") == []
    assert graph.team_members == {}
    external = graph.channel_members[channel_id][-1]
    assert (external["email"], external["tenantId"]) == (EMAIL, AGENCY_TENANT)
    again = await admit(client, "shared", channel_id, tenants=(AGENCY_TENANT,))
    assert (again.done, again.problem) == (("already in the shared channel",), None)


async def test_a_shared_channel_without_an_agency_tenant_is_a_problem_and_calls_nothing(
    graph: FakeGraph, client: GraphClient
) -> None:
    channel_id = await channel(client, "shared")
    access = await admit(client, "shared", channel_id)
    assert access.done == ()
    assert access.problem == NO_TENANT
    assert NO_TENANT.startswith("a shared channel takes people from the agency's own Microsoft 365 tenant")
    assert after_setup(graph) == []


async def test_each_agency_tenant_is_tried_until_one_has_the_user(graph: FakeGraph, client: GraphClient) -> None:
    channel_id = await channel(client, "shared")
    graph.external_users = {OTHER_TENANT: {"someone@council.gov.uk"}, AGENCY_TENANT: {EMAIL}}
    access = await admit(client, "shared", channel_id, tenants=(OTHER_TENANT, AGENCY_TENANT))
    assert (access.done, access.problem) == (("added to the shared channel",), None)
    posts = [r for r in graph.graph_requests("/members") if r.method == "POST"]
    assert [(p.json or {})["tenantId"] for p in posts] == [OTHER_TENANT, AGENCY_TENANT]
    assert [p.status for p in posts] == [404, 201]
    nobody = await admit(client, "shared", channel_id, email="ghost@nhs.net", tenants=(OTHER_TENANT,))
    assert nobody.done == ()
    assert nobody.problem is not None and nobody.problem.startswith("the agency's registered tenant has no user")


async def test_a_refused_direct_connect_names_what_to_allow(graph: FakeGraph, client: GraphClient) -> None:
    channel_id = await channel(client, "shared")
    graph.fail_next(1, 403, path_contains="/members")
    access = await admit(client, "shared", channel_id, tenants=(AGENCY_TENANT,))
    assert access.problem is not None
    assert access.problem.startswith("Graph refused adding them to the shared channel (403 Authorization_RequestDenied)")
    assert "B2B direct connect" in access.problem


async def test_the_fake_keeps_other_tenants_users_out_of_private_channels(
    graph: FakeGraph, client: GraphClient
) -> None:
    channel_id = await channel(client, "private")
    access = await admit_guest(client, email=EMAIL, agency_tenants=(AGENCY_TENANT,), group_id=TEAM,
                               channel_id=channel_id, space_kind="shared")  # fmt: skip
    assert access.problem is not None and "(400 BadRequest)" in access.problem


# ---------------------------------------------------------------- programming errors still raise


async def test_bad_arguments_raise(graph: FakeGraph, client: GraphClient) -> None:
    with pytest.raises(ValueError, match="space_kind"):
        await admit(client, "standard")
    with pytest.raises(ValueError):
        await admit(client, "thread", email="not an address")
    with pytest.raises(ValueError):
        await admit(client, "shared", "19:x@thread.tacv2", tenants=("not-a-guid",))
    assert graph.requests == []


# ---------------------------------------------------------------- the turn's Teams


def turn(graph_client: GraphClient | None) -> TurnTeams:
    activity = Activity(type="message", channel_id="msteams",
                        channel_data={"team": {"id": "19:team@thread.tacv2", "aadGroupId": TEAM}})  # fmt: skip
    return TurnTeams(TurnContext(TestAdapter(), activity), graph_client, identity=None)  # type: ignore[arg-type]


async def test_the_turn_admits_into_the_team_its_activity_names(graph: FakeGraph, client: GraphClient) -> None:
    channel_id = await channel(client, "private")
    access = await turn(client).admit_guest(email=EMAIL, agency_tenants=(), team_id="19:team@thread.tacv2",
                                            channel_id=channel_id, space_kind="private")  # fmt: skip
    assert access.done == ("invited (B2B)", "added to the team", "added to the private channel")
    assert len(graph.team_members[TEAM]) == 1


async def test_the_turn_answers_with_a_problem_rather_than_raising(client: GraphClient) -> None:
    no_team = await turn(client).admit_guest(email=EMAIL, agency_tenants=(), team_id="", channel_id=None,
                                             space_kind="thread")  # fmt: skip
    assert no_team.problem == "rooms are opened from a team channel"
    no_graph = await turn(None).admit_guest(email=EMAIL, agency_tenants=(), team_id="19:team@thread.tacv2",
                                            channel_id=None, space_kind="thread")  # fmt: skip
    assert no_graph.problem == "Microsoft Graph is not configured"
