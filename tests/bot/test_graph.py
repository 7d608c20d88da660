"""The Graph client against the fake Graph: tokens, membership checks, channels, failures."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

import pytest

from bot.graph import GraphClient, GraphConfig, GraphError
from tests.fakes.graph import FakeGraph

USER = "aaaaaaaa-0000-4000-8000-000000000001"
OTHER_USER = "aaaaaaaa-0000-4000-8000-000000000002"
TEAM = "bbbbbbbb-0000-4000-8000-000000000001"
SUPERVISORS = "CCCCCCCC-0000-4000-8000-000000000001"


class Clock:
    """A monotonic clock the test moves by hand, so expiry needs no sleeping."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def config_for(graph: FakeGraph, *, secret: str | None = None) -> GraphConfig:
    return GraphConfig.from_values(
        graph.tenant_id,
        graph.client_id,
        graph.client_secret if secret is None else secret,
        graph_url=graph.graph_url,
        login_url=graph.login_url + "/",
    )


@pytest.fixture
async def graph() -> AsyncIterator[FakeGraph]:
    async with FakeGraph(known_users=[USER, OTHER_USER]) as fake:
        yield fake


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def client(graph: FakeGraph, clock: Clock) -> AsyncIterator[GraphClient]:
    async with GraphClient(config_for(graph), max_retry_sleep=0.01, clock=clock, operation_polls=[0.01] * 3) as c:
        yield c


def group(n: int) -> str:
    return f"dddddddd-0000-4000-8000-{n:012d}"


# ---------------------------------------------------------------- configuration


def test_config_is_configured_only_with_all_three_credentials() -> None:
    assert GraphConfig.from_values("t", "c", "s").configured
    assert not GraphConfig.from_values("t", "c", "").configured
    assert not GraphConfig.from_values(None, "c", "s").configured
    with pytest.raises(ValueError, match="client_secret"):
        GraphClient(GraphConfig.from_values("t", "c", None))


def test_config_defaults_to_public_cloud_and_masks_secret() -> None:
    config = GraphConfig.from_values(" t ", "c", "hunter2-secret", graph_url="", login_url=None)
    assert config.graph_url == "https://graph.microsoft.com/v1.0"
    assert config.login_url == "https://login.microsoftonline.com"
    assert config.tenant_id == "t"
    assert "hunter2-secret" not in repr(config)
    assert "client_secret='***'" in repr(config)


# ---------------------------------------------------------------- tokens


async def test_token_obtained_once_and_reused(graph: FakeGraph, client: GraphClient) -> None:
    graph.add_group_member(SUPERVISORS, USER)
    await client.member_groups(USER, [SUPERVISORS])
    await client.member_groups(OTHER_USER, [SUPERVISORS])
    assert graph.token_requests == 1
    calls = graph.graph_requests("checkMemberGroups")
    assert len(calls) == 2
    assert {c.bearer for c in calls} == {graph.issued_tokens[0]}
    token_form = graph.requests[0].form
    assert token_form is not None
    assert token_form["scope"] == "https://graph.microsoft.com/.default"
    assert token_form["grant_type"] == "client_credentials"


async def test_token_refreshed_shortly_before_expiry(
    graph: FakeGraph, client: GraphClient, clock: Clock
) -> None:
    await client.member_groups(USER, [SUPERVISORS])
    clock.now += 3000  # well inside the 3599 s lifetime: still cached
    await client.member_groups(USER, [SUPERVISORS])
    assert graph.token_requests == 1
    clock.now += 400  # within the early-refresh margin before expiry
    await client.member_groups(USER, [SUPERVISORS])
    assert graph.token_requests == 2
    bearers = [c.bearer for c in graph.graph_requests("checkMemberGroups")]
    assert bearers == [graph.issued_tokens[0], graph.issued_tokens[0], graph.issued_tokens[1]]


async def test_concurrent_calls_share_one_token_request(graph: FakeGraph, client: GraphClient) -> None:
    graph.add_group_member(SUPERVISORS, USER)
    results = await asyncio.gather(*(client.member_groups(USER, [SUPERVISORS]) for _ in range(10)))
    assert results == [{SUPERVISORS.lower()}] * 10
    assert graph.token_requests == 1


async def test_bad_secret_is_a_graph_error_and_graph_is_never_called(graph: FakeGraph) -> None:
    async with GraphClient(config_for(graph, secret="wrong-secret")) as client:
        with pytest.raises(GraphError) as caught:
            await client.member_groups(USER, [SUPERVISORS])
    assert caught.value.status == 401
    assert caught.value.code == "invalid_client"
    assert "AADSTS7000215" in caught.value.message
    assert graph.graph_requests() == []


async def test_401_refreshes_the_token_once_and_retries(graph: FakeGraph, client: GraphClient) -> None:
    graph.add_group_member(SUPERVISORS, USER)
    await client.member_groups(USER, [SUPERVISORS])
    graph.revoke_tokens()
    assert await client.member_groups(USER, [SUPERVISORS]) == {SUPERVISORS.lower()}
    assert graph.token_requests == 2
    assert [c.status for c in graph.graph_requests()] == [200, 401, 200]


