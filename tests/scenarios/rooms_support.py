"""Helpers for room scenarios: a controllable clock and activities inside a room's thread."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from core.db import Database
from tests import fixtures
from tests.scenarios.conftest import Exchange, Harness

SUPERVISOR = {"id": fixtures.SUPERVISOR_ID, "aadObjectId": fixtures.SUPERVISOR_AAD, "name": fixtures.SUPERVISOR_NAME}
BEN = {"id": fixtures.OFFICER2_ID, "aadObjectId": fixtures.OFFICER2_AAD, "name": fixtures.OFFICER2_NAME}


def in_thread(harness: Harness, conversation_id: str, text_: str, **overrides: Any) -> dict[str, Any]:
    """A channel message @mentioning the bot inside a given thread/channel conversation."""
    activity = harness.activity("channel_message_mention", text_, **overrides)
    activity["conversation"] = {**activity["conversation"], "id": conversation_id}
    return activity


async def open_room(harness: Harness, command: str = "room open Operation Lantern", **overrides: Any) -> Exchange:
    return await harness.say("channel_message_mention", command, **overrides)


def room_thread(harness: Harness) -> str:
    """The conversation id of the newest thread the bot started."""
    created = [r for r in harness.connector.requests if r.kind == "create"]
    assert created, "the bot started no thread"
    return str(created[-1].response["id"])


def rows(db: Database, sql: str) -> list[Any]:
    return db.transaction(lambda s: [tuple(r) for r in s.execute(text(sql))], readonly=True)
