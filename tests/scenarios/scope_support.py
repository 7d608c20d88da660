"""A room with partner-agency guests in it, as they get there: agencies registered, /invite by the lead,
the guest's first activity in the room's thread binding them; and the guest's own chat with Opsroom."""

from __future__ import annotations

import json
from typing import Any

from core.db import Database
from tests import fixtures
from tests.scenarios.conftest import Exchange, Harness
from tests.scenarios.rooms_support import SAM, SAM_EMAIL, in_thread, open_room, register_agencies, room_thread

SAM_CHAT = "a:1SamGuestPersonalChat"
HANA_AAD = "eeeeeeee-0000-4000-8000-000000000001"
HANA_NAME = "Hana Health (NHS)"
CARA_AAD = "eeeeeeee-0000-4000-8000-000000000002"
CARA_NAME = "Cara Colleague (Social Care)"


async def room_with_sam(rooms: Harness, db: Database, *, terms: str = "") -> str:
    """OP-LANTERN, led by Ada, with Sam (social care) invited on these /invite terms and bound; its thread."""
    register_agencies(db)
    await open_room(rooms, "room open Operation Lantern --purpose County lines")
    thread = room_thread(rooms)
    invited = await rooms.send(in_thread(rooms, thread, f"invite socialcare {SAM_EMAIL} --isa ISA-1 {terms}"))
    assert f"{SAM_EMAIL}: invited" in json.dumps(invited.replies), invited.replies
    bound = await rooms.send(in_thread(rooms, thread, "help", from_=SAM))
    assert bound.replies and rooms.audit()[-1]["actor_agency"] == "socialcare"
    return thread


async def sam_in_thread(rooms: Harness, thread: str, command: str) -> Exchange:
    return await rooms.send(in_thread(rooms, thread, command, from_=SAM))


async def sam_in_chat(rooms: Harness, command: str) -> Exchange:
    """Sam writes in his own personal chat with Opsroom."""
    rooms.connector.add_member(SAM_CHAT, fixtures.member("guest"))
    conversation = {"conversationType": "personal", "tenantId": fixtures.HOME_TENANT, "id": SAM_CHAT}
    return await rooms.say("personal_message", command, from_=SAM, conversation=conversation)


def reply_json(exchange: Exchange) -> str:
    """What the bot answered (text, cards, summary) as JSON: every title and name it shows is in here. The
    envelope (who it is addressed to) is left out: it names the recipient, who knows who they are."""
    shown = [{k: reply.get(k) for k in ("text", "attachments", "summary")} for reply in exchange.replies]
    return json.dumps(shown, ensure_ascii=False)


def card_texts(exchange: Exchange) -> str:
    """The texts of the reply's card (TextBlocks and facts), one per line."""
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "TextBlock":
                found.append(str(node["text"]))
            found.extend(f"{f['title']}: {f['value']}" for f in node.get("facts", []))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    [reply] = exchange.replies
    walk(reply["attachments"][0]["content"])
    return "\n".join(found)
