"""A room of 50 tasks for the HTTP part: opened and filled over HTTP the way people fill one.

`set_up` drives the running opsroom server with Teams channel messages, one at a time: Ada (an
officer) types `/room open` in the team's General channel; the bot creates the room's thread at the
connector, whose id the connector hands back; Ben (officer) and Sue (supervisor) each ask for
`/room status` in the thread, which makes them members; then Ada types 50 `/task add` in the thread,
every third assigned to Ben and every seventh to Sue by @mention, every fourth with a due date, every
sixth high priority. Every answer is checked at the connector, so the database is what the bot's own
commands leave behind.

`check` asks the connector for the newest reply and fails loudly unless it is the real answer: a card
naming the room, with its 50 open tasks (status) or its task list's heading and a task title (list).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from dataclasses import dataclass
from typing import Any

import aiohttp

from bench import procs
from tests import fixtures

TASKS = 50
COMMANDS = ("/room status", "/task list")
ROOM_NAME = "Operation Kestrel"
OPEN = f"/room open {ROOM_NAME} --purpose Missing person, high risk: Northfield search and enquiries"

ADA = {"id": fixtures.OFFICER_ID, "aadObjectId": fixtures.OFFICER_AAD, "name": fixtures.OFFICER_NAME}
BEN = {"id": fixtures.OFFICER2_ID, "aadObjectId": fixtures.OFFICER2_AAD, "name": fixtures.OFFICER2_NAME}
SUE = {"id": fixtures.SUPERVISOR_ID, "aadObjectId": fixtures.SUPERVISOR_AAD, "name": fixtures.SUPERVISOR_NAME}

_ACTIONS = ("House-to-house on", "Collect CCTV from", "Take a statement at", "Welfare check at",
            "Search the gardens of", "Check doorbell footage near", "Speak to the manager of",
            "Canvass bus drivers on the route past", "Leaflet around", "Review ANPR near")  # fmt: skip
_PLACES = ("12 Acacia Avenue", "the Co-op on High Street", "Northfield Library", "St Mary's Road",
           "the Red Lion car park", "Mill Lane allotments", "Elm Court flats", "the canal towpath",
           "Greenway Primary School", "the petrol station on Bristol Road", "Kings Heath park",
           "the bus depot")  # fmt: skip
_OPENED = re.compile(r"Opened \*\*([A-Z0-9-]+)\*\*")


def titles(count: int = TASKS) -> list[str]:
    """`count` distinct task titles, as an operation room's tasking reads."""
    out: list[str] = []
    for n in range(count):
        out.append(f"{_ACTIONS[n % len(_ACTIONS)]} {_PLACES[(n * 7 + n // len(_ACTIONS)) % len(_PLACES)]}")
    if len(set(out)) != count:
        raise RuntimeError("task titles repeat")
    return out


def task_add(n: int, title: str) -> tuple[str, list[dict[str, Any]]]:
    """The text of the n-th `/task add` (from 0) and the mention entities Teams attaches to it."""
    text, mentions = f"<at>{fixtures.BOT_NAME}</at> /task add {title}", []
    for every, who in ((7, SUE), (3, BEN)):
        if n % every == every - 1:
            text += f" --assign <at>{who['name']}</at>"
            mentions.append({"type": "mention", "text": f"<at>{who['name']}</at>",
                             "mentioned": {"id": who["id"], "name": who["name"]}})  # fmt: skip
            break
    if n % 4 == 3:
        text += f" --due +{1 + n % 5}d"
    if n % 6 == 5:
        text += " --priority high"
    return text, mentions


def mix(count: int = TASKS) -> dict[str, int]:
    """How many of the `/task add` commands assign, give a due date, set high priority."""
    typed = [task_add(n, title)[0] for n, title in enumerate(titles(count))]
    return {flag: sum(f"--{flag} " in text for text in typed) for flag in ("assign", "due", "priority")}


def activity(service_url: str, text: str, *, conversation: str | None = None,
             sender: dict[str, str] | None = None, mentions: list[dict[str, Any]] | None = None
             ) -> dict[str, Any]:  # fmt: skip
    """The Teams channel message `@Opsroom <text>`, in the given thread (default: the fixture's)."""
    found = fixtures.load("channel_message_mention", service_url=service_url, text=text,
                          **({"from_": sender} if sender else {}))  # fmt: skip
    if conversation is not None:
        found["conversation"] = {**found["conversation"], "id": conversation}
    found["entities"] = [*found["entities"], *(mentions or [])]
    return found


