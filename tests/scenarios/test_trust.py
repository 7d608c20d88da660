"""No guest passes as an officer: B2B guests, shared-channel external members, Graph's word, production."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import pytest

from core.db import Database
from tests import fixtures
from tests.fakes.connector import FakeConnector
from tests.fakes.graph import FakeGraph
from tests.fakes.openid import FakeOpenId
from tests.scenarios.conftest import BASE_SETTINGS, Clock, Harness, serving, with_graph_settings
from tests.scenarios.rooms_support import in_thread, open_room, room_thread, rows

GUEST = {"id": fixtures.GUEST_ID, "aadObjectId": fixtures.GUEST_AAD, "name": fixtures.GUEST_NAME}
EXT_UPN = "sam.guest_socialcare.example#EXT#@opsroom.onmicrosoft.com"
# What Teams was seen to report for a partner's B2B guest in the force's team: the force's tenant
# on the activity and on the roster, and userRole "user". Only the UPN (and Graph) tell.
B2B_AS_USER = fixtures.member("guest", userRole="user", tenantId=fixtures.HOME_TENANT,
                              userPrincipalName=EXT_UPN, email="sam.guest@socialcare.example")  # fmt: skip


def as_b2b_guest(harness: Harness, text: str, **overrides: Any) -> dict[str, Any]:
    """A message from the B2B guest, carrying the force's own tenant like every activity in its team."""
    return harness.activity("channel_message_mention", text, from_=GUEST, tenant=fixtures.HOME_TENANT,
                            **overrides)  # fmt: skip


@pytest.fixture
async def b2b(db: Database, connector: FakeConnector, clock: Clock) -> AsyncIterator[Harness]:
    for conversation in (fixtures.TEAM_ID, fixtures.PERSONAL_CONVERSATION_ID):
        connector.add_member(conversation, B2B_AS_USER)
    async with serving(BASE_SETTINGS, connector, db, clock=clock) as running:
        yield running


async def test_a_b2b_guest_reported_as_user_cannot_open_or_list_rooms(b2b: Harness, db: Database) -> None:
    opened = await b2b.send(as_b2b_guest(b2b, "room open Operation Lantern"))
    assert opened.texts == ["You can't do that here: no rule allows this."]
    assert rows(db, "SELECT count(*) FROM room") == [(0,)]
    await open_room(b2b)  # an officer opens one in the same team
    listed = await b2b.send(as_b2b_guest(b2b, "room list"))
    assert "OP-LANTERN" not in json.dumps(listed.texts)
    event = b2b.audit()[-1]
    assert (event["actor_kind"], event["decision"]) == ("guest", "deny")
    assert "identity: B2B guest account (#EXT# in the UPN)" in event["detail"]


async def test_a_b2b_guest_cannot_join_a_room_by_typing_in_its_thread(b2b: Harness, db: Database) -> None:
    await open_room(b2b)
    thread = room_thread(b2b)
    status = await b2b.send(as_b2b_guest(b2b, "room status", conversation={"id": thread, "isGroup": True,
                                                                              "conversationType": "channel"}))  # fmt: skip
    assert status.texts[0].startswith("This command acts on a room")
    assert "OP-LANTERN" not in json.dumps([r for r in status.replies])
    assert rows(db, "SELECT aad_id FROM room_member") == [(fixtures.OFFICER_AAD,)]
    named = await b2b.send(as_b2b_guest(b2b, "room status --room OP-LANTERN"))
    missing = await b2b.send(as_b2b_guest(b2b, "room status --room OP-NOWHERE"))
    assert named.texts == ["There is no room OP-LANTERN that you can see."]
    assert missing.texts == ["There is no room OP-NOWHERE that you can see."]  # the same answer: nothing leaks


async def test_a_b2b_guest_cannot_be_made_lead_nor_run_audit_verify(b2b: Harness, db: Database) -> None:
    await open_room(b2b)
    thread = room_thread(b2b)
    lead = await b2b.send(in_thread(b2b, thread, "room lead sam.guest@socialcare.example"))
    assert lead.texts == ["You can't do that here: a room's lead must be an officer of this force."]
    assert rows(db, "SELECT lead_aad_id FROM room") == [(fixtures.OFFICER_AAD,)]
    verify = await b2b.send(as_b2b_guest(b2b, "audit verify", conversation={"id": thread, "isGroup": True,
                                                                               "conversationType": "channel"}))  # fmt: skip
    assert not verify.texts[0].startswith("Audit trail verified")


async def test_a_shared_channel_external_member_is_a_guest(rooms: Harness, connector: FakeConnector) -> None:
    # External members of a shared channel carry their own tenant on the roster, the host's on the activity.
    external = fixtures.member("guest", userRole="user", tenantId=fixtures.GUEST_TENANT,
                               userPrincipalName="sam.guest@socialcare.example")  # fmt: skip
    connector.add_member(fixtures.TEAM_ID, external)
    result = await rooms.send(as_b2b_guest(rooms, "room open Operation Lantern"))
    assert result.texts == ["You can't do that here: no rule allows this."]
    event = rooms.audit()[-1]
    assert event["actor_kind"] == "guest" and "the member's own tenant is not the force's" in event["detail"]


