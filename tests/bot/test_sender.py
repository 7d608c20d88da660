"""The outbox sender against the fake Bot Connector: delivery and Teams' refusals."""

from __future__ import annotations

import asyncio

from sqlmodel import Session, col, select

from bot.outbound import Outbound
from bot.sender import OutboxSender, SenderSettings
from core.audit.models import AuditEvent
from core.db import Database
from core.outbox import service as outbox
from core.rooms.models import Room
from tests.bot.sender_support import (
    CHANNEL,
    OTHER,
    PERSONAL,
    enqueue,
    make_sender,
    now,
    posts_to,
    reference,
    rows,
    settled,
    texts_to,
)
from tests.fakes.connector import FakeConnector


async def test_delivers_after_commit_in_order_with_teams_ids(
    db: Database, connector: FakeConnector, sender: OutboxSender
) -> None:
    ids = await enqueue(db, connector, CHANNEL, ["one", "two", "three"])
    sender.wake()

    done = await settled(db, ids)

    assert texts_to(connector, CHANNEL) == ["one", "two", "three"]
    assert [r.status for r in done] == ["sent"] * 3
    assert [r.sent_activity_id for r in done] == [a.assigned_id for a in connector.activities()]
    assert all(r.claimed_by == sender.worker and r.attempts == 1 for r in done)
    request = posts_to(connector, CHANNEL)[0]
    assert "Authorization" not in request.headers  # local mode
    assert request.raw_path.startswith("/v3/conversations/19%3Aops%40thread.tacv2%3Bmessageid%3D")


async def test_rows_of_other_processes_are_found_by_polling(
    db: Database, connector: FakeConnector, sender: OutboxSender
) -> None:
    ids = await enqueue(db, connector, CHANNEL, ["nobody woke me"])  # no wake(): the poll finds it

    await settled(db, ids)

    assert texts_to(connector, CHANNEL) == ["nobody woke me"]


# -- Teams' answers ----------------------------------------------------------------------------------


async def test_429_waits_for_retry_after_holding_back_that_conversation_only(
    db: Database, connector: FakeConnector, sender: OutboxSender
) -> None:
    connector.fail_next(1, 429, retry_after=1, path_contains=CHANNEL)
    first = await enqueue(db, connector, CHANNEL, ["first", "second"])
    other = await enqueue(db, connector, OTHER, ["elsewhere"])
    sender.wake()

    done = await settled(db, first + other)

    throttled, *delivered = posts_to(connector, CHANNEL)
    assert throttled.status == 429
    assert [r.json["text"] for r in delivered] == ["first", "second"]
    assert delivered[0].received_at - throttled.received_at >= 1.0
    assert posts_to(connector, OTHER)[0].received_at < delivered[0].received_at
    assert [(r.status, r.attempts) for r in done] == [("sent", 2), ("sent", 1), ("sent", 1)]
    assert sender.stats["throttled"] == 1


async def test_429_without_retry_after_backs_off(
    db: Database, connector: FakeConnector, sender: OutboxSender
) -> None:
    connector.fail_next(2, 429, path_contains=CHANNEL)
    ids = await enqueue(db, connector, CHANNEL, ["patience"])
    sender.wake()

    [done] = await settled(db, ids)

    assert (done.status, done.attempts) == ("sent", 3)
    assert [r.status for r in posts_to(connector, CHANNEL)] == [429, 429, 201]


async def test_503_is_retried_then_delivered(
    db: Database, connector: FakeConnector, sender: OutboxSender
) -> None:
    connector.fail_next(2, 503, path_contains=CHANNEL)
    ids = await enqueue(db, connector, CHANNEL, ["eventually"])
    sender.wake()

    [done] = await settled(db, ids)

    assert (done.status, done.attempts, done.last_error) == ("sent", 3, None)
    assert [r.status for r in posts_to(connector, CHANNEL)] == [503, 503, 201]
    assert sender.stats["retried"] == 2


async def test_5xx_forever_fails_after_bounded_attempts(
    db: Database, connector: FakeConnector, outbound: Outbound
) -> None:
    connector.fail_next(100, 502, path_contains=CHANNEL)
    sender = make_sender(
        db, outbound, SenderSettings(poll_interval=0.05, backoff=0.02, max_backoff=0.1, max_attempts=4)
    )
    await sender.start()
    try:
        failing = await enqueue(db, connector, CHANNEL, ["doomed", "after it"])
        sender.wake()
        done = await settled(db, failing)
    finally:
        await sender.stop()

    assert [r.status for r in done] == ["failed", "failed"]
    assert "HTTP 502" in (done[0].last_error or "") and "after 4 attempts" in (done[0].last_error or "")
    assert len(posts_to(connector, CHANNEL)) == 8  # 4 each, the second only after the first gave up
    assert connector.activities() == []