@dataclass(frozen=True)
class Room:
    """The room the measured commands are typed in."""

    key: str
    conversation: str
    tasks: int
    titles: tuple[str, ...]
    setup_seconds: float
    mix: dict[str, int]
    """How many tasks were added assigned, with a due date, high priority."""


def _reply_json(connector: procs.Connector) -> tuple[str | None, str]:
    """(conversation, JSON text) of the newest activity at the connector."""
    last = connector.last()
    if last is None:
        raise RuntimeError("the connector has received no activity")
    return last.get("conversation"), json.dumps(last.get("activity"), ensure_ascii=False)


def _text(connector: procs.Connector) -> str:
    last = connector.last() or {}
    return str((last.get("activity") or {}).get("text") or "")


def set_up(bot_url: str, connector: procs.Connector) -> Room:
    """Open the room and add its tasks through the bot, checking every answer (see the module doc)."""
    began = time.perf_counter()
    service_url = connector.url
    url = f"{bot_url}/api/messages"

    async def drive() -> tuple[str, str]:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:

            async def say(body: dict[str, Any], what: str) -> None:
                async with http.post(url, json=body) as response:
                    await response.read()
                    if response.status >= 300:
                        raise RuntimeError(f"{what}: the bot answered HTTP {response.status}")

            before = connector.created()
            await say(activity(service_url, OPEN, sender=ADA), "/room open")
            opened, thread = _OPENED.search(_text(connector)), connector.created()
            if opened is None or thread is None or thread == before:
                raise RuntimeError(f"/room open did not open a room: {_text(connector)!r}, thread {thread!r}")
            key = opened.group(1)
            for who in (BEN, SUE):
                status = activity(service_url, "/room status", conversation=thread, sender=who)
                await say(status, f"{who['name']}'s /room status")
                conversation, reply = _reply_json(connector)
                if conversation != thread or f'"{key}"' not in reply:
                    raise RuntimeError(f"{who['name']} did not get {key}'s status: {reply[:300]}")
            for n, title in enumerate(titles()):
                text, mentions = task_add(n, title)
                await say(activity(service_url, text, conversation=thread, sender=ADA, mentions=mentions),
                          f"/task add #{n + 1}")  # fmt: skip
                added = _text(connector)
                if not added.startswith(f"Added **#{n + 1}** to {key}:"):
                    raise RuntimeError(f"/task add #{n + 1} was not added: {added!r}")
                if mentions and "assigned to" not in added.lower():
                    raise RuntimeError(f"/task add #{n + 1} was not assigned: {added!r}")
            return key, thread

    key, thread = asyncio.run(drive())
    return Room(key=key, conversation=thread, tasks=TASKS, titles=tuple(titles()),
                setup_seconds=round(time.perf_counter() - began, 2), mix=mix())  # fmt: skip


def check(command: str, room: Room, connector: procs.Connector) -> str:
    """Fail unless the newest reply at the connector is `command`'s real answer in the room; a summary."""
    conversation, reply = _reply_json(connector)
    problems = []
    if conversation != room.conversation:
        problems.append(f"it went to {conversation!r}, not the room's thread")
    if "application/vnd.microsoft.card.adaptive" not in reply:
        problems.append("it is not a card")
    if f'"{room.key}' not in reply:
        problems.append(f"it does not name {room.key}")
    if command == "/room status":
        wanted = f"{room.tasks} open, "
        if wanted not in reply:
            problems.append(f"it does not say {wanted!r}")
    elif command == "/task list":
        heading = f"{room.key}: open tasks ({room.tasks})"
        if heading not in reply:
            problems.append(f"it has no heading {heading!r}")
        if not any(title in reply for title in room.titles):
            problems.append("it shows no task title")
    if problems:
        raise RuntimeError(f"{command} in {room.key} was not answered with the real answer: "
                           f"{'; '.join(problems)}. Reply: {reply[:600]}")  # fmt: skip
    return "card naming " + room.key + (f", {room.tasks} open" if command == "/room status" else
                                        f", heading and titles of {room.tasks} tasks")  # fmt: skip


def request(service_url: str, command: str, room: Room) -> dict[str, Any]:
    """Ada's `@Opsroom <command>` in the room's thread (the load generator gives each a fresh id)."""
    return activity(service_url, command, conversation=room.conversation, sender=ADA)
