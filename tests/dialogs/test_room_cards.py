"""Room cards: they point only to commands the bot has, and show people's text literally."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from core.rooms.models import Room
from dialogs.commands import build_router
from dialogs.names import Names
from dialogs.room_cards import ROOM_BUTTONS, ROOM_COMMANDS, close_card, registered, room_card
from dialogs.welcome import welcome_card

HOSTILE = "*Op* [x](http://evil) <b>"
LEAD = Names(frozenset({"aad-1"}))


def a_room(**overrides: Any) -> Room:
    values: dict[str, Any] = {
        "key": "OP-LANTERN", "name": "Operation Lantern", "classification": "OFFICIAL", "timezone": "Europe/London",
        "digest_time": "07:00", "lead_aad_id": "aad-1", "lead_name": "PC Ada Officer", "tenant_id": "tenant",
        "space_kind": "thread", "reference": "{}", "opened_at": datetime(2026, 11, 30, 9, tzinfo=UTC),
    }  # fmt: skip
    return Room(**{**values, **overrides})


def texts(card: dict[str, Any]) -> list[str]:
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "TextBlock":
                found.append(node["text"])
            found.extend(f["value"] for f in node.get("facts", []))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(card)
    return found


def test_the_room_card_advertises_only_commands_the_bot_has() -> None:
    words = {c.words for c in build_router().commands()}
    assert registered() == words
    card = room_card(a_room(), commands=registered(), names=LEAD)
    hint = texts(card)[-1]
    advertised = [w for w in ROOM_COMMANDS if f"`/{w}`" in hint]
    assert advertised and set(advertised) <= words
    assert "`/task add`, `/task list`" in hint
    assert [a["data"]["command"] for a in card["actions"]] == [w for _, w in ROOM_BUTTONS if w in words]
    assert all(a["data"]["command"] in words for a in card["actions"])


def test_the_room_card_shows_a_command_once_it_exists() -> None:
    card = room_card(a_room(), commands={*registered(), "task add", "task list", "invite"}, names=LEAD)
    assert "`/task add`, `/task list`, `/invite`, `/room status`, `/room close`" in texts(card)[-1]
    assert [a["title"] for a in card["actions"]] == ["Room status", "Tasks"]
    nothing = room_card(a_room(), commands=set(), names=LEAD)
    assert texts(nothing)[-1] == "Everything done here is audited." and "actions" not in nothing


def test_room_cards_show_what_people_typed_literally() -> None:
    room = a_room(name=HOSTILE, purpose="# not a heading", lead_name="_Ann_", closed_reason="<i>done</i>",
                  closed_at=datetime(2026, 12, 1, tzinfo=UTC))  # fmt: skip
    opened = texts(room_card(room, commands=registered(), names=LEAD, template_name="*x*"))
    assert "Operation room: \\*Op\\* \\[x\\](http://evil) \\<b\\>" in opened
    assert "\\# not a heading" in opened and "\\_Ann\\_" in opened and "\\*x\\* (0 tasks created)" in opened
    closed = texts(close_card(room, open_tasks=0, members=1))
    assert "\\<i\\>done\\</i\\>" in closed and "\\*Op\\* \\[x\\](http://evil) \\<b\\> is closed" in closed
    assert "A lead or supervisor can `/room reopen` it." in closed[-1]  # our own Markdown, as written


def test_the_welcome_card_escapes_the_team_name() -> None:
    assert texts(welcome_card("**Ops** <Room>"))[0] == "Opsroom has been added to **\\*\\*Ops\\*\\* \\<Room\\>**."
    assert texts(welcome_card(None))[0] == "Opsroom has been added."


def test_the_room_card_names_the_lead_only_where_it_may() -> None:
    assert "PC Ada Officer" in texts(room_card(a_room(), commands=set(), names=LEAD))
    hidden = texts(room_card(a_room(), commands=set(), names=Names()))
    assert "PC Ada Officer" not in hidden and "aad-1" not in hidden and "not shown" in hidden
