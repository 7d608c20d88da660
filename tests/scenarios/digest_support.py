"""Helpers for digest scenarios: tasks written straight to the store, the tick run by hand, cards read."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlmodel import Session

from bot.app import DIGESTS
from core.db import Database
from core.digest.scheduled import Posted
from core.outbox.models import PersonalChat
from core.rooms.models import RoomMember
from core.tasks import service as tasks
from core.tasks.service import Actor, Assignee
from tests import fixtures
from tests.scenarios.conftest import Harness
from tests.scenarios.rooms_support import rows

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)  # the `clock` fixture's time: 09:00 in London
ADA = Actor(fixtures.OFFICER_AAD, fixtures.OFFICER_NAME)
BEN_ASSIGNEE = Assignee(aad_id=fixtures.OFFICER2_AAD, name=fixtures.OFFICER2_NAME)
SAM = {"id": fixtures.GUEST_ID, "aadObjectId": fixtures.GUEST_AAD, "name": fixtures.GUEST_NAME}


def room_id(db: Database, key: str = "OP-LANTERN") -> int:
    return int(rows(db, f"SELECT id FROM room WHERE key = '{key}'")[0][0])


def add_task(
    db: Database, room: int, title: str, *, due: datetime | None = None, assignee: Assignee | None = None,
    share: Sequence[str] = (), created: datetime = NOW - timedelta(days=2), done: datetime | None = None,
) -> int:  # fmt: skip
    """A task as `/task add` would write it (and `/task done`, when done is given); its number."""

    def write(session: Session) -> int:
        task = tasks.add(session, room, title=title, by=ADA, now=created, due_at=due, assignee=assignee,
                         share=share)  # fmt: skip
        if done is not None:
            tasks.done(session, task, by=ADA, now=done)
        return task.number

    return db.transaction(write)


def add_member(db: Database, room: int, aad_id: str, *, role: str, agency: str | None = None,
               name: str | None = None, personal: bool = False) -> None:  # fmt: skip
    """A room_member row written directly (as an accepted invitation would)."""
    member = RoomMember(room_id=room, aad_id=aad_id, name=name, role=role, agency=agency,
                        joined_at=NOW - timedelta(days=3), digest_personal=personal)  # fmt: skip
    db.transaction(lambda s: s.add(member))


def add_personal_chat(db: Database, harness: Harness, aad_id: str, conversation_id: str) -> None:
    """The bot's personal chat with someone, as their install would have recorded it."""
    reference = {"serviceUrl": harness.connector.url, "conversation": {"id": conversation_id,
                 "conversationType": "personal", "tenantId": fixtures.HOME_TENANT}}  # fmt: skip
    chat = PersonalChat(aad_id=aad_id, tenant_id=fixtures.HOME_TENANT, conversation_id=conversation_id,
                        reference=json.dumps(reference), updated_at=NOW)  # fmt: skip
    db.transaction(lambda s: s.add(chat))


async def tick(harness: Harness) -> list[Posted]:
    """This process's digest tick, run now (the scheduler runs it every minute)."""
    return await harness.server.app[DIGESTS].run()


def card_of(activity: Any) -> dict[str, Any]:
    content: dict[str, Any] = activity["attachments"][0]["content"]
    return content


def texts(card: dict[str, Any]) -> str:
    """Every TextBlock text and Fact of a card, one per line."""
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "TextBlock":
                found.append(str(node["text"]))
            if node.get("type") == "FactSet":
                found.extend(f"{f['title']}: {f['value']}" for f in node["facts"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(card.get("body"))
    return "\n".join(found)


async def audit_event(harness: Harness, action: str, count: int = 1, timeout: float = 5.0) -> list[dict[str, Any]]:
    """The audit events of an action, once `count` of them are there (delivery is recorded after posting)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        found = [e for e in harness.audit() if e["action"] == action]
        if len(found) >= count or asyncio.get_running_loop().time() > deadline:
            return found
        await asyncio.sleep(0.02)
