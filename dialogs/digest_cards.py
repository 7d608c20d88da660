"""The daily digest as an Adaptive Card (1.5, under 40 KB) with a plain-text fallback: pure functions.

Every title and name people typed is escaped (dialogs/text.py). When a room has more than fits, each
part shows its first tasks and says how many more there are, pointing to `/task list`; the card is
measured and cut further until it is under CARD_LIMIT bytes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from functools import lru_cache
from typing import Any

from core.digest.build import UNNAMED, Digest, Tally, assignee_label
from core.digest.scheduled import Rendered
from core.tasks.models import Task
from core.tasks.when import describe_due
from dialogs.cards import card, command_button, facts, text_block
from dialogs.context import ADAPTIVE_CARD
from dialogs.room_cards import banner
from dialogs.text import Markdown, card_markdown, code

CARD_LIMIT = 40_000
"""Bytes of a digest card's JSON: Teams takes about 100 KB a message; Opsroom designs for 40 KB."""
LINES = (10, 5, 3, 1, 0)
"""Tasks shown per part, tried in turn until the card fits."""
ASSIGNEES = 10
MORE = Markdown("`/task list`")
UNNAMED_ROW = "people not named here"
"""The by-assignee row of the tasks whose assignee the reader may not see named."""


def render(digest: Digest) -> Rendered:
    """The digest as a message activity (card, plain-text fallback, notification summary)."""
    content, shown = digest_card(digest)
    activity = {"type": "message", "summary": summary(digest),
                "attachments": [{"contentType": ADAPTIVE_CARD, "content": content}]}  # fmt: skip
    return Rendered(activity, shown)


def size(content: dict[str, Any]) -> int:
    """A card's size as sent, in bytes."""
    return len(json.dumps(content, ensure_ascii=False).encode("utf-8"))


def digest_card(digest: Digest) -> tuple[dict[str, Any], list[int]]:
    """The card, and the numbers of the tasks it shows in full."""
    if digest.quiet:
        line = quiet_line(digest)
        content = card([banner(digest.room.classification), text_block(line)])
        content["fallbackText"] = str(line)
        return content, []
    for limit in LINES:
        content, shown = _full_card(digest, limit)
        if size(content) < CARD_LIMIT:
            break
    return content, shown


def _day(digest: Digest) -> str:
    return digest.local_date.strftime("%a %d %b %Y")


def _local(moment: datetime, digest: Digest) -> str:
    return moment.astimezone(digest.zone).strftime("%a %d %b %H:%M")


def witness(digest: Digest) -> str:
    """The audit chain's head and event count, for anyone to compare with the store later."""
    head = digest.head
    return f"Audit trail: {head.seq:,} events, head #{head.seq} {head.hash[:16]}."


def quiet_line(digest: Digest) -> Markdown:
    """The one line of a digest with nothing to act on."""
    later = f"; {digest.open_count} open {_tasks(digest.open_count)} due later" if digest.open_count else ""
    line = card_markdown("Nothing to act on in **{key}** on {day}: ", key=digest.room.key, day=_day(digest))
    return Markdown(f"{line}nothing overdue, due today or unassigned, nothing done or added since "
                    f"{_local(digest.since, digest)}{later}. {witness(digest)}")  # fmt: skip


def _tasks(count: int) -> str:
    return "task" if count == 1 else "tasks"


def _line(task: Task, digest: Digest, detail: Callable[[Task, Digest], str]) -> str:
    return _escaped_line(task.number, task.title, detail(task, digest))


@lru_cache(maxsize=8192)
def _escaped_line(number: int, title: str, detail: str) -> str:
    """One task's line (escaping is most of a digest's cost; a room's readers share their lines)."""
    return card_markdown("- **#{number}** {title}{detail}", number=str(number), title=title, detail=detail)


def _who(task: Task, digest: Digest) -> str:
    label = assignee_label(task, digest.named)
    return f" · {label}" if label else ""


def _due(task: Task, digest: Digest) -> str:
    when = describe_due(task.due_at, now=digest.now, tz=digest.zone) if task.due_at else "no due date"
    return f" · due {when}{_who(task, digest)}"


def _done(task: Task, digest: Digest) -> str:
    return f" · done {_local(task.done_at, digest)}" if task.done_at else " · done"


