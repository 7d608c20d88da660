"""Helpers for task scenarios: a room to work in, tasks written straight to the store, what cards say."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlmodel import Session

from core.agencies.models import Agency
from core.db import Database
from core.rooms.models import RoomMember
from core.tasks import service
from core.tasks.service import Actor
from tests import fixtures
from tests.scenarios.conftest import Exchange, Harness
from tests.scenarios.rooms_support import in_thread, open_room, room_thread, rows

ADA = Actor(fixtures.OFFICER_AAD, fixtures.OFFICER_NAME)
GUEST = {"id": fixtures.GUEST_ID, "aadObjectId": fixtures.GUEST_AAD, "name": fixtures.GUEST_NAME}


async def a_room(harness: Harness, name: str = "Operation Lantern") -> str:
    """Open a room (Ada leads it) and return its thread's conversation id."""
    await open_room(harness, f"room open {name}")
    return room_thread(harness)


async def say(harness: Harness, thread: str, text: str, **overrides: Any) -> Exchange:
    """A command typed in the room's thread (by Ada, unless from_ says otherwise)."""
    return await harness.send(in_thread(harness, thread, text, **overrides))


async def as_guest(harness: Harness, thread: str, text: str) -> Exchange:
    """A command from the partner-agency guest, in the room's thread."""
    activity = harness.activity("guest_message", text)
    activity["conversation"] = {**activity["conversation"], "id": thread}
    return await harness.send(activity)


async def press(harness: Harness, thread: str, data: dict[str, Any], **typed: str) -> Exchange:
    """Press a card button (Action.Submit) in the thread: its data, with what was typed into the card's inputs."""
    activity = harness.activity("card_submit_message", value={**data, **typed})
    activity["conversation"] = {**activity["conversation"], "id": thread}
    return await harness.send(activity)


def room_id(db: Database, key: str = "OP-LANTERN") -> int:
    [(found,)] = rows(db, f"SELECT id FROM room WHERE key = '{key}'")
    return int(found)


def add_tasks(db: Database, count: int, *, now: datetime, key: str = "OP-LANTERN", **options: Any) -> None:
    """`count` tasks added through the task service (as concurrent /task add would), titled Task 1.. ."""
    where = room_id(db, key)

    def add(session: Session) -> None:
        for n in range(count):
            service.add(session, where, title=f"Task {n + 1}", by=ADA, now=now, **options)

    db.transaction(add)


def add_task(db: Database, title: str, *, now: datetime, key: str = "OP-LANTERN", **options: Any) -> int:
    """One task through the service; its number."""
    where = room_id(db, key)
    return int(db.transaction(lambda s: service.add(s, where, title=title, by=ADA, now=now, **options).number))


def agency(db: Database, *keys: str, now: datetime) -> None:
    """Register partner agencies straight in the store."""
    db.transaction(lambda s: s.add_all([Agency(key=key, name=key.title(), created_at=now) for key in keys]))


def guest_member(db: Database, *, role: str, agency_key: str, now: datetime, key: str = "OP-LANTERN") -> None:
    """Make the fixture guest a member of the room, as an invitation would."""
    where = room_id(db, key)
    db.transaction(lambda s: s.add(RoomMember(room_id=where, aad_id=fixtures.GUEST_AAD, tenant_id=fixtures.GUEST_TENANT,
                                              name=fixtures.GUEST_NAME, role=role, agency=agency_key, joined_at=now)))


def counts(db: Database) -> tuple[int, int, int, int]:
    """Rows of task, task_event, task_share and the room's task counter: nothing changed keeps them equal."""
    [(tasks, events, shares, seq)] = rows(db, "SELECT (SELECT count(*) FROM task), (SELECT count(*) FROM task_event), "
                                              "(SELECT count(*) FROM task_share), (SELECT sum(task_seq) FROM room)")
    return int(tasks), int(events), int(shares), int(seq or 0)


def card_of(result: Exchange) -> dict[str, Any]:
    [reply] = result.replies
    content: dict[str, Any] = reply["attachments"][0]["content"]
    return content


def texts(node: Any) -> Iterator[str]:
    """Every TextBlock text in a card, in order (nested containers included)."""
    if isinstance(node, dict):
        if node.get("type") == "TextBlock":
            yield str(node["text"])
        for value in node.values():
            yield from texts(value)
    elif isinstance(node, list):
        for item in node:
            yield from texts(item)


def actions(node: Any) -> Iterator[dict[str, Any]]:
    """Every action in a card (those inside show-cards too)."""
    if isinstance(node, dict):
        if str(node.get("type", "")).startswith("Action."):
            yield node
        for value in node.values():
            yield from actions(value)
    elif isinstance(node, list):
        for item in node:
            yield from actions(item)


def headings(card: dict[str, Any]) -> list[str]:
    """The task headings of a list card (`**#3** Title`), in order."""
    return [t for t in texts(card) if t.startswith("**#")]


def size(card: dict[str, Any]) -> int:
    return len(json.dumps(card).encode())

