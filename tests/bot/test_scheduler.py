"""Housekeeping: old dedupe claims are pruned; recent ones stay, so re-sends still do nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from bot.scheduler import build_scheduler, prune_processed
from core.audit.service import utc_stamp
from core.db import Database
from core.dedupe import service as dedupe


async def test_old_claims_are_pruned_and_recent_ones_kept(db: Database) -> None:
    old = utc_stamp(datetime.now(UTC) - timedelta(days=8))
    recent = utc_stamp(datetime.now(UTC) - timedelta(hours=1))
    db.transaction(lambda s: (dedupe.claim(session=s, key="a" * 64, activity_id="old", at=old),
                              dedupe.claim(session=s, key="b" * 64, activity_id="recent", at=recent)))  # fmt: skip
    assert await prune_processed(db, keep_days=7) == 1
    left = db.transaction(lambda s: [r[0] for r in s.execute(text("SELECT activity_id FROM processed_activity"))])
    assert left == ["recent"]
    assert db.transaction(lambda s: dedupe.seen(session=s, key="b" * 64))


async def test_the_scheduler_carries_the_prune_and_sweep_jobs(db: Database) -> None:
    scheduler = build_scheduler(db, keep_days=3)
    jobs = {job.id: job for job in scheduler.get_jobs()}
    assert set(jobs) == {"prune-processed", "sweep-openings"}
    assert jobs["prune-processed"].kwargs == {"keep_days": 3}
    assert jobs["prune-processed"].trigger.interval == timedelta(hours=6)
    assert jobs["sweep-openings"].trigger.interval == timedelta(minutes=1)


async def test_the_access_tick_runs_every_two_minutes_when_given(db: Database) -> None:
    async def access() -> None:
        return None

    scheduler = build_scheduler(db, keep_days=3, access=access)
    job = scheduler.get_job("access")
    assert job.trigger.interval == timedelta(minutes=2)
    assert (job.coalesce, job.max_instances) == (True, 1)
    assert build_scheduler(db, keep_days=3).get_job("access") is None
