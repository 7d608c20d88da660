"""A re-sent activity is acknowledged and acts once: concurrently, later, and after a restart."""

from __future__ import annotations

import asyncio

from sqlalchemy import text

from core.db import Database
from tests.fakes.connector import FakeConnector
from tests.scenarios.conftest import BASE_SETTINGS, Harness, serving


async def test_a_later_replay_is_acknowledged_without_a_second_reply(harness: Harness) -> None:
    activity = harness.activity("personal_message", "/help")
    first = await harness.send(activity)
    again = await harness.send(activity)
    assert first.status == again.status == 201
    assert len(first.replies) == 1 and again.replies == []
    events = harness.audit()
    assert [(e["action"], e["outcome"]) for e in events] == [("help", "ok"), ("help", "duplicate")]
    assert events[0]["activity_id"] == events[1]["activity_id"] == activity["id"]


async def test_concurrent_replays_act_once(harness: Harness) -> None:
    activity = harness.activity("channel_message_mention", "help")
    results = await asyncio.gather(*(harness.send(activity) for _ in range(6)))
    assert all(r.status == 201 for r in results)
    assert len(harness.connector.activities()) == 1
    outcomes = sorted(e["outcome"] for e in harness.audit())
    assert outcomes == ["duplicate"] * 5 + ["ok"]


async def test_a_replay_after_a_restart_is_still_a_duplicate(
    harness: Harness, connector: FakeConnector, db: Database
) -> None:
    activity = harness.activity("personal_message", "/hepl")
    await harness.send(activity)
    for _ in range(300):  # delivered replies are marked in batches, a moment later (Teams re-sends after ~15 s)
        if db.transaction(lambda s: s.execute(text("SELECT delivered FROM processed_activity")).scalar()):
            break
        await asyncio.sleep(0.01)
    async with serving(BASE_SETTINGS, connector, db) as restarted:
        result = await restarted.send(activity)
    assert result.status == 201 and result.replies == []
    assert [e["outcome"] for e in harness.audit()] == ["unknown_command", "duplicate"]


async def test_the_same_activity_id_in_another_conversation_is_not_a_duplicate(harness: Harness) -> None:
    first = harness.activity("personal_message", "/help")
    other = harness.activity("group_chat_message", "/help", id=first["id"])
    await harness.send(first)
    result = await harness.send(other)
    assert len(result.replies) == 1
    assert [e["outcome"] for e in harness.audit()] == ["ok", "ok"]
