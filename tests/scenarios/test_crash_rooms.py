"""Kill the server (SIGKILL) at random points while rooms open: every card in Teams belongs to a room with
its audit events, a re-send after the crash never posts a second card, and the chain verifies."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
from sqlalchemy import text

from core.audit import service
from core.db import Database
from tests import fixtures
from tests.fakes.connector import FakeConnector
from tests.scenarios.test_crash import ROOT, free_port, wait_until_up


@asynccontextmanager
async def bot_process(db_url: str) -> AsyncIterator[tuple[str, subprocess.Popen[bytes]]]:
    """`python -m bot serve` in its own process, as production runs it."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPSROOM_", "Microsoft"))}
    env.update(DATABASE_URL=db_url, PORT=str(port), OPSROOM_HOME_TENANT_ID=fixtures.HOME_TENANT,
               OPSROOM_HOME_DOMAINS="opsroom.example", OPSROOM_LOG_LEVEL="WARNING")  # fmt: skip
    process = subprocess.Popen([sys.executable, "-m", "bot", "serve"], cwd=ROOT, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        await wait_until_up(f"http://127.0.0.1:{port}/healthz", process)
        yield f"http://127.0.0.1:{port}/api/messages", process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)


async def post_all(url: str, activities: list[dict[str, Any]]) -> set[str]:
    """POST every activity at once; the ids the server acknowledged."""
    acknowledged: set[str] = set()
    async with aiohttp.ClientSession() as http:

        async def one(activity: dict[str, Any]) -> None:
            try:
                async with http.post(url, data=json.dumps(activity),
                                     headers={"Content-Type": "application/json"}) as response:  # fmt: skip
                    if response.status == 201:
                        acknowledged.add(activity["id"])
            except aiohttp.ClientError:
                pass  # in flight when the server died

        await asyncio.gather(*(one(a) for a in activities))
    return acknowledged


def card_keys(connector: FakeConnector) -> list[str]:
    """The room key on every room card the bot posted (a new thread starts with one)."""
    keys = []
    for request in connector.requests:
        if request.kind == "create" and not request.failed:
            card = request.json["activity"]["attachments"][0]["content"]
            keys += [f["value"] for part in card["body"] if part.get("type") == "FactSet"
                     for f in part["facts"] if f["title"] == "Key"]  # fmt: skip
    return keys


@pytest.mark.parametrize("round_", range(2))
async def test_rooms_opening_under_sigkill_leave_no_card_without_a_room(
    db: Database, db_url: str, connector: FakeConnector, round_: int
) -> None:
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    names = [rng.choice(["Lantern", "Kestrel", "Heron"]) + f" {i % 7}" for i in range(40)]
    activities = [fixtures.load("channel_message_mention", service_url=connector.url, text=f"room open {name}")
                  for name in names]  # fmt: skip
    kill_after = rng.randrange(1, 25)
    async with bot_process(db_url) as (url, process):

        async def kill_when_cards_appear() -> None:
            while len(card_keys(connector)) < kill_after and process.poll() is None:
                await asyncio.sleep(0.001)
            await asyncio.sleep(rng.random() * 0.02)
            process.send_signal(signal.SIGKILL)

        acknowledged, _ = await asyncio.gather(post_all(url, activities), kill_when_cards_appear())
    # Teams re-sends what was not answered; a restarted bot must not post a second card for any of it.
    async with bot_process(db_url) as (url, _process):
        await post_all(url, [a for a in activities if a["id"] not in acknowledged])

    cards = card_keys(connector)
    rooms = db.transaction(lambda s: dict(s.execute(text("SELECT key, status FROM room")).all()), readonly=True)
    audited = db.transaction(lambda s: {r[0] for r in s.execute(text(
        "SELECT DISTINCT room_key FROM audit_event WHERE room_key IS NOT NULL"))}, readonly=True)  # fmt: skip
    context = f"seed {seed}, killed after {kill_after} cards"
    assert cards, context
    assert [k for k, n in Counter(cards).items() if n > 1] == [], context  # one card per room, ever
    assert set(cards) <= set(rooms), context  # every card belongs to a room...
    assert set(cards) <= audited, context  # ...with its audit events
    assert {rooms[k] for k in cards} <= {"open", "opening", "cancelled"}, context
    assert db.transaction(service.verify, readonly=True).ok, context