def _new(task: Task, digest: Digest) -> str:
    return f" · due {describe_due(task.due_at, now=digest.now, tz=digest.zone)}" if task.due_at else ""


def parts(digest: Digest) -> list[tuple[str, list[Task], Callable[[Task, Digest], str]]]:
    """The digest's parts, in the order they are shown."""
    since = _local(digest.since, digest)
    return [("Overdue", digest.overdue, _due), ("Due today", digest.due_today, _due),
            ("Unassigned", digest.unassigned, _due), (f"Done since {since}", digest.done, _done),
            (f"New since {since}", digest.new, _new)]  # fmt: skip


def _full_card(digest: Digest, limit: int) -> tuple[dict[str, Any], list[int]]:
    room = digest.room
    audience = "for everyone in the room" if digest.reader is None else f"as {digest.reader} may see it"
    title_block = text_block(f"Daily digest: {room.name}", weight="Bolder", size="Medium")
    body = [banner(room.classification), title_block,
            text_block(f"{room.key} · {_day(digest)} · {audience}", isSubtle=True, spacing="None"),
            facts([(title, str(len(tasks))) for title, tasks, _ in parts(digest)]
                  + [("Open tasks", str(digest.open_count))])]  # fmt: skip
    heading = card_markdown("Daily digest: {name} ({key}), {day}, {audience}.", name=room.name, key=room.key,
                            day=_day(digest), audience=audience)  # fmt: skip
    plain: list[str] = [heading]
    shown: dict[int, None] = {}
    for title, tasks, detail in parts(digest):
        if not tasks:
            continue
        lines = [_line(task, digest, detail) for task in tasks[:limit]]
        shown.update((task.number, None) for task in tasks[:limit])
        if len(tasks) > limit:
            more = str(len(tasks) - limit)
            lines.append(card_markdown("…and {more} more: see {where}.", more=more, where=MORE))
        body += [text_block(f"{title} ({len(tasks)})", weight="Bolder")]
        body += [text_block(Markdown("\n".join(lines)), spacing="Small")] if lines else []
        plain += [f"{title} ({len(tasks)}):", *lines]
    if digest.assignees:
        top = digest.assignees[:ASSIGNEES]
        rest = sum(count for _, count in digest.assignees[ASSIGNEES:])
        pairs = [(UNNAMED_ROW if label == UNNAMED else label, str(count)) for label, count in top]
        pairs += [("Others", str(rest))] if rest else []
        body += [text_block("Open tasks by assignee", weight="Bolder"), facts(pairs)]
        counted = (card_markdown("{label} {count}", label=label, count=count) for label, count in pairs)
        plain += ["Open tasks by assignee: " + ", ".join(counted)]
    if digest.hidden.total:
        held = hidden_line(digest.hidden, room.key)
        body.append(text_block(held))
        plain.append(held)
    body.append(text_block(witness(digest), isSubtle=True, size="Small"))
    plain.append(witness(digest))
    content = card(body, [command_button("Task list", "task list")])
    content["fallbackText"] = "\n".join(plain)
    return content, list(shown)


def hidden_line(hidden: Tally, room_key: str) -> Markdown:
    """The room post's count of what only some members may see, and where each sees them."""
    kinds = [f"{n} {name}" for n, name in ((hidden.overdue, "overdue"), (hidden.due_today, "due today"),
                                           (hidden.unassigned, "unassigned"), (hidden.done, "done"),
                                           (hidden.new, "new")) if n]  # fmt: skip
    some = f" ({', '.join(kinds)})" if kinds else ""
    verb = "is" if hidden.total == 1 else "are"
    where = code(f"/task list --room {room_key}")
    return Markdown(f"{hidden.total} more {_tasks(hidden.total)}{some} {verb} shared with only some members: "
                    f"each sees them in their chat with Opsroom ({where}) or their own digest.")  # fmt: skip


def summary(digest: Digest) -> str:
    """One line for notifications: the room and the counts."""
    head = f"{digest.room.key} digest {digest.local_date:%a %d %b}"
    if digest.quiet:
        return f"{head}: nothing to act on"
    counts = [(len(digest.overdue), "overdue"), (len(digest.due_today), "due today"),
              (len(digest.unassigned), "unassigned"), (len(digest.done), "done"),
              (len(digest.new), "new")]  # fmt: skip
    return f"{head}: " + ", ".join(f"{n} {name}" for n, name in counts)