async def test_an_address_outside_the_forces_domains_is_a_guest(rooms: Harness, connector: FakeConnector) -> None:
    outsider = fixtures.member("officer2", userPrincipalName="ben@partner.example", email="ben@partner.example")
    connector.add_member(fixtures.TEAM_ID, outsider)
    result = await rooms.say("channel_message_mention", "room open Op Kestrel", from_={
        "id": fixtures.OFFICER2_ID, "aadObjectId": fixtures.OFFICER2_AAD, "name": fixtures.OFFICER2_NAME})
    assert result.texts[0].startswith("You can't do that here")
    assert "outside the force's domains" in rooms.audit()[-1]["detail"]


async def test_a_failed_member_lookup_is_a_guest_for_that_request(rooms: Harness, connector: FakeConnector) -> None:
    connector.fail_next(1, 403, path_contains="/members/")
    first = await rooms.say("channel_message_mention", "room open Operation Lantern")
    again = await rooms.say("channel_message_mention", "room open Operation Lantern")
    assert first.texts[0].startswith("You can't do that here")
    assert "Teams member lookup failed" in rooms.audit()[0]["detail"]
    assert again.texts[-1].startswith("Opened **OP-LANTERN**")  # not cached: asked again, and an officer


@pytest.fixture
async def graph() -> AsyncIterator[FakeGraph]:
    async with FakeGraph() as fake:
        for aad_id, user_type, upn in fixtures.directory():
            fake.add_user(aad_id, user_type=user_type, upn=upn)
        yield fake


@pytest.fixture
async def with_graph(db: Database, connector: FakeConnector, graph: FakeGraph) -> AsyncIterator[Harness]:
    settings = with_graph_settings(BASE_SETTINGS, graph, home_domains=frozenset())
    async with serving(settings, connector, db) as running:
        yield running


async def test_graph_user_type_guest_wins_over_the_roster(with_graph: Harness, graph: FakeGraph,
                                                          connector: FakeConnector) -> None:  # fmt: skip
    # The roster makes Ben look like any officer; the directory says he is a guest account.
    graph.add_user(fixtures.OFFICER2_AAD, user_type="Guest", upn="ben.officer@opsroom.example")
    ben = {"id": fixtures.OFFICER2_ID, "aadObjectId": fixtures.OFFICER2_AAD, "name": fixtures.OFFICER2_NAME}
    result = await with_graph.say("channel_message_mention", "room open Operation Lantern", from_=ben)
    assert result.texts == ["You can't do that here: no rule allows this."]
    event = with_graph.audit()[-1]
    assert event["actor_kind"] == "guest" and "Graph userType is Guest" in event["detail"]
    ada = await with_graph.say("channel_message_mention", "room open Operation Lantern")
    assert ada.texts[-1].startswith("Opened **OP-LANTERN**")
    lookups = [r for r in graph.requests if r.method == "GET" and r.path.endswith(fixtures.OFFICER_AAD)]
    assert len(lookups) == 1  # cached


async def test_an_officers_group_narrows_officers(db: Database, connector: FakeConnector, graph: FakeGraph) -> None:
    group = "eeeeeeee-0000-4000-8000-000000000001"
    graph.add_group_member(group, fixtures.OFFICER_AAD)
    settings = with_graph_settings(BASE_SETTINGS, graph, officers_group=group)
    async with serving(settings, connector, db) as running:
        ben = {"id": fixtures.OFFICER2_ID, "aadObjectId": fixtures.OFFICER2_AAD, "name": fixtures.OFFICER2_NAME}
        refused = await running.say("channel_message_mention", "room open Op Kestrel", from_=ben)
        opened = await running.say("channel_message_mention", "room open Op Kestrel")
    assert refused.texts[0].startswith("You can't do that here")
    assert opened.texts[-1].startswith("Opened **OP-KESTREL**")


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [({"channelId": "emulator"}, "only Microsoft Teams activities are accepted"),
     ({"serviceUrl": None}, "activity has no serviceUrl")],
)  # fmt: skip
async def test_production_refuses_what_is_not_teams(
    db: Database, connector: FakeConnector, openid: FakeOpenId, monkeypatch: pytest.MonkeyPatch,
    overrides: dict[str, Any], reason: str,
) -> None:  # fmt: skip
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", openid.ca_bundle_path)
    settings = replace(BASE_SETTINGS, env="production", app_id=fixtures.BOT_APP_ID, app_password="test-secret",
                       openid_metadata_url=openid.metadata_url, token_issuer=openid.issuer,
                       login_url=openid.login_url, oauth_scope="https://api.botframework.com")  # fmt: skip
    async with serving(settings, connector, db) as running:
        running.token = openid.mint(audience=fixtures.BOT_APP_ID, service_url=connector.url)
        good = await running.say("personal_message", "/help")
        status, body = await running.post(running.activity("personal_message", "/help", **overrides))
    assert good.status == 201 and good.texts[0].startswith("Commands you can run here")
    assert (status, body) == (400, {"error": reason})
    assert running.audit()[-1]["detail"] == f"HTTP 400: {reason} (from 127.0.0.1)"
