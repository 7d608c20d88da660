"""Two bot processes with their own senders on one PostgreSQL database: every row is posted exactly once."""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import time
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from multiprocessing.synchronize import Event as EventType
from typing import Any

import pytest
from sqlmodel import Session, col, select

from bot.auth import build_authentication
from bot.config import Settings
from bot.outbound import Outbound
from bot.sender import OutboxSender, SenderSettings
from core.db import Database
from core.outbox import service as outbox
from core.outbox.models import OutboxMessage
from tests.fakes.connector import FakeConnector

ROWS = 200
CONVERSATIONS = 40
DEADLINE = 25.0


async def _serve(db_url: str, name: str, ready: EventType, finished: EventType) -> None:
    db = Database(db_url)
    outbound = Outbound()
    await outbound.start()
    local = Settings()
    settings = SenderSettings(poll_interval=0.05)
    auth = build_authentication(local, outbound)
    sender = OutboxSender.for_app(db, auth, outbound, local, options=settings, worker=name)
    await sender.start()
    ready.set()
    deadline = time.monotonic() + DEADLINE
    try:
        while not finished.is_set() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
    finally:
        await sender.stop()
        await outbound.close()
        await asyncio.to_thread(db.close)


def bot_process(db_url: str, name: str, ready: EventType, finished: EventType) -> None:
    """One bot process: a sender of its own until the test says it is over."""
    asyncio.run(_serve(db_url, name, ready, finished))


@pytest.fixture
async def connector() -> AsyncIterator[FakeConnector]:
    async with FakeConnector() as fake:
        yield fake


def _rows(db: Database) -> list[OutboxMessage]:
    return db.transaction(
        lambda s: list(s.exec(select(OutboxMessage).order_by(col(OutboxMessage.id)))), readonly=True
    )


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
async def test_two_processes_post_each_row_exactly_once(
    db: Database, db_url: str, connector: FakeConnector
) -> None:
    context = multiprocessing.get_context("spawn")
    ready = [context.Event(), context.Event()]
    finished = context.Event()
    processes = [
        context.Process(target=bot_process, args=(db_url, f"bot-{n}", ready[n], finished), daemon=True)
        for n in range(2)
    ]
    for process in processes:
        process.start()
    try:
        for event in ready:
            assert await asyncio.to_thread(event.wait, 20), "a bot process did not start"

        def seed(session: Session, start: int, stop: int) -> None:
            for n in range(start, stop):
                conversation = f"19:c{n % CONVERSATIONS}@thread.v2"
                reference: dict[str, Any] = {
                    "serviceUrl": connector.url,
                    "conversation": {"id": conversation, "conversationType": "channel", "tenantId": "t1"},
                }
                activity = {"type": "message", "text": f"m{n}"}
                outbox.enqueue(
                    session=session, kind="notice", reference=json.dumps(reference), activity=activity,
                    now=datetime.now(UTC),
                )  # fmt: skip

        # Written in several commits while both senders poll, as requests would.
        for start in range(0, ROWS, 25):
            await db.commit(lambda s, start=start: seed(s, start, start + 25))
            await asyncio.sleep(0.02)
        deadline = asyncio.get_running_loop().time() + DEADLINE
        while any(r.status != "sent" for r in _rows(db)) and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.1)
    finally:
        finished.set()
        for process in processes:
            await asyncio.to_thread(process.join, 15)
            if process.is_alive():
                process.kill()

    stored = _rows(db)
    assert [r.status for r in stored] == ["sent"] * ROWS
    received = Counter(a["text"] for a in connector.activities())
    assert received == Counter(f"m{n}" for n in range(ROWS))  # each exactly once
    assert {r.claimed_by for r in stored} == {"bot-0", "bot-1"}  # both took part
    for conversation in {r.conversation_id for r in stored}:  # and each conversation kept its order
        texts = [a["text"] for a in connector.activities() if a.conversation_id == conversation]
        assert texts == sorted(texts, key=lambda t: int(t[1:]))
    assert all(p.exitcode == 0 for p in processes)
