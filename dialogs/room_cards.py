"""Adaptive Cards for rooms: pure functions of the room's data, returning dicts."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from datetime import datetime, timedelta
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from core.rooms.flows import Status
from core.rooms.models import Room
from dialogs.cards import card, command_button, facts, text_block
from dialogs.names import Names
from dialogs.text import Markdown, card_markdown, code

_BANNER_STYLE = {"OFFICIAL": "accent", "OFFICIAL-SENSITIVE": "attention"}


def banner(classification: str) -> dict[str, Any]:
    """The classification banner every room card starts with."""
    return {"type": "Container", "style": _BANNER_STYLE.get(classification, "accent"), "bleed": True,
            "items": [text_block(classification, weight="Bolder", horizontalAlignment="Center")]}  # fmt: skip


ROOM_COMMANDS = ("task add", "task list", "invite", "room status", "room close")
"""The commands a room card points to, in order; only those the bot has are shown."""
ROOM_BUTTONS = (("Room status", "room status"), ("Tasks", "task list"))


@cache
def registered() -> frozenset[str]:
    """The words of every command the bot has."""
    from dialogs.commands import build_router  # here: dialogs.commands imports the room commands

    return frozenset(command.words for command in build_router().commands())


def local(moment: datetime | None, zone: str) -> str:
    """A moment as people in the room read it."""
    if moment is None:
        return "-"
    return moment.astimezone(ZoneInfo(zone)).strftime("%a %d %b %Y %H:%M")


def room_card(room: Room, *, commands: Collection[str], names: Names, tasks: int = 0,
              template_name: str | None = None) -> dict[str, Any]:  # fmt: skip
    """Posted when the room opens: what it is, who leads, the commands that matter (of `commands`, the
    words of those the bot has: see `registered`); names: whom it may name."""
    pairs = [("Key", room.key), ("Lead", lead(room, names)),
             ("Classification", room.classification), ("Daily digest", f"{room.digest_time or 'off'} "
             f"({room.timezone})")]  # fmt: skip
    if template_name:
        pairs.append(("Template", f"{template_name} ({tasks} tasks created)"))
    body = [banner(room.classification),
            text_block(f"Operation room: {room.name}", weight="Bolder", size="Large"),
            facts(pairs)]  # fmt: skip
    if room.purpose:
        body.append(text_block(room.purpose))
    advertised = ", ".join(code(f"/{words}") for words in ROOM_COMMANDS if words in commands)
    where = f"In this thread: {advertised}. " if advertised else ""
    body.append(text_block(Markdown(f"{where}Everything done here is audited."), isSubtle=True))
    buttons = [command_button(title, words) for title, words in ROOM_BUTTONS if words in commands]
    return card(body, buttons)


def lead(room: Room, names: Names) -> str:
    """The room's lead, as a card may show them."""
    return names.person(room.lead_aad_id, room.lead_name, hidden="not shown")


def _people(count: int, more: str = "") -> str:
    return f"1 {more}person" if count == 1 else f"{count} {more}people"


def status_card(status: Status, *, now: datetime, names: Names) -> dict[str, Any]:
    """/room status: members by agency and role (named only where `names` allows, the rest counted), task
    counts, next digest, state."""
    room = status.room
    state = "closed (read-only)" if room.closed else "open"
    if room.orphaned:
        state += f"; orphaned: {room.orphaned_reason or 'its Teams space is gone'}"
    pairs = [("Key", room.key), ("State", state), ("Lead", lead(room, names)),
             ("Classification", room.classification),
             ("Tasks", f"{status.open_tasks} open, {status.overdue_tasks} overdue"),
             ("Next digest", next_digest(room, now=now))]  # fmt: skip
    groups: dict[str, list[str]] = defaultdict(list)
    counted: dict[str, int] = defaultdict(int)
    for member in status.members:
        agency = member.agency or "Police"
        if names.shows(member.aad_id):
            groups[agency].append(f"{member.name or member.aad_id} ({member.role.replace('_', ' ')})")
        else:
            counted[agency] += 1
    members = []
    for agency in sorted(groups.keys() | counted.keys()):
        shown, more = groups.get(agency, []), counted.get(agency, 0)
        rest = (f"and {_people(more, 'more ')}" if shown else _people(more)) if more else ""
        listed = ", ".join([*shown, rest] if rest else shown)
        members.append(text_block(card_markdown("**{agency}**: {names}", agency=agency, names=listed)))
    body = [banner(room.classification), text_block(f"{room.name}: status", weight="Bolder", size="Medium"),
            facts(pairs), text_block("Members", weight="Bolder"), *members]  # fmt: skip
    return card(body)


def close_card(room: Room, *, open_tasks: int, members: int) -> dict[str, Any]:
    """Posted when a room closes: a summary, and that it is now read-only."""
    pairs = [("Key", room.key), ("Closed", local(room.closed_at, room.timezone)),
             ("Reason", room.closed_reason or "not given"), ("Open tasks left", str(open_tasks)),
             ("Members", str(members))]  # fmt: skip
    reopen = Markdown("The room is now read-only. A lead or supervisor can `/room reopen` it.")
    body = [banner(room.classification), text_block(f"{room.name} is closed", weight="Bolder", size="Medium"),
            facts(pairs), text_block(reopen)]  # fmt: skip
    return card(body)


def next_digest(room: Room, *, now: datetime) -> str:
    """When the next daily digest will be posted, in the room's time."""
    if room.closed or not room.digest_time:
        return "off"
    zone = ZoneInfo(room.timezone)
    hour, minute = (int(part) for part in room.digest_time.split(":"))
    today = now.astimezone(zone)
    candidate = today.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if candidate <= today:
        candidate = (today.replace(hour=12) + _DAY).replace(hour=hour, minute=minute, second=0, microsecond=0)
    return candidate.strftime("%a %d %b %H:%M")


_DAY = timedelta(days=1)