async def test_persistent_401_gives_up_after_one_refresh(graph: FakeGraph, client: GraphClient) -> None:
    graph.fail_next(5, 401)
    with pytest.raises(GraphError) as caught:
        await client.member_groups(USER, [SUPERVISORS])
    assert caught.value.status == 401
    assert len(graph.graph_requests()) == 2
    assert graph.token_requests == 2


# ---------------------------------------------------------------- member_groups


async def test_member_groups_chunks_by_twenty_and_lower_cases(graph: FakeGraph, client: GraphClient) -> None:
    wanted = [group(n).upper() for n in range(45)]
    for n in (3, 27, 44):  # one in each chunk, seeded upper-case as Graph might spell them
        graph.add_group_member(group(n).upper(), USER)
    result = await client.member_groups(USER, [*wanted, wanted[3].lower(), " "])
    assert result == {group(3), group(27), group(44)}
    sizes = [len(c.json["groupIds"]) for c in graph.graph_requests("checkMemberGroups") if c.json]
    assert sizes == [20, 20, 5]


async def test_member_groups_is_transitive_and_excludes_other_groups(
    graph: FakeGraph, client: GraphClient
) -> None:
    graph.add_group_member(SUPERVISORS, group(1))  # a nested group
    graph.add_group_member(group(1), USER)
    graph.add_group_member(group(2), OTHER_USER)
    assert await client.member_groups(USER, [SUPERVISORS, group(2)]) == {SUPERVISORS.lower()}
    assert await client.member_groups(OTHER_USER, [SUPERVISORS]) == set()


async def test_member_groups_with_no_ids_makes_no_call(graph: FakeGraph, client: GraphClient) -> None:
    assert await client.member_groups(USER, []) == set()
    assert graph.requests == []


async def test_unknown_user_is_a_404_graph_error(client: GraphClient) -> None:
    with pytest.raises(GraphError) as caught:
        await client.member_groups("eeeeeeee-0000-4000-8000-000000000009", [SUPERVISORS])
    assert (caught.value.status, caught.value.code) == (404, "Request_ResourceNotFound")


# ---------------------------------------------------------------- create_channel


async def test_create_channel_sends_owner_and_returns_channel(graph: FakeGraph, client: GraphClient) -> None:
    channel = await client.create_channel(
        team_id=TEAM,
        name="OP-LANTERN",
        description="Operation Lantern",
        membership_type="private",
        owner_aad_id=USER,
    )
    [sent] = graph.graph_requests("/channels")
    assert sent.method == "POST"
    assert sent.path == f"/v1.0/teams/{TEAM}/channels"
    assert sent.json == {
        "displayName": "OP-LANTERN",
        "description": "Operation Lantern",
        "membershipType": "private",
        "members": [
            {
                "@odata.type": "#microsoft.graph.aadUserConversationMember",
                "user@odata.bind": f"https://graph.microsoft.com/v1.0/users('{USER}')",
                "roles": ["owner"],
            }
        ],
    }
    assert channel["id"].startswith("19:") and channel["id"].endswith("@thread.tacv2")
    assert channel["displayName"] == "OP-LANTERN"
    assert channel["membershipType"] == "private"
    assert channel["webUrl"].startswith("https://teams.microsoft.com/l/channel/")
    assert [c["id"] for c in graph.channels[TEAM]] == [channel["id"]]


async def test_duplicate_channel_name_is_a_graph_error_with_code(
    graph: FakeGraph, client: GraphClient
) -> None:
    args = {"team_id": TEAM, "description": "", "owner_aad_id": USER}
    await client.create_channel(name="OP-LANTERN", membership_type="private", **args)
    with pytest.raises(GraphError) as caught:
        await client.create_channel(name="op-lantern", membership_type="shared", **args)
    assert (caught.value.status, caught.value.code) == (409, "NameAlreadyExists")
    assert len(graph.channels[TEAM]) == 1


async def test_create_channel_refuses_bad_arguments_before_calling(
    graph: FakeGraph, client: GraphClient
) -> None:
    with pytest.raises(ValueError, match="membership_type"):
        await client.create_channel(
            team_id=TEAM, name="x", description="", membership_type="standard", owner_aad_id=USER
        )
    with pytest.raises(ValueError):
        await client.create_channel(
            team_id=TEAM, name="x", description="", membership_type="private", owner_aad_id="x') or ('y"
        )
    assert graph.requests == []


async def test_a_shared_channel_accepted_as_an_operation_is_followed_to_its_id(
    graph: FakeGraph, client: GraphClient
) -> None:
    graph.async_shared_channels, graph.operation_polls = True, 2
    channel = await client.create_channel(
        team_id=TEAM, name="OP-LANTERN partners", description="", membership_type="shared", owner_aad_id=USER
    )
    assert channel["id"] == graph.channels[TEAM][0]["id"]
    assert channel["membershipType"] == "shared"
    assert channel["operation"].startswith(f"/teams/{TEAM}/operations/")
    polls = graph.graph_requests("/operations/")
    assert [(p.method, p.path) for p in polls] == [("GET", "/v1.0" + channel["operation"])] * 3
    assert all(p.bearer for p in polls)


