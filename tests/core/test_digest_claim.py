"""Digests exactly once, from the database: several processes, a crash before delivery, downtime."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlmodel import Session

from bot.auth import build_authentication
from bot.config import Settings
from bot.digests import post_due
from bot.outbound import Outbound
from bot.outbox_http import ConnectorPost, connector_for
from bot.sender import OutboxSender, SenderSettings
from core.db import Database
from core.digest import claim
from policies import Policy, default_policy
from tests.core.digest_support import actions, claims, digests_per_room_and_day, make_room
from tests.fakes.connector import FakeConnector

SEVEN_FIVE = datetime(2026, 11, 30, 7, 5, tzinfo=UTC)  # 07:05 in London (GMT)
KEYS = [f"OP-{n:02d}" for n in range(12)]


@pytest.fixture
def policy() -> Policy:
    return default_policy()


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
async def test_two_processes_ticking_the_same_minute_post_one_digest_per_room(
    db: Database, db_url: str, policy: Policy
) -> None:
    for key in KEYS:
        make_room(db, key)
    first, second = Database(db_url), Database(db_url)  # two engines, as two processes would have
    try:
        results = await asyncio.gather(*(post_due(db_, policy, now=SEVEN_FIVE) for db_ in (first, second, first)))
        again = await asyncio.gather(*(post_due(db_, policy, now=SEVEN_FIVE) for db_ in (second, first)))
    finally:
        first.close()
        second.close()
    posted = sorted(p.room_key for result in results for p in result)
    assert posted == KEYS  # each room claimed by exactly one of them
    assert again == [[], []]
    assert digests_per_room_and_day(db) == {(key, "2026-11-30"): 1 for key in KEYS}
    assert len(actions(db, "digest.queued")) == len(KEYS)


async def _deliver(db: Database, connector: FakeConnector, timeout: float = 10.0) -> None:
    """Run a sender (a process starting up) until nothing is waiting in the outbox."""
    outbound = Outbound()
    await outbound.start()
    post = ConnectorPost(outbound, connector_for(build_authentication(Settings(), outbound), None))
    later = SEVEN_FIVE.replace(hour=9)  # the process's clock: after the digest was written
    sender = OutboxSender(db, post, settings=SenderSettings(poll_interval=0.05), clock=lambda: later)
    await sender.start()
    try:
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            pending = db.transaction(undelivered, readonly=True)
            if not pending:
                return
            await asyncio.sleep(0.05)
        raise AssertionError("the outbox was not delivered")
    finally:
        await sender.stop()
        await outbound.close()


def undelivered(session: Session) -> int:
    sql = text("SELECT count(*) FROM outbox_message WHERE status IN ('pending', 'sending')")
    return int(session.execute(sql).scalar_one())


@pytest.fixture
async def connector() -> AsyncIterator[FakeConnector]:
    async with FakeConnector() as fake:
        yield fake


async def test_a_crash_between_claim_and_delivery_delivers_it_later_once(
    db: Database, db_url: str, connector: FakeConnector, policy: Policy
) -> None:
    make_room(db, "OP-LANTERN", service_url=connector.url)
    # The first process claims and writes the digest, then dies before its sender posts it.
    crashed = Database(db_url)
    try:
        [posted] = await post_due(crashed, policy, now=SEVEN_FIVE)
    finally:
        crashed.close()
    assert posted.outcome == "queued" and connector.activities() == []
    # A process starting later: its tick finds the digest claimed; its sender delivers it, once.
    restarted = Database(db_url)
    try:
        assert await post_due(restarted, policy, now=SEVEN_FIVE.replace(hour=8)) == []
        await _deliver(restarted, connector)
        await _deliver(restarted, connector, timeout=0.3)
    finally:
        restarted.close()
    [sent] = connector.activities()
    assert sent["summary"].startswith("OP-LANTERN digest Mon 30 Nov")
    [delivered] = actions(db, "digest.delivered")
    assert json.loads(str(delivered["recipients"])) == ["19:op-lantern@thread.tacv2;messageid=1"]


@pytest.mark.parametrize(("restart", "outcome"), [((10, 0), "queued"), ((13, 0), "skipped")])
async def test_after_downtime_a_missed_digest_is_sent_within_the_grace_window_else_skipped(
    db: Database, policy: Policy, restart: tuple[int, int], outcome: str
) -> None:
    make_room(db, "OP-LANTERN")  # digest at 07:00; the bot was down from 06:00
    now = datetime(2026, 11, 30, *restart, tzinfo=UTC)

    [posted] = await post_due(db, policy, now=now)

    assert posted.outcome == outcome
    assert claims(db) == [("OP-LANTERN", "2026-11-30", "", outcome)]
    sent = digests_per_room_and_day(db)
    assert sent == ({("OP-LANTERN", "2026-11-30"): 1} if outcome == "queued" else {})
    skips = actions(db, "digest.skipped")
    if outcome == "skipped":
        [skip] = skips
        assert (skip["room_key"], skip["actor_kind"], skip["outcome"]) == ("OP-LANTERN", "system", "skipped")
        assert json.loads(str(skip["arguments"])) == {"local_date": "2026-11-30"}
        assert "grace window" in str(skip["detail"])
    else:
        assert skips == []
    # Nothing more that day, and the next day's goes out as usual.
    assert await post_due(db, policy, now=now.replace(hour=23)) == []
    [tomorrow] = await post_due(db, policy, now=datetime(2026, 12, 1, 7, 0, tzinfo=UTC))
    assert (tomorrow.local_date, tomorrow.outcome) == ("2026-12-01", "queued")


async def test_a_later_grace_setting_sends_a_later_restart(db: Database, policy: Policy) -> None:
    make_room(db, "OP-LANTERN")
    [posted] = await post_due(db, policy, now=datetime(2026, 11, 30, 13, 0, tzinfo=UTC), grace_until="14:00")
    assert posted.outcome == "queued"


async def test_closed_orphaned_and_switched_off_rooms_have_no_digest(db: Database, policy: Policy) -> None:
    for key in ("OP-CLOSED", "OP-GONE", "OP-OFF", "OP-LIVE"):
        make_room(db, key)
    db.transaction(lambda s: (s.execute(text("UPDATE room SET status = 'closed' WHERE key = 'OP-CLOSED'")),
                              s.execute(text("UPDATE room SET orphaned = true WHERE key = 'OP-GONE'")),
                              s.execute(text("UPDATE room SET digest_time = NULL WHERE key = 'OP-OFF'"))))  # fmt: skip
    due = db.transaction(lambda s: claim.due(s, now=SEVEN_FIVE), readonly=True)
    assert [d.room_key for d in due] == ["OP-LIVE"]
