"""Adaptive Cards for tasks: the list and one task with its history; pure functions returning dicts.

Cards stay well under Teams' 40 KB: a list shows at most LIST_MAX tasks within LIST_BUDGET bytes and
says how many more there are; a task's history shows its newest changes within HISTORY_BUDGET.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Hashable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from core import text as safe
from core.rooms.models import Room
from core.tasks.models import SHARE_ALL, Task, TaskEvent
from core.tasks.service import NOTE_MAX, is_overdue
from core.tasks.when import describe_due, local_today
from dialogs.cards import card, command_button, facts, text_block
from dialogs.names import UNNAMED, Names
from dialogs.room_cards import banner, local
from dialogs.text import Markdown, card_markdown, escape_card

LIST_MAX = 25
LIST_BUDGET = 28_000
"""Bytes of JSON the rows of a list may take (the whole card stays under 32 KB)."""
HISTORY_BUDGET = 24_000
NOTE_SHOWN = 1_000
"""Characters of one note a card shows (the whole note is in the task's history)."""


@dataclass(frozen=True)
class Buttons:
    """What the caller may do to a task from a card (the policy said so)."""

    done: bool = False
    note: bool = False
    reopen: bool = False


@dataclass(frozen=True)
class Listing:
    """A list card and what it showed."""

    card: dict[str, Any]
    shown: list[int]
    """The numbers of the tasks on the card."""
    encoded: str | None = None
    """`json.dumps(card)`, when building it took that encoding (Reply.card_json)."""


def size(value: Any) -> int:
    """Bytes of a card (or part of one) as JSON."""
    return len(json.dumps(value).encode())


def assignee(task: Task, names: Names) -> str:
    """Whom a task is for, as the reader may see it: a person they may not name is only "assigned"."""
    if task.assignee_aad_id:
        return names.person(task.assignee_aad_id, task.assignee_name, hidden=UNNAMED)
    if task.assignee_agency:
        return f"agency {task.assignee_agency}"
    return "nobody"


def shared(agencies: Collection[str]) -> str:
    """Whom a task is shared with."""
    if SHARE_ALL in agencies:
        return "every agency in the room"
    return ", ".join(sorted(agencies)) or "nobody outside the police"


def due(task: Task, *, now: datetime, zone: ZoneInfo) -> str:
    """When a task is due, in the room's time, and whether it is late."""
    if task.due_at is None:
        return "no due time"
    label = describe_due(task.due_at, now=now, tz=zone)
    return f"{label} (overdue)" if is_overdue(task, now) else label


def buttons(task: Task, allowed: Buttons, *, room_flag: str) -> list[dict[str, Any]]:
    """Done, Note (a field to type it in) and Reopen, each submitting the command as typed.

    room_flag: ` --room KEY` when the card is shown outside the room's own space.
    """
    number = task.number
    out = []
    if allowed.done and task.is_open:
        out.append(command_button("Done", f"task done {number}{room_flag}"))
    if allowed.note:
        field = f"note-{task.id}"
        entry = {"type": "Input.Text", "id": field, "isMultiline": True, "maxLength": NOTE_MAX,
                 "isRequired": True, "label": f"Note on #{number}", "errorMessage": "Type the note first."}
        command = {"command": f"task note {number}{room_flag}", "inputs": {"text": field}}
        submit = {"type": "Action.Submit", "title": "Add note", "data": command}
        out.append({"type": "Action.ShowCard", "title": "Note", "card": {"type": "AdaptiveCard",
                    "body": [entry], "actions": [submit]}})  # fmt: skip
    if allowed.reopen and not task.is_open:
        out.append(command_button("Reopen", f"task reopen {number}{room_flag}"))
    return out


def _heading(task: Task) -> Markdown:
    # card_markdown("**#{number}** {title}{done}", ...) with only the title escaped: a number and
    # " (done)" are what escaping leaves as they are, and this runs for every row of a list.
    title = escape_card(safe.clean(task.title, 200) or "")
    return Markdown(f"**#{task.number}** {title}" + ("" if task.is_open else " (done)"))


def _row(task: Task, allowed: Buttons, *, now: datetime, zone: ZoneInfo, room_flag: str,
         names: Names) -> dict[str, Any]:  # fmt: skip
    who = assignee(task, names)
    parts = [f"due {due(task, now=now, zone=zone)}", who if who == UNNAMED else f"for {who}"]
    if task.priority != "normal":
        parts.append(f"{task.priority} priority")
    items = [text_block(_heading(task)), text_block(", ".join(parts), isSubtle=True, spacing="None")]
    actions = buttons(task, allowed, room_flag=room_flag)
    if actions:
        items.append({"type": "ActionSet", "actions": actions})
    style = {"style": "attention"} if is_overdue(task, now) else {}
    return {"type": "Container", "separator": True, "items": items, **style}


def list_card(room: Room, tasks: Sequence[tuple[Task, Buttons]], *, heading: str, now: datetime,
              more_hint: str, names: Names, room_flag: str = "",
              footer: str | None = None) -> Listing:  # fmt: skip
    """/task list: the tasks in the order given (overdue first, then by due time), as many as fit, and how
    many more there are (more_hint: where to look for them); names: whom it may name; footer: a last
    line (what a reply in the room's space leaves out)."""
    zone = ZoneInfo(room.timezone)
    every = [_row(task, allowed, now=now, zone=zone, room_flag=room_flag, names=names)
             for task, allowed in tasks[:LIST_MAX]]  # fmt: skip
    head = [banner(room.classification), text_block(heading, weight="Bolder", size="Medium")]

    def tail(rows: int) -> list[dict[str, Any]]:
        out = []
        if more := len(tasks) - rows:
            out.append(text_block(f"{more} more: {more_hint}", isSubtle=True, separator=True))
        if footer:
            out.append(text_block(footer, isSubtle=True, separator=True))
        return out

    # Usually every row fits: the card is encoded once with all of them (the reply keeps that JSON), and
    # the rows' bytes are its size less that of the card without them, less the ", " before each row.
    # JSON is ASCII here (json.dumps escapes the rest), so characters are bytes.
    whole = card([*head, *every, *tail(len(every))])
    encoded = json.dumps(whole)
    bare = json.dumps(card([*head, *tail(len(every))]))
    if len(encoded) - len(bare) - 2 * len(every) <= LIST_BUDGET:
        return Listing(whole, [task.number for task, _ in tasks[: len(every)]], encoded)
    rows: list[dict[str, Any]] = []
    used = 0
    for row in every:  # only when they do not all fit is each row measured, to see where to stop
        used += size(row)
        if used > LIST_BUDGET and rows:
            break
        rows.append(row)
    return Listing(card([*head, *rows, *tail(len(rows))]), [task.number for task, _ in tasks[: len(rows)]])


def list_key(room: Room, tasks: Sequence[tuple[Task, Buttons]], *, heading: str, now: datetime,
             more_hint: str, names: Names, room_flag: str = "",
             footer: str | None = None) -> Hashable:  # fmt: skip
    """Everything `list_card` reads, given the same arguments, as a key: the same key, the same card. For
    the tasks of one kept room state only (core/rooms/states.py), where a task id stands for its fields.
    `now` counts only through the room's local date (due labels) and which tasks are overdue."""
    zone = ZoneInfo(room.timezone)
    rows = tuple((task.id, allowed, assignee(task, names), is_overdue(task, now))
                 for task, allowed in tasks[:LIST_MAX])  # fmt: skip
    return ("list card", room.classification, room.timezone, local_today(now, zone), heading, more_hint,
            room_flag, footer, len(tasks), rows)  # fmt: skip


def _change(event: TaskEvent, names: Names) -> str:
    if event.change == "assigned":  # the history keeps whom as a label: shown if it names no one hidden
        whom = event.detail or "nobody"
        return f"assigned it to {whom}" if names.label(whom) else "assigned it"
    what = {"created": "created it", "done": "marked it done", "note": "added a note",
            "reopened": "reopened it"}.get(event.change, event.change)  # fmt: skip
    return what


def _history_row(event: TaskEvent, zone: str, names: Names) -> dict[str, Any]:
    who = safe.clean(names.person(event.actor_aad_id, event.actor_name), 120) or ""
    line = card_markdown("{when} **{who}** {what}", when=local(event.at, zone), who=who,
                         what=_change(event, names))  # fmt: skip
    items = [text_block(line)]
    if event.change in ("note", "done") and event.detail:
        note = event.detail if len(event.detail) <= NOTE_SHOWN else event.detail[:NOTE_SHOWN] + "..."
        items.append(text_block(note, spacing="None", isSubtle=True))
    return {"type": "Container", "items": items}


def task_card(room: Room, task: Task, *, shares: Collection[str], history: Sequence[TaskEvent],
              allowed: Buttons, now: datetime, names: Names,
              room_flag: str = "") -> dict[str, Any]:  # fmt: skip
    """/task show: the task, whom it is for and shared with, and its history (the newest that fit); names:
    whom it may name (anyone else is "someone", or "assigned")."""
    zone = ZoneInfo(room.timezone)
    state, who = "open", assignee(task, names)
    if not task.is_open:
        state = f"done {local(task.done_at, room.timezone)}" if task.done_at else "done"
    pairs = [("Room", room.key), ("Status", state), ("Due", due(task, now=now, zone=zone)),
             ("Assigned to", "a person not named here" if who == UNNAMED else who),
             ("Priority", task.priority), ("Shared with", shared(shares)),
             ("Created", local(task.created_at, room.timezone))]  # fmt: skip
    rows: list[dict[str, Any]] = []
    used = 0
    for event in reversed(history):  # the newest changes matter most: keep them when space runs out
        row = _history_row(event, room.timezone, names)
        used += size(row)
        if used > HISTORY_BUDGET and rows:
            break
        rows.insert(0, row)
    body = [banner(room.classification), text_block(_heading(task), size="Medium"), facts(pairs),
            text_block("History", weight="Bolder")]  # fmt: skip
    if len(rows) < len(history):
        body.append(text_block(f"{len(history) - len(rows)} earlier changes are not shown.", isSubtle=True))
    body += rows
    return card(body, buttons(task, allowed, room_flag=room_flag))
