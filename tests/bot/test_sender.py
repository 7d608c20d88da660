"""The outbox sender against the fake Bot Connector: delivery, Teams' refusals, pacing, stop and takeover."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlmodel import Session, col, select

from bot.auth import build_authentication
from bot.config import Settings
from bot.outbound import Outbound
from bot.pacing import Limit
from bot.sender import OutboxSender, SenderSettings
from core.audit.models import AuditEvent
from core.db import Database
from core.outbox import service as outbox
from core.outbox.models import OutboxMessage
from core.rooms.models import Room
from tests.fakes.connector import FakeConnector, RecordedRequest
from tests.fakes.connector_limits import TEAMS_THREAD_LIMITS

CHANNEL = "19:ops@thread.tacv2;messageid=1700000000001"
OTHER = "19:other@thread.tacv2;messageid=1700000000002"
PERSONAL = "a:1personalChatWithAnOfficer"
FAST = SenderSettings(poll_interval=0.05, backoff=0.05, max_backoff=0.2)


def now() -> datetime:
    return datetime.now(UTC)


def reference(
    connector: FakeConnector, conversation_id: str, *, kind: str = "channel", tenant: str = "t1"
) -> str:
    return json.dumps(
        {
            "bot": {"id": "28:bot"},
            "channelId": "msteams",
            "serviceUrl": connector.url,
            "conversation": {"id": conversation_id, "conversationType": kind, "tenantId": tenant},
        }
    )


async def enqueue(
    db: Database, connector: FakeConnector, conversation_id: str, texts: Iterable[str], **kw: Any
) -> list[int]:
    """Write notices as an action's transaction would; their ids."""
    ref = reference(
        connector, conversation_id, kind="personal" if conversation_id.startswith("a:") else "channel"
    )

    def write(session: Session) -> list[int]:
        rows = [
            outbox.enqueue(
                session=session,
                kind="notice",
                reference=ref,
                activity={"type": "message", "text": t},
                now=now(),
                **kw,
            )
            for t in texts
        ]
        return [r.id for r in rows if r is not None and r.id is not None]

    return await db.commit(write)


def rows(db: Database, ids: Iterable[int] | None = None) -> list[OutboxMessage]:
    def read(session: Session) -> list[OutboxMessage]:
        stmt = select(OutboxMessage).order_by(col(OutboxMessage.id))
        if ids is not None:
            stmt = stmt.where(col(OutboxMessage.id).in_(list(ids)))
        return list(session.exec(stmt))

    return db.transaction(read, readonly=True)


