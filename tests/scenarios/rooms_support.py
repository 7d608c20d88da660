"""Helpers for room scenarios: a controllable clock and activities inside a room's thread."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text

from core.db import Database
from tests import fixtures
from tests.scenarios.conftest import Exchange, Harness

SUPERVISOR = {"id": fixtures.SUPERVISOR_ID, "aadObjectId": fixtures.SUPERVISOR_AAD, "name": fixtures.SUPERVISOR_NAME}
BEN = {"id": fixtures.OFFICER2_ID, "aadObjectId": fixtures.OFFICER2_AAD, "name": fixtures.OFFICER2_NAME}
SAM = {"id": fixtures.GUEST_ID, "aadObjectId": fixtures.GUEST_AAD, "name": fixtures.GUEST_NAME}
"""The guest fixture: a social-care worker with a B2B guest account in the force's team."""
SAM_EMAIL = "sam.guest@socialcare.example"
AGENCY_DOMAINS = (("socialcare", "socialcare.example"), ("health", "nhs.example"))


def register_agencies(db: Database, pairs: tuple[tuple[str, str], ...] = AGENCY_DOMAINS) -> None:
    """Partner agencies (key, email domain), registered straight in the store."""

    def add(session: Any) -> None:
        for key, domain in pairs:
            session.execute(text("INSERT INTO agency (key, name, created_at) VALUES (:k, :n, :at)"),
                            {"k": key, "n": f"{key} agency", "at": datetime(2026, 1, 1, tzinfo=UTC)})  # fmt: skip
            session.execute(text("INSERT INTO agency_domain (agency, domain) VALUES (:k, :d)"),
                            {"k": key, "d": domain})  # fmt: skip

    db.transaction(add)


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