async def test_no_answer_is_retried(db: Database, connector: FakeConnector, sender: OutboxSender) -> None:
    ref = reference(connector, CHANNEL).replace(connector.url, "http://127.0.0.1:9/")  # nothing listens there
    ids = await db.commit(
        lambda s: [
            outbox.enqueue(session=s, kind="notice", reference=ref, activity={"type": "message"}, now=now())
        ]
    )
    message_id = ids[0].id
    sender.wake()

    deadline = asyncio.get_running_loop().time() + 5
    while (row := rows(db, [message_id])[0]).attempts < 2 and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.02)

    assert row.attempts >= 2
    assert "no answer from 127.0.0.1" in (row.last_error or "")


async def test_404_kills_the_row_and_orphans_its_room_with_an_audit_event(
    db: Database, connector: FakeConnector, sender: OutboxSender
) -> None:
    def open_room(session: Session) -> int:
        room = Room(
            key="OP-LANTERN",
            name="Lantern",
            classification="OFFICIAL",
            timezone="Europe/London",
            lead_aad_id="lead",
            tenant_id="t1",
            team_id="19:team@thread.tacv2",
            space_kind="thread",
            conversation_id=CHANNEL,
            reference=reference(connector, CHANNEL),
            opened_at=now(),
        )
        session.add(room)
        session.flush()
        assert room.id is not None
        return room.id

    room_id = db.transaction(open_room)
    connector.refuse_conversation(CHANNEL, 404)
    ids = await enqueue(db, connector, CHANNEL, ["into the void"], room_id=room_id)
    sender.wake()

    [done] = await settled(db, ids)

    assert (done.status, done.last_error) == (
        "dead",
        f"HTTP 404 ConversationNotFound: Refused posting into {CHANNEL}",
    )
    room = db.transaction(lambda s: s.get(Room, room_id), readonly=True)
    assert room is not None
    assert (room.orphaned, room.orphaned_reason) == (True, "its Teams conversation no longer exists")
    events = db.transaction(
        lambda s: list(s.exec(select(AuditEvent).where(col(AuditEvent.action) == "room.orphaned"))),
        readonly=True,
    )
    assert [(e.actor_kind, e.room_key, e.conversation_id, e.detail) for e in events] == [
        ("system", "OP-LANTERN", CHANNEL, "its Teams conversation no longer exists")
    ]


async def test_403_in_a_personal_chat_kills_and_blocks_it(
    db: Database, connector: FakeConnector, sender: OutboxSender
) -> None:
    connector.refuse_conversation(PERSONAL, 403)
    ids = await enqueue(db, connector, PERSONAL, ["reminder", "another reminder"])
    sender.wake()

    done = await settled(db, ids)

    assert [r.status for r in done] == ["dead", "dead"]
    assert len(posts_to(connector, PERSONAL)) == 1  # the second was never tried
    block = db.transaction(lambda s: outbox.blocked(session=s, conversation_id=PERSONAL), readonly=True)
    assert block is not None and "403" in block.reason
    [later] = await enqueue(db, connector, PERSONAL, ["one more"])
    assert rows(db, [later])[0].status == "dead"  # blocked at once, never sent


async def test_403_in_a_channel_fails_without_blocking(
    db: Database, connector: FakeConnector, sender: OutboxSender
) -> None:
    connector.refuse_conversation(CHANNEL, 403, code="BotNotInConversationRoster")
    ids = await enqueue(db, connector, CHANNEL, ["refused"])
    sender.wake()

    [done] = await settled(db, ids)

    assert done.status == "failed"
    assert db.transaction(lambda s: outbox.blocked(session=s, conversation_id=CHANNEL), readonly=True) is None


async def test_other_4xx_fails_at_once(db: Database, connector: FakeConnector, sender: OutboxSender) -> None:
    connector.fail_next(1, 400, path_contains=CHANNEL, code="BadArgument")
    ids = await enqueue(db, connector, CHANNEL, ["malformed", "fine"])
    sender.wake()

    done = await settled(db, ids)

    assert [(r.status, r.attempts) for r in done] == [("failed", 1), ("sent", 1)]
    assert done[0].last_error == "HTTP 400 BadArgument: Injected failure 400"


# -- pacing ------------------------------------------------------------------------------------------
