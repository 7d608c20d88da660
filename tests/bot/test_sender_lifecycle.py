"""The outbox sender against the fake Bot Connector: Teams' limits kept, stop, takeover and leases."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from bot.outbound import Outbound
from bot.pacing import Limit
from bot.sender import OutboxSender, SenderSettings
from core.db import Database
from core.outbox import service as outbox
from tests.bot.sender_support import (
    CHANNEL,
    FAST,
    OTHER,
    enqueue,
    make_sender,
    now,
    posts_to,
    rows,
    settled,
    texts_to,
)
from tests.fakes.connector import FakeConnector
from tests.fakes.connector_limits import TEAMS_THREAD_LIMITS


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
    # One post per 2.4 s into the conversation: its six rows wait about 12 s, twice their 6 s lease
    # (a lease this long leaves renewal, every third of it, slack on a loaded CI machine, where a
    # renewal's commit has queued behind other work for over two seconds).
    slow = SenderSettings(
        poll_interval=0.05, lease=timedelta(seconds=6), conversation_limits=(Limit(1, 2.4),)
    )
    holder, rival = make_sender(db, outbound, slow), make_sender(db, outbound, FAST)
    await holder.start()
    try:
        ids = await enqueue(db, connector, CHANNEL, [f"m{n}" for n in range(6)])
        holder.wake()
        await connector.wait_for_activities(1)  # the holder has sent the first
        held = rows(db, ids)
        assert {(r.status, r.claimed_by) for r in held[1:]} == {("sending", holder.worker)}, held
        await rival.start()
        done = await settled(db, ids, timeout=30)
    finally:
        await rival.stop()
        await holder.stop()

    assert texts_to(connector, CHANNEL) == [f"m{n}" for n in range(6)]
    assert {r.claimed_by for r in done} == {holder.worker}
    assert rival.stats["sent"] == 0 and holder.stats["lost"] == 0
