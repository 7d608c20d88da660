"""Helpers for access scenarios: a room with partner agencies, guests invited and bound, the access tick."""

from __future__ import annotations

import json
from typing import Any

from bot.access import Ticked
from bot.app import ACCESS
from core.db import Database
from tests import fixtures
from tests.scenarios.conftest import Exchange, Harness
from tests.scenarios.rooms_support import in_thread, open_room, register_agencies, room_thread

KIM_EMAIL = "kim@socialcare.example"
NIA_EMAIL = "nia@nhs.example"


async def lantern(harness: Harness, db: Database, command: str = "room open Operation Lantern --purpose County lines") -> str:
    """Partner agencies registered and a room opened by Ada: the room's thread (or channel)."""
    register_agencies(db)
    await open_room(harness, command)
    return room_thread(harness)


async def say(harness: Harness, thread: str, text_: str, **overrides: Any) -> Exchange:
    return await harness.send(in_thread(harness, thread, text_, **overrides))


async def press(harness: Harness, thread: str, data: dict[str, Any], **overrides: Any) -> Exchange:
    """Press a card button (Action.Submit) in the thread, as whoever from_ names (Ada by default)."""
    activity = harness.activity("card_submit_message", value=data, **overrides)
    activity["conversation"] = {**activity["conversation"], "id": thread}
    return await harness.send(activity)


async def in_chat(harness: Harness, text_: str, **overrides: Any) -> Exchange:
    """A command in Ada's personal chat with Opsroom (which also makes the bot remember that chat)."""
    return await harness.say("personal_message", text_, **overrides)


async def press_in_chat(harness: Harness, data: dict[str, Any]) -> Exchange:
    """Press a card button in Ada's personal chat."""
    personal = fixtures.load("personal_message", service_url=harness.connector.url)["conversation"]
    return await harness.send(harness.activity("card_submit_message", value=data, conversation=personal))


def chat_posts(harness: Harness) -> list[dict[str, Any]]:
    """The cards posted (not replied) into Ada's personal chat so far."""
    posted = [a for a in harness.connector.activities()
              if a.conversation_id == fixtures.PERSONAL_CONVERSATION_ID and a.kind == "send"]  # fmt: skip
    return [a["attachments"][0]["content"] for a in posted]


async def tick(harness: Harness) -> Ticked:
    """This process's access tick, run now (the scheduler runs it every two minutes)."""
    return await harness.server.app[ACCESS].run()


def card(exchange: Exchange) -> dict[str, Any]:
    [reply] = exchange.replies
    content: dict[str, Any] = reply["attachments"][0]["content"]
    return content


def texts(node: Any) -> list[str]:
    """Every TextBlock text in a card, in order."""
    found: list[str] = []
    if isinstance(node, dict):
        if node.get("type") == "TextBlock":
            found.append(str(node["text"]))
        for value in node.values():
            found += texts(value)
    elif isinstance(node, list):
        for item in node:
            found += texts(item)
    return found


def buttons(node: Any) -> list[dict[str, Any]]:
    """Every Action.Submit in a card, in order."""
    found: list[dict[str, Any]] = []
    if isinstance(node, dict):
        if node.get("type") == "Action.Submit":
            found.append(node)
        for value in node.values():
            found += buttons(value)
    elif isinstance(node, list):
        for item in node:
            found += buttons(item)
    return found


def events(harness: Harness, action: str) -> list[dict[str, Any]]:
    """The audit events of one action, in order, their JSON columns read."""
    found = []
    for event in harness.audit():
        if event["action"] == action:
            event = dict(event)
            event["arguments"] = json.loads(event["arguments"])
            event["recipients"] = json.loads(event["recipients"]) if event["recipients"] else None
            found.append(event)
    return found