async def settled(db: Database, ids: list[int], timeout: float = 10.0) -> list[OutboxMessage]:
    """Wait until none of these rows is pending or sending any more."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        found = rows(db, ids)
        if all(r.status not in ("pending", "sending") for r in found):
            return found
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(
                f"not settled: {[(r.id, r.status, r.attempts, r.last_error) for r in found]}"
            )
        await asyncio.sleep(0.02)


def posts_to(connector: FakeConnector, conversation_id: str) -> list[RecordedRequest]:
    return [r for r in connector.requests if r.kind == "send" and r.conversation_id == conversation_id]


def texts_to(connector: FakeConnector, conversation_id: str) -> list[str]:
    return [a["text"] for a in connector.activities() if a.conversation_id == conversation_id]


@pytest.fixture
async def connector() -> AsyncIterator[FakeConnector]:
    async with FakeConnector() as fake:
        yield fake


@pytest.fixture
async def outbound() -> AsyncIterator[Outbound]:
    running = Outbound()
    await running.start()
    yield running
    await running.close()


def make_sender(db: Database, outbound: Outbound, settings: SenderSettings = FAST) -> OutboxSender:
    local = Settings()  # local mode: anonymous credentials, no token
    return OutboxSender.for_app(db, build_authentication(local, outbound), outbound, local, options=settings)


@pytest.fixture
async def sender(db: Database, outbound: Outbound) -> AsyncIterator[OutboxSender]:
    running = make_sender(db, outbound)
    await running.start()
    yield running
    await running.stop()


# -- delivery ----------------------------------------------------------------------------------------


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


def assert_within(times: list[float], limits: Iterable[tuple[int, float]]) -> None:
    for count, seconds in limits:
        for i in range(len(times) - count):
            assert times[i + count] - times[i] >= seconds, f"{count + 1} posts within {seconds} s"


async def test_twenty_messages_to_one_conversation_keep_teams_limits(
    db: Database, connector: FakeConnector, sender: OutboxSender
) -> None:
    connector.enforce_rate_limits()
    ids = await enqueue(db, connector, CHANNEL, [f"m{n}" for n in range(20)])
    sender.wake()

    await settled(db, ids, timeout=20)

    assert connector.throttled_requests() == []
    assert texts_to(connector, CHANNEL) == [f"m{n}" for n in range(20)]
    assert_within([r.received_at for r in posts_to(connector, CHANNEL)], TEAMS_THREAD_LIMITS)


async def test_two_conversations_are_not_serialised_behind_each_other(
    db: Database, connector: FakeConnector, sender: OutboxSender
) -> None:
    a = await enqueue(db, connector, CHANNEL, [f"a{n}" for n in range(10)])
    b = await enqueue(db, connector, OTHER, [f"b{n}" for n in range(10)])
    sender.wake()

    await settled(db, a + b, timeout=20)

    to_a, to_b = posts_to(connector, CHANNEL), posts_to(connector, OTHER)
    # Each conversation gets its first seven at once; B does not wait for A's pacing.
    assert max(r.received_at for r in to_b[:7]) < to_a[7].received_at
    assert max(r.received_at for r in to_a[:7]) < to_b[7].received_at
    assert [r.json["text"] for r in to_b] == [f"b{n}" for n in range(10)]


async def test_a_tenant_limit_spreads_posts_across_its_conversations(
    db: Database, connector: FakeConnector, outbound: Outbound
) -> None:
    settings = SenderSettings(poll_interval=0.05, tenant_limits=(Limit(5, 1.0),))
    sender = make_sender(db, outbound, settings)
    await sender.start()
    try:
        ids = [
            i for n in range(4) for i in await enqueue(db, connector, f"19:c{n}@thread.v2", ["x", "y", "z"])
        ]
        sender.wake()
        await settled(db, ids)
    finally:
        await sender.stop()

    times = sorted(r.received_at for r in connector.requests if r.kind == "send")
    assert len(times) == 12
    assert_within(times, [(5, 1.0)])


# -- stopping and taking over ------------------------------------------------------------------------


async def test_stop_gives_back_what_was_not_sent_and_another_sender_finishes(
    db: Database, connector: FakeConnector, outbound: Outbound
) -> None:
    first = make_sender(db, outbound)
    await first.start()
    ids = await enqueue(db, connector, CHANNEL, [f"m{n}" for n in range(12)])
    first.wake()
    await connector.wait_for_activities(7)

    await first.stop()

    sent = [r for r in rows(db, ids) if r.status == "sent"]
    waiting = [r for r in rows(db, ids) if r.status != "sent"]
    assert 7 <= len(sent) < 12
    assert all((r.status, r.claimed_by, r.attempts) == ("pending", None, 0) for r in waiting)
    second = make_sender(db, outbound)
    await second.start()
    try:
        await settled(db, ids, timeout=20)
    finally:
        await second.stop()
    assert texts_to(connector, CHANNEL) == [f"m{n}" for n in range(12)]


async def test_rows_of_a_crashed_sender_are_taken_over_after_its_lease(
    db: Database, connector: FakeConnector, sender: OutboxSender
) -> None:
    ids = await enqueue(db, connector, CHANNEL, ["one", "two"]) + await enqueue(
        db, connector, OTHER, ["three"]
    )
    lease = timedelta(seconds=1)
    # A process claims the rows and dies without a word.
    claimed = await db.commit(
        lambda s: outbox.claim(session=s, worker="crashed", now=now(), lease=lease, limit=10)
    )
    assert sorted(r.id for r in claimed if r.id) == ids
    claimed_at = now()
    sender.wake()

    done = await settled(db, ids, timeout=10)

    assert texts_to(connector, CHANNEL) == ["one", "two"] and texts_to(connector, OTHER) == ["three"]
    assert all((r.status, r.claimed_by, r.attempts) == ("sent", sender.worker, 2) for r in done)
    assert all(
        r.sent_at is not None and r.sent_at >= claimed_at + lease - timedelta(milliseconds=50) for r in done
    )


async def test_leases_are_renewed_while_rows_wait_for_their_turn(
    db: Database, connector: FakeConnector, outbound: Outbound
) -> None:
    # One post per 0.8 s into the conversation: its six rows wait about 4 s, twice their 2 s lease
    # (a lease this long leaves renewal, every third of it, slack on a loaded CI machine).
    slow = SenderSettings(
        poll_interval=0.05, lease=timedelta(seconds=2), conversation_limits=(Limit(1, 0.8),)
    )
    holder, rival = make_sender(db, outbound, slow), make_sender(db, outbound, FAST)
    await holder.start()
    try:
        ids = await enqueue(db, connector, CHANNEL, [f"m{n}" for n in range(6)])
        holder.wake()
        await connector.wait_for_activities(1)  # the holder has claimed all six and sent the first
        await rival.start()
        done = await settled(db, ids, timeout=10)
    finally:
        await rival.stop()
        await holder.stop()

    assert texts_to(connector, CHANNEL) == [f"m{n}" for n in range(6)]
    assert {r.claimed_by for r in done} == {holder.worker}
    assert rival.stats["sent"] == 0 and holder.stats["lost"] == 0
