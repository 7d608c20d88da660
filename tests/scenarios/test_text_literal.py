"""What people type lands where they typed it and is shown as they typed it, over HTTP."""

from __future__ import annotations

from typing import Any

from core.db import Database
from dialogs.commands import build_router
from dialogs.room_cards import ROOM_COMMANDS
from tests.dialogs.test_text import render
from tests.scenarios.conftest import Harness
from tests.scenarios.rooms_support import in_thread, open_room, room_thread, rows

HOSTILE = "*Op* [x](http://evil) <b>"


def room_card(harness: Harness) -> dict[str, Any]:
    created = [r for r in harness.connector.requests if r.kind == "create"]
    content: dict[str, Any] = created[-1].json["activity"]["attachments"][0]["content"]
    return content


def blocks(card: dict[str, Any]) -> list[str]:
    """Every TextBlock and Fact value of a card, as people see it."""
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "TextBlock":
                found.append(render(node["text"], target="card"))
            found.extend(render(f["value"], target="card") for f in node.get("facts", []))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(card)
    return found


async def test_a_purpose_takes_every_word_and_the_name_stops_at_the_flag(rooms: Harness, db: Database) -> None:
    result = await open_room(rooms, "room open Lantern --purpose covert surveillance of 12 Acacia Ave")
    assert result.texts[0].startswith("Opened **OP-LANTERN**: Lantern (OFFICIAL).")
    assert rows(db, "SELECT name, purpose FROM room") == [("Lantern", "covert surveillance of 12 Acacia Ave")]
    assert "covert surveillance of 12 Acacia Ave" in blocks(room_card(rooms))


async def test_apostrophes_are_text_and_quotes_are_optional(rooms: Harness, db: Database) -> None:
    await open_room(rooms, "room open St Mary's --purpose check O'Brien's house --digest 06:30")
    await open_room(rooms, "room open 'Kestrel' --purpose=\"watch the back\" door")
    assert rows(db, "SELECT name, purpose, digest_time FROM room ORDER BY id") == [
        ("St Mary's", "check O'Brien's house", "06:30"), ("Kestrel", "watch the back door", "07:00")]  # fmt: skip


async def test_room_close_takes_a_reason_of_several_words(rooms: Harness, db: Database) -> None:
    await open_room(rooms)
    closed = await rooms.send(in_thread(rooms, room_thread(rooms), "room close --reason two words"))
    card = closed.replies[0]["attachments"][0]["content"]
    facts = {f["title"]: f["value"] for f in card["body"][2]["facts"]}
    assert facts["Reason"] == "two words"
    assert rows(db, "SELECT status, closed_reason FROM room") == [("closed", "two words")]
    assert rooms.audit()[-1]["justification"] == "two words"


async def test_what_cannot_be_placed_is_refused_with_the_usage(rooms: Harness, db: Database) -> None:
    flag = await open_room(rooms, "room open Lantern --purpose use the --force")
    assert flag.texts[0].startswith("unknown option `--force`\n\nUsage: **/room open &lt;name&gt; ")
    assert "\\[--purpose TEXT\\]" in flag.texts[0]
    bidi = await open_room(rooms, "room open Lantern --purpose pay \u202eeulav")
    assert bidi.texts[0].startswith("purpose: cannot contain control characters or bidi overrides")
    extra = await rooms.say("channel_message_mention", "room list --all rooms")
    assert extra.texts[0].startswith("--all takes no value: put `rooms` before the options")
    assert rows(db, "SELECT count(*) FROM room") == [(0,)]


async def test_a_hostile_name_shows_literally_in_the_card_the_reply_and_the_list(rooms: Harness, db: Database) -> None:
    opened = await open_room(rooms, f"room open {HOSTILE} --purpose <script>alert(1)</script> & *more*")
    [(key, name, purpose)] = rows(db, "SELECT key, name, purpose FROM room")
    assert (name, purpose) == (HOSTILE, "<script>alert(1)</script> & *more*")
    card = room_card(rooms)
    assert card["body"][1]["text"] == "Operation room: \\*Op\\* \\[x\\](http://evil) \\<b\\>"
    seen = blocks(card)
    assert f"Operation room: {HOSTILE}" in seen and "<script>alert(1)</script> & *more*" in seen
    assert render(opened.texts[0], target="message").startswith(f"Opened {key}: {HOSTILE} (OFFICIAL).")
    listed = await rooms.say("channel_message_mention", "room list")
    assert f"{key} {HOSTILE} (open; lead" in render(listed.texts[0], target="message")
    assert "&lt;b&gt;" in listed.texts[0] and "<b>" not in listed.texts[0]  # never raw HTML in a message
    status = await rooms.send(in_thread(rooms, room_thread(rooms), "room status"))
    assert f"{HOSTILE}: status" in blocks(status.replies[0]["attachments"][0]["content"])


async def test_help_shows_angle_brackets_as_text(harness: Harness) -> None:
    listing = await harness.say("personal_message", "/help")
    assert "Type `/help` &lt;command&gt; for its options." in listing.texts[0]
    assert "Type /help <command> for its options." in render(listing.texts[0], target="message")
    usage = await harness.say("personal_message", "/help room open")
    shown = render(usage.texts[0], target="message")
    assert shown.startswith("/room open <name> [--template T] [--classification OFFICIAL|OFFICIAL-SENSITIVE] "
                            "[--purpose TEXT] [--digest HH:MM]")  # fmt: skip
    unknown = await harness.say("personal_message", "/help <b>`x`")
    assert render(unknown.texts[0], target="message").startswith("There is no command /<b>`x` you can run here.")


async def test_the_room_card_points_only_to_commands_the_bot_has(rooms: Harness) -> None:
    await open_room(rooms)
    card = room_card(rooms)
    words = {c.words for c in build_router().commands()}
    hint = blocks(card)[-1]
    advertised = ", ".join(f"/{w}" for w in ROOM_COMMANDS if w in words)
    assert hint.startswith(f"In this thread: {advertised}.") and "/task add, /task list" in advertised
    assert [a["data"]["command"] for a in card["actions"]] == ["room status", "task list"]
    for action in card["actions"]:  # each button runs: the command exists
        assert action["data"]["command"] in words
        pressed = await rooms.send(in_thread(rooms, room_thread(rooms), action["data"]["command"]))
        assert rooms.audit()[-1]["outcome"] == "ok"
        assert pressed.texts == ["No open tasks in OP-LANTERN."] or \
            pressed.replies[0]["attachments"][0]["content"]["body"][1]["text"] == "Operation Lantern: status"
