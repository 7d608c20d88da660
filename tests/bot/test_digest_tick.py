"""The digest tick: an in-memory job of each process's own scheduler, run every minute and once at start."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from apscheduler.jobstores.memory import MemoryJobStore

from bot.digests import DigestTick
from bot.scheduler import build_scheduler
from core.db import Database
from policies import default_policy
from tests.core.digest_support import claims, make_room
from tests.fakes.connector import FakeConnector
from tests.scenarios.conftest import BASE_SETTINGS, serving

NINE = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


@pytest.fixture
async def connector() -> AsyncIterator[FakeConnector]:
    async with FakeConnector() as fake:
        yield fake


async def test_the_digest_job_is_in_memory_every_minute_and_runs_at_start(db: Database) -> None:
    tick = DigestTick(db, default_policy())
    scheduler = build_scheduler(db, keep_days=7, digests=tick.run)
    job = scheduler.get_job("digests")
    assert job is not None and job.trigger.interval == timedelta(minutes=1)
    assert job.next_run_time <= datetime.now(UTC) + timedelta(seconds=1)  # once at start, then every minute
    scheduler.start(paused=True)
    try:  # nothing is stored where another process could run it too
        assert {name: type(store) for name, store in scheduler._jobstores.items()} == {"default": MemoryJobStore}
    finally:
        scheduler.shutdown(wait=False)
    assert build_scheduler(db, keep_days=7).get_job("digests") is None


async def test_a_tick_wakes_the_sender_only_when_it_wrote_something(db: Database) -> None:
    woken: list[bool] = []
    tick = DigestTick(db, default_policy(), clock=lambda: NINE, wake=lambda: woken.append(True))
    assert await tick.run() == [] and woken == []
    make_room(db, "OP-LANTERN")
    [posted] = await tick.run()
    assert posted.room_key == "OP-LANTERN" and woken == [True]


async def test_a_digest_missed_while_the_bot_was_down_is_posted_when_it_starts(
    db: Database, connector: FakeConnector
) -> None:
    make_room(db, "OP-LANTERN", service_url=connector.url)  # digest 07:00; the bot starts at 09:00
    async with serving(BASE_SETTINGS, connector, db, clock=lambda: NINE):
        deadline = asyncio.get_running_loop().time() + 10
        while not connector.activities() and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
    [posted] = connector.activities()
    assert posted["summary"] == "OP-LANTERN digest Mon 30 Nov: nothing to act on"
    assert claims(db) == [("OP-LANTERN", "2026-11-30", "", "queued")]