@pytest.mark.parametrize(
    ("outcome", "polls", "code"),
    [("failed", 0, "operation_failed"), ("succeeded", 5, "operation_pending")],
)
async def test_a_shared_channel_operation_that_fails_or_never_ends_is_a_graph_error(
    graph: FakeGraph, client: GraphClient, outcome: str, polls: int, code: str
) -> None:
    graph.async_shared_channels, graph.operation_polls, graph.operation_outcome = True, polls, outcome
    with pytest.raises(GraphError) as caught:
        await client.create_channel(
            team_id=TEAM, name="OP-LANTERN partners", description="", membership_type="shared", owner_aad_id=USER
        )
    assert caught.value.code == code
    assert len(graph.graph_requests("/operations/")) == min(polls + 1, 3)  # bounded by the client's polls


async def test_a_new_lead_becomes_a_channel_owner_whether_new_to_the_channel_or_a_member(
    graph: FakeGraph, client: GraphClient
) -> None:
    graph.member_page_size = 1  # the user is on the second page
    channel = await client.create_channel(
        team_id=TEAM, name="Op Heron", description="", membership_type="private", owner_aad_id=USER
    )
    where = {"team_id": TEAM, "channel_id": channel["id"]}
    assert await client.make_channel_owner(**where, user_aad_id=OTHER_USER) == "added"
    assert await client.make_channel_owner(**where, user_aad_id=OTHER_USER.upper()) == "already"
    graph.channel_members[channel["id"]][1]["roles"] = []
    assert await client.make_channel_owner(**where, user_aad_id=OTHER_USER) == "promoted"
    assert [(m["userId"], m["roles"]) for m in graph.channel_members[channel["id"]]] == [
        (USER, ["owner"]), (OTHER_USER, ["owner"])
    ]
    [patch] = [r for r in graph.graph_requests("/members/") if r.method == "PATCH"]
    assert patch.json == {"@odata.type": "#microsoft.graph.aadUserConversationMember", "roles": ["owner"]}
    with pytest.raises(ValueError):
        await client.make_channel_owner(**where, user_aad_id="x') or ('y")


# ---------------------------------------------------------------- throttling


async def test_429_with_retry_after_is_retried_then_succeeds(graph: FakeGraph, client: GraphClient) -> None:
    graph.add_group_member(SUPERVISORS, USER)
    graph.fail_next(2, 429, retry_after=30)
    started = time.monotonic()
    assert await client.member_groups(USER, [SUPERVISORS]) == {SUPERVISORS.lower()}
    assert time.monotonic() - started < 5  # Retry-After: 30 was capped by max_retry_sleep
    assert [c.status for c in graph.graph_requests()] == [429, 429, 200]


async def test_503_retries_are_bounded(graph: FakeGraph, client: GraphClient) -> None:
    graph.fail_next(10, 503, retry_after="Wed, 21 Oct 2099 07:28:00 GMT")
    with pytest.raises(GraphError) as caught:
        await client.create_channel(
            team_id=TEAM, name="x", description="", membership_type="private", owner_aad_id=USER
        )
    assert (caught.value.status, caught.value.code) == (503, "ServiceUnavailable")
    assert len(graph.graph_requests()) == 4  # the first try and three retries
    assert TEAM not in graph.channels


async def test_unreachable_graph_is_a_graph_error(graph: FakeGraph) -> None:
    config = config_for(graph)
    await graph.stop()
    async with GraphClient(config) as client:
        with pytest.raises(GraphError) as caught:
            await client.member_groups(USER, [SUPERVISORS])
    assert caught.value.status == 0


# ---------------------------------------------------------------- secrets stay out of logs


async def test_logs_never_contain_the_secret_or_tokens(
    graph: FakeGraph, client: GraphClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    graph.add_group_member(SUPERVISORS, USER)
    graph.fail_next(1, 429, retry_after=0)
    await client.member_groups(USER, [SUPERVISORS])
    graph.revoke_tokens()
    await client.create_channel(
        team_id=TEAM, name="a", description="", membership_type="private", owner_aad_id=USER
    )
    with pytest.raises(GraphError) as caught:
        await client.create_channel(
            team_id=TEAM, name="a", description="", membership_type="private", owner_aad_id=USER
        )
    async with GraphClient(config_for(graph, secret=graph.client_secret + "-wrong")) as bad:
        with pytest.raises(GraphError) as refused:
            await bad.member_groups(USER, [SUPERVISORS])
    assert any(r.name == "bot.graph" for r in caplog.records)  # the client did log, at DEBUG
    assert len(graph.issued_tokens) == 2
    for text in (caplog.text, str(caught.value), str(refused.value), repr(client.config)):
        assert graph.client_secret not in text
        for token in graph.issued_tokens:
            assert token not in text
