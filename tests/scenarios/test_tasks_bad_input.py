"""/task given bad input: a clear answer with the usage, and nothing changed but the audit event."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from core.db import Database
from tests.scenarios.conftest import Harness
from tests.scenarios.tasks_support import a_room, add_task, agency, counts, say

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)

BAD_INPUT = [
    # (command, what the answer says, the audit event's outcome)
    ("task add Visit --due 31/02", "Write dates as YYYY-MM-DD, not 31/02.", "refused"),
    ("task add Visit --due 2026-02-31", "2026-02-31 is not a date.", "refused"),
    ("task add Visit --due yesterday", "That is not a due time I understand.", "refused"),
    ("task add Visit --due today 08:00", "That is in the past: today 08:00. A new task is due later than now.",
     "refused"),
    ("task add Visit --due 2026-11-29", "That is in the past: Sun 29 Nov 23:59.", "refused"),
    ("task add Visit --due tomorrow 25:00", "25:00 is not a time", "refused"),
    ("task add Visit --assign nobody@nowhere.example",
     "I can't find nobody@nowhere.example here: mention them, use their email, or an agency key.", "refused"),
    ("task add Visit --assign Ben", "I can't find Ben here", "refused"),
    ("task add Visit --share health,nosuch,other", "No agency is registered as nosuch, other. A supervisor "
     "registers agencies with `/agency add`.", "refused"),
    ("task add Visit --share all,health", "all already means every agency", "parse_error"),
    ("task add Visit --share not_a_key", "must be agency keys separated by commas", "parse_error"),
    ("task add " + "x" * 201, "titles are at most 200 characters (this one is 201)", "parse_error"),
    ("task add Visit --priority urgent", "priority:", "parse_error"),
    ("task add Visit\u202e12", "cannot contain control characters or bidi overrides", "parse_error"),
    ("task add --due tomorrow", "title: Field required", "parse_error"),
    ("task show 99", "There is no task #99 in OP-LANTERN.", "refused"),
    ("task done #99 visited", "There is no task #99 in OP-LANTERN.", "refused"),
    ("task note 99 hello", "There is no task #99 in OP-LANTERN.", "refused"),
    ("task assign 99 ben.officer@opsroom.example", "There is no task #99 in OP-LANTERN.", "refused"),
    ("task reopen 99", "There is no task #99 in OP-LANTERN.", "refused"),
    ("task show 2", "There is no task #2 in OP-LANTERN.", "refused"),  # #2 is only OP-KESTREL's
    ("task done twelve", "number: must be a task's number, as in 12 or #12", "parse_error"),
    ("task note 1", "text: Field required", "parse_error"),
    ("task note 1 " + "y" * 2001, "notes are at most 2,000 characters (this one is 2,001)", "parse_error"),
    ("task assign 1 nobody@nowhere.example", "I can't find nobody@nowhere.example here", "refused"),
    ("task list --late", "unknown option `--late`", "parse_error"),
]


@pytest.mark.parametrize(("command", "says", "outcome"), BAD_INPUT)
async def test_bad_input_is_answered_with_the_usage_and_changes_nothing(
    rooms: Harness, db: Database, command: str, says: str, outcome: str
) -> None:
    lantern = await a_room(rooms)
    kestrel = await a_room(rooms, "Operation Kestrel")
    agency(db, "health", now=NOW)
    add_task(db, "Visit 12 Acacia Ave", now=NOW)
    await say(rooms, kestrel, "task add First")
    await say(rooms, kestrel, "task add Second")
    before, events = counts(db), len(rooms.audit())

    answer = await say(rooms, lantern, command)

    [text] = answer.texts
    words = " ".join(command.split()[:2])
    assert says in text
    assert f"Usage: **/{words}" in text
    assert counts(db) == before
    audit = rooms.audit()
    assert len(audit) == events + 1
    assert (audit[-1]["action"], audit[-1]["outcome"]) == (f"task.{command.split()[1]}", outcome)
    if outcome == "parse_error":  # what did not parse is not kept, only which command and how long
        assert set(json.loads(audit[-1]["arguments"])) == {"command", "length"}
    else:
        assert audit[-1]["room_key"] == "OP-LANTERN"
