"""When access ends: the lead told once, the end audited, the guest taken out of the room's channel (fake Graph)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from core.db import Database
from core.invitations import cleanup
from tests import fixtures
from tests.fakes.connector import FakeConnector
from tests.fakes.graph import FakeGraph
from tests.scenarios.access_support import (
    KIM_EMAIL,
    card,
    chat_posts,
    events,
    in_chat,
    lantern,
    say,
    texts,
    tick,
)
from tests.scenarios.conftest import BASE_SETTINGS, Clock, Harness, serving, with_graph_settings
from tests.scenarios.rooms_support import SAM, SAM_EMAIL, rows

ENDS = datetime(2026, 12, 2, 23, 59, tzinfo=UTC)  # --expires 2026-12-02: the end of that day in London (GMT)


@pytest.fixture
async def graph() -> AsyncIterator[FakeGraph]:
    async with FakeGraph() as fake:
        for aad_id, user_type, upn in fixtures.directory():
            fake.add_user(aad_id, user_type=user_type, upn=upn, mail=SAM_EMAIL if aad_id == fixtures.GUEST_AAD else None)
        yield fake


@pytest.fixture
async def with_graph(db: Database, connector: FakeConnector, graph: FakeGraph, clock: Clock) -> AsyncIterator[Harness]:
    settings = with_graph_settings(BASE_SETTINGS, graph)
    async with serving(settings, connector, db, clock=clock) as running:
        yield running


async def private_room(harness: Harness, db: Database, graph: FakeGraph) -> str:
    """Op Heron in a private channel, Sam invited (Graph lets Sam into the team and the channel) and bound."""
    await lantern(harness, db, "room open Op Heron --channel private --purpose Covert phase")
    [(channel,)] = rows(db, "SELECT conversation_id FROM room")
    await say(harness, channel, f"invite socialcare {SAM_EMAIL} --isa ISA-1 --expires 2026-12-02")
    await say(harness, channel, "room status", from_=SAM)
    assert fixtures.GUEST_AAD in members_of(graph, channel)
    return str(channel)


def members_of(graph: FakeGraph, channel: str) -> list[str]:
    return [m["userId"] for m in graph.channel_members.get(channel, [])]


async def test_an_expired_guest_is_announced_to_the_lead_once(rooms: Harness, db: Database, clock: Clock) -> None:
    thread = await lantern(rooms, db)
    await in_chat(rooms, "help")  # the bot has a chat with Ada, the lead: notices for her alone go there
    await say(rooms, thread, f"invite socialcare {SAM_EMAIL} --isa ISA-1 --expires 2026-12-02")
    await say(rooms, thread, "room status", from_=SAM)
    clock.now = ENDS - timedelta(seconds=1)
    early = await tick(rooms)

    clock.now = ENDS
    first, second = await tick(rooms), await tick(rooms)

    assert early.ended == [] and second.ended == []
    [ending] = first.ended
    assert [(g.email, g.why, g.aad_id) for g in ending.guests] == [(SAM_EMAIL, "expired", fixtures.GUEST_AAD)]
    await rooms.posted_to(fixtures.PERSONAL_CONVERSATION_ID, 2)
    posted = [texts(content) for content in chat_posts(rooms)]
    assert [p[1] for p in posted] == ["Weekly access review: OP-LANTERN", "Access ended in OP-LANTERN"]
    shown = posted[1]  # the week's reminder went out at the early tick: Sam's access ended within 7 days
    assert shown[2] == "For PC Ada Officer, the room's lead:"
    assert f"{SAM_EMAIL} (Sam Guest (Social Care), socialcare): expired Wed 02 Dec 2026 23:59" in shown
    assert any("they stay in the team" in t for t in shown)
    [event] = events(rooms, "access.ended")
    assert (event["actor_kind"], event["room_key"]) == ("system", "OP-LANTERN")
    assert event["recipients"] == [fixtures.OFFICER_AAD]
    assert event["arguments"] == {"emails": [SAM_EMAIL], "object_ids": [fixtures.GUEST_AAD], "reasons": ["expired"],
                                  "removal": "none"}  # fmt: skip
    assert rows(db, "SELECT removal FROM invitation") == [("none",)]
    review = texts(card(await in_chat(rooms, "access --room OP-LANTERN")))
    assert any(t.startswith("expired; still in the team (a thread room)") for t in review)


async def test_without_a_chat_with_the_lead_the_room_is_told_without_names(
    rooms: Harness, db: Database, clock: Clock
) -> None:
    thread = await lantern(rooms, db)
    await say(rooms, thread, f"invite socialcare {SAM_EMAIL},{KIM_EMAIL} --isa ISA-1 --expires 2026-12-02")
    await say(rooms, thread, "room status", from_=SAM)
    await say(rooms, thread, f"revoke {KIM_EMAIL}")
    clock.now = ENDS

    await tick(rooms)

    [notice] = [texts(p["attachments"][0]["content"]) for p in await rooms.posted_to(thread)
                if "Access ended in OP-LANTERN" in texts(p["attachments"][0]["content"])]  # fmt: skip
    assert "The access of 2 partner-agency guests ended (expired or revoked)." in notice
    assert "Who they are is for the lead alone: send `/access --room OP-LANTERN` in your chat with Opsroom." \
        in notice  # fmt: skip
    assert SAM_EMAIL not in str(notice) and KIM_EMAIL not in str(notice) and "Sam" not in str(notice)
    [event] = events(rooms, "access.ended")
    assert event["recipients"] == [thread] and event["arguments"]["reasons"] == ["revoked", "expired"]


async def test_a_revoked_guest_is_taken_out_of_the_private_channel_not_the_team(
    with_graph: Harness, db: Database, graph: FakeGraph
) -> None:
    channel = await private_room(with_graph, db, graph)
    revoked = await say(with_graph, channel, f"revoke {SAM_EMAIL}")

    done = await tick(with_graph)

    assert "Opsroom takes them out of the room's channel" in revoked.texts[0]
    assert done.removals == [(SAM_EMAIL, "removed")]
    assert fixtures.GUEST_AAD not in members_of(graph, channel)
    assert fixtures.GUEST_AAD in [m["userId"] for m in graph.team_members[fixtures.TEAM_AAD_GROUP_ID]]
    [delete] = [r for r in graph.graph_requests("/members/") if r.method == "DELETE"]
    assert delete.path.startswith(f"/v1.0/teams/{fixtures.TEAM_AAD_GROUP_ID}/channels/")
    [ended] = events(with_graph, "access.ended")
    [removed] = events(with_graph, "access.removed")
    assert (ended["arguments"]["reasons"], ended["arguments"]["removal"]) == (["revoked"], "pending")
    assert (removed["outcome"], removed["arguments"]["email"]) == ("removed", SAM_EMAIL)
    assert ended["seq"] < removed["seq"]
    assert rows(db, "SELECT removal, removal_tries FROM invitation") == [("removed", 0)]
    [notice] = await with_graph.posted_to(channel)
    assert any("Opsroom is taking them out" in t for t in texts(notice["attachments"][0]["content"]))
    assert (await tick(with_graph)).removals == []


async def test_a_graph_refusal_is_audited_and_tried_again_later(
    with_graph: Harness, db: Database, graph: FakeGraph, clock: Clock
) -> None:
    channel = await private_room(with_graph, db, graph)
    clock.now = ENDS
    graph.fail_next(1, 403, path_contains="/members")

    first = await tick(with_graph)
    too_soon = await tick(with_graph)
    review = texts(card(await in_chat(with_graph, "access --room OP-HERON")))
    clock.now = ENDS + timedelta(minutes=5)
    later = await tick(with_graph)

    assert first.removals == [(SAM_EMAIL, "failed")] and too_soon.removals == []
    [failed] = events(with_graph, "access.removal_failed")
    assert failed["outcome"] == "failed" and failed["arguments"]["tries"] == 1
    assert failed["detail"] == ("Graph refused taking them out of the room's channel (403 Authorization_RequestDenied): "
                                "the app needs ChannelMember.ReadWrite.All; next attempt 2026-12-03T00:04:00.000000Z")
    assert any("the last attempt failed: Graph refused" in t for t in review)
    assert later.removals == [(SAM_EMAIL, "removed")]
    assert fixtures.GUEST_AAD not in members_of(graph, channel)
    assert [e["outcome"] for e in events(with_graph, "access.removed")] == ["removed"]
    assert rows(db, "SELECT removal, removal_tries, removal_error FROM invitation") == [("removed", 1, None)]


async def test_a_crash_after_the_claim_leaves_a_pending_removal_that_a_later_run_takes_up(
    with_graph: Harness, db: Database, graph: FakeGraph, clock: Clock
) -> None:
    channel = await private_room(with_graph, db, graph)
    clock.now = ENDS
    [(room_id,)] = rows(db, "SELECT id FROM room")
    # A process claims the end (notice and audit committed) and a removal attempt, then dies before Graph.
    db.transaction(lambda s: cleanup.end(s, room_id=room_id, now=ENDS, render=lambda _: {"type": "message"},
                                         graph=True))  # fmt: skip
    [(invitation_id,)] = rows(db, "SELECT id FROM invitation")
    assert db.transaction(lambda s: cleanup.claim_removal(s, invitation_id=invitation_id, now=ENDS)) is not None

    during_lease = await tick(with_graph)
    clock.now = ENDS + cleanup.LEASE
    after_lease = await tick(with_graph)

    assert during_lease.ended == [] and during_lease.removals == []
    assert after_lease.removals == [(SAM_EMAIL, "removed")]
    assert fixtures.GUEST_AAD not in members_of(graph, channel)
    assert len(events(with_graph, "access.ended")) == 1 and len(events(with_graph, "access.removed")) == 1


async def test_an_invitation_that_expires_unused_is_ended_and_its_account_taken_out(
    with_graph: Harness, db: Database, graph: FakeGraph, clock: Clock
) -> None:
    channel = await private_room(with_graph, db, graph)
    await say(with_graph, channel, f"invite socialcare {KIM_EMAIL} --isa ISA-1 --expires 2026-12-01")
    [(kim_account,)] = rows(db, f"SELECT graph_user_id FROM invitation WHERE email = '{KIM_EMAIL}'")
    assert kim_account in members_of(graph, channel)  # B2B invited her and put her in the channel
    clock.now = datetime(2026, 12, 1, 23, 59, tzinfo=UTC)

    done = await tick(with_graph)

    [ending] = done.ended
    assert [(g.email, g.why, g.aad_id, g.account) for g in ending.guests] == [(KIM_EMAIL, "expired", None, kim_account)]
    assert done.removals == [(KIM_EMAIL, "removed")]
    assert kim_account not in members_of(graph, channel) and fixtures.GUEST_AAD in members_of(graph, channel)
    assert rows(db, "SELECT email, status, removal FROM invitation ORDER BY email") == [
        (KIM_EMAIL, "pending", "removed"), (SAM_EMAIL, "bound", None)]


async def test_inviting_again_after_the_end_gives_access_back_and_a_later_end_is_claimed_anew(
    rooms: Harness, db: Database, clock: Clock
) -> None:
    thread = await lantern(rooms, db)
    await say(rooms, thread, f"invite socialcare {SAM_EMAIL} --isa ISA-1 --expires 2026-12-02")
    await say(rooms, thread, "room status", from_=SAM)
    clock.now = ENDS
    await tick(rooms)

    await say(rooms, thread, f"invite socialcare {SAM_EMAIL} --isa ISA-1 --expires 7d")
    back = await say(rooms, thread, "room status", from_=SAM)
    assert rows(db, "SELECT ended_at, removal FROM invitation") == [(None, None)]
    clock.now = datetime(2026, 12, 9, 23, 59, tzinfo=UTC)
    again = await tick(rooms)

    assert "attachments" in back.replies[0]
    assert len(again.ended) == 1 and len(events(rooms, "access.ended")) == 2
