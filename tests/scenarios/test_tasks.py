"""/task over HTTP: add, list, show, done, assign, note, reopen; card buttons; what guests may see."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from core.db import Database
from core.tasks.service import Assignee
from tests import fixtures
from tests.scenarios.conftest import Clock, Harness
from tests.scenarios.rooms_support import BEN, SUPERVISOR, rows
from tests.scenarios.tasks_support import (
    a_room,
    actions,
    add_task,
    add_tasks,
    agency,
    as_guest,
    card_of,
    counts,
    guest_member,
    headings,
    press,
    say,
    size,
    texts,
)

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)  # the rooms fixture's clock: a Monday, London on UTC


async def test_add_a_task_with_everything(rooms: Harness, db: Database) -> None:
    thread = await a_room(rooms)
    agency(db, "social-care", "health", now=NOW)
    added = await say(rooms, thread, "task add Visit 12 Acacia Ave --assign ben.officer@opsroom.example "
                                     "--due tomorrow 17:00 --priority HIGH --share social-care,health")  # fmt: skip
    assert added.texts == ["Added **#1** to OP-LANTERN: Visit 12 Acacia Ave. Due tomorrow 17:00; assigned to "
                           "PC Ben Officer; high priority; shared with health, social-care."]
    [task] = rows(db, "SELECT number, title, priority, status, due_at, assignee_aad_id, assignee_tenant_id, "
                      "assignee_name, assignee_agency, created_by FROM task")  # fmt: skip
    assert task[:4] == (1, "Visit 12 Acacia Ave", "high", "open")
    assert str(task[4]).startswith("2026-12-01 17:00")
    assert task[5:] == (fixtures.OFFICER2_AAD, fixtures.HOME_TENANT, fixtures.OFFICER2_NAME, None, fixtures.OFFICER_AAD)
    assert rows(db, "SELECT agency FROM task_share ORDER BY agency") == [("health",), ("social-care",)]
    assert rows(db, "SELECT change, actor_aad_id FROM task_event ORDER BY id") == [
        ("created", fixtures.OFFICER_AAD), ("assigned", fixtures.OFFICER_AAD)]
    event = rooms.audit()[-1]
    assert (event["action"], event["outcome"], event["rule"]) == ("task.add", "ok", "member-tasking")
    arguments = json.loads(event["arguments"])
    assert arguments["title"] == "Visit 12 Acacia Ave" and arguments["assign_aad_id"] == fixtures.OFFICER2_AAD
    assert event["detail"].startswith("task #1 (id ")


async def test_numbers_count_up_per_room(rooms: Harness, db: Database) -> None:
    lantern = await a_room(rooms)
    kestrel = await a_room(rooms, "Operation Kestrel")
    for thread, title in ((lantern, "One"), (lantern, "Two"), (kestrel, "Other room's first")):
        await say(rooms, thread, f"task add {title}")
    assert rows(db, "SELECT r.key, t.number, t.title FROM task t JOIN room r ON r.id = t.room_id "
                    "ORDER BY t.id") == [("OP-LANTERN", 1, "One"), ("OP-LANTERN", 2, "Two"),
                                         ("OP-KESTREL", 1, "Other room's first")]  # fmt: skip


async def test_assign_by_mention_and_to_an_agency(rooms: Harness, db: Database) -> None:
    thread = await a_room(rooms)
    agency(db, "social-care", now=NOW)
    activity = rooms.activity("channel_message_mention", "<at>Opsroom</at> task add Door knock --assign <at>PC Ben Officer</at>")
    activity["conversation"] = {**activity["conversation"], "id": thread}
    activity["entities"].append({"type": "mention", "text": "<at>PC Ben Officer</at>",
                                 "mentioned": {"id": fixtures.OFFICER2_ID, "name": fixtures.OFFICER2_NAME}})
    mentioned = await rooms.send(activity)
    assert mentioned.texts == ["Added **#1** to OP-LANTERN: Door knock. Assigned to PC Ben Officer."]
    moved = await say(rooms, thread, "task assign #1 Social-Care")
    assert moved.texts == ["**#1** Door knock is now assigned to agency social-care."]
    assert rows(db, "SELECT assignee_aad_id, assignee_name, assignee_agency FROM task") == [(None, None, "social-care")]
    assert json.loads(rooms.audit()[-1]["arguments"])["who_agency"] == "social-care"
    back = await say(rooms, thread, f"task assign 1 {fixtures.OFFICER2_AAD}")
    assert back.texts == ["**#1** Door knock is now assigned to PC Ben Officer."]
    assert json.loads(rooms.audit()[-1]["arguments"])["who_aad_id"] == fixtures.OFFICER2_AAD


async def test_done_note_reopen_and_the_history_show_tells(rooms: Harness, db: Database, clock: Clock) -> None:
    thread = await a_room(rooms)
    await say(rooms, thread, "task add Check CCTV --due 2026-12-02")
    clock.now = NOW + timedelta(hours=1)
    noted = await say(rooms, thread, "task note 1 spoke to the *manager*", from_=BEN)
    assert noted.texts == ["Note added to **#1** Check CCTV."]
    clock.now = NOW + timedelta(hours=2)
    done = await say(rooms, thread, "task done #1 footage saved")
    assert done.texts == ["Done: **#1** Check CCTV."]
    again = await say(rooms, thread, "task done 1")
    assert again.texts == ["#1 is already done."] and rooms.audit()[-1]["outcome"] == "refused"
    clock.now = NOW + timedelta(days=1)
    reopened = await say(rooms, thread, "task reopen 1", from_=BEN)
    assert reopened.texts == ["**#1** Check CCTV is open again."]
    still = await say(rooms, thread, "task reopen 1")
    assert still.texts == ["#1 is still open."]
    shown = await say(rooms, thread, "task show 1")
    card = card_of(shown)
    facts = {f["title"]: f["value"] for block in card["body"] if block["type"] == "FactSet" for f in block["facts"]}
    assert facts["Status"] == "open" and facts["Due"] == "tomorrow 23:59" and facts["Assigned to"] == "nobody"
    assert facts["Shared with"] == "nobody outside the police"
    lines = list(texts(card))
    history = lines[lines.index("History") + 1 :]
    assert history == [
        "Mon 30 Nov 2026 09:00 **PC Ada Officer** created it",
        "Mon 30 Nov 2026 10:00 **PC Ben Officer** added a note", "spoke to the \\*manager\\*",
        "Mon 30 Nov 2026 11:00 **PC Ada Officer** marked it done", "footage saved",
        "Tue 01 Dec 2026 09:00 **PC Ben Officer** reopened it",
    ]  # fmt: skip
    assert [a["title"] for a in card["actions"]] == ["Done", "Note"]
    # The notes live in the task's history; the append-only audit keeps only their length.
    events = rooms.audit()
    assert not [e for e in events if "manager" in json.dumps(e) or "footage" in json.dumps(e)]
    note_event = next(e for e in events if e["action"] == "task.note")
    assert json.loads(note_event["arguments"]) == {"number": 1, "task_id": 1, "text_length": 22}
    assert (events[-1]["action"], events[-1]["detail"].split(";")[0]) == ("task.show", "shown #1")


async def test_the_list_shows_overdue_first_then_by_due_time(rooms: Harness, db: Database) -> None:
    thread = await a_room(rooms)
    ben = Assignee(aad_id=fixtures.OFFICER2_AAD, name=fixtures.OFFICER2_NAME)
    ada = Assignee(aad_id=fixtures.OFFICER_AAD, name=fixtures.OFFICER_NAME)
    for title, due, who in (("No due time", None, ada), ("Later", NOW + timedelta(days=3), ben),
                            ("Soon", NOW + timedelta(hours=3), ada), ("Late", NOW - timedelta(hours=1), ben),
                            ("Very late", NOW - timedelta(days=9), ada), ("Finished", None, ada)):  # fmt: skip
        add_task(db, title, now=NOW - timedelta(days=10), due_at=due, assignee=who)
    await say(rooms, thread, "task done 6")
    listed = card_of(await say(rooms, thread, "task list"))
    assert headings(listed) == ["**#5** Very late", "**#4** Late", "**#3** Soon", "**#2** Later", "**#1** No due time"]
    assert "due Sat 21 Nov 09:00 (overdue), for PC Ada Officer" in list(texts(listed))
    late = [block for block in listed["body"] if block.get("style") == "attention"]
    assert len(late) == 2
    overdue = card_of(await say(rooms, thread, "task list --overdue"))
    assert headings(overdue) == ["**#5** Very late", "**#4** Late"]
    everything = card_of(await say(rooms, thread, "task list --all"))
    assert headings(everything)[-1] == "**#6** Finished (done)" and len(headings(everything)) == 6
    mine = card_of(await say(rooms, thread, "task list --mine"))
    assert headings(mine) == ["**#5** Very late", "**#3** Soon", "**#1** No due time"]
    nothing = await say(rooms, thread, "task list --overdue --mine", from_=SUPERVISOR)
    assert nothing.texts == ["No overdue tasks assigned to you in OP-LANTERN."]
    assert rooms.audit()[-4]["detail"].startswith("shown #5 #4 (2 of 2)")


async def test_a_long_list_fits_a_teams_message_and_says_how_many_more(rooms: Harness, db: Database) -> None:
    thread = await a_room(rooms)
    add_tasks(db, 60, now=NOW, due_at=NOW + timedelta(days=1))
    listed = await say(rooms, thread, "task list")
    card = card_of(listed)
    assert len(headings(card)) == 25 and headings(card)[0] == "**#1** Task 1"
    assert list(texts(card))[-1] == "35 more: /task list --overdue or /task show \\<number\\>."
    assert size(card) < 40_000
    # Titles and names as long and as full of Markdown as they may be: fewer fit, and it says so.
    long_name = Assignee(aad_id=fixtures.OFFICER2_AAD, name="*" * 256)
    for _ in range(60):
        add_task(db, ("*_[" * 70)[:200], now=NOW, assignee=long_name, due_at=NOW + timedelta(hours=1))
    crowded = card_of(await say(rooms, thread, "task list --all"))
    shown = len(headings(crowded))
    assert 5 < shown < 25 and size(crowded) < 40_000
    assert list(texts(crowded))[-1] == f"{120 - shown} more: /task list --overdue or /task show \\<number\\>."
    assert size(listed.replies[0].request.json) < 40_000  # the whole message as posted


async def test_card_buttons_submit_the_same_commands(rooms: Harness, db: Database) -> None:
    thread = await a_room(rooms)
    add_task(db, "Visit 12 Acacia Ave", now=NOW)
    add_task(db, "Door knock", now=NOW)
    card = card_of(await say(rooms, thread, "task list"))
    buttons = {(a["title"], a["data"]["command"]): a for a in actions(card) if "data" in a}
    assert set(buttons) == {("Done", "task done 1"), ("Add note", "task note 1"), ("Done", "task done 2"),
                            ("Add note", "task note 2")}  # fmt: skip
    done = await press(rooms, thread, buttons[("Done", "task done 2")]["data"])
    assert done.texts == ["Done: **#2** Door knock."]
    note = buttons[("Add note", "task note 1")]["data"]
    typed = 'he said "stop" -- then --left at 10:00'
    noted = await press(rooms, thread, note, **{note["inputs"]["text"]: typed})
    assert noted.texts == ["Note added to **#1** Visit 12 Acacia Ave."]
    assert rows(db, "SELECT change, detail FROM task_event WHERE change = 'note'") == [("note", typed)]
    assert typed not in json.dumps(rooms.audit())
    empty = await press(rooms, thread, note, **{note["inputs"]["text"]: "  "})
    assert "Usage: **/task note" in empty.texts[0] and rooms.audit()[-1]["outcome"] == "parse_error"
    shown = card_of(await say(rooms, thread, "task show 2"))
    assert [a["title"] for a in shown["actions"]] == ["Note", "Reopen"]


async def test_buttons_on_a_card_shown_outside_the_room_name_it(rooms: Harness, db: Database) -> None:
    await a_room(rooms)
    add_task(db, "Visit", now=NOW)
    listed = await rooms.say("personal_message", "/task list --room op-lantern")
    commands = [a["data"]["command"] for a in actions(card_of(listed)) if "data" in a]
    assert commands == ["task done 1 --room OP-LANTERN", "task note 1 --room OP-LANTERN"]
    activity = rooms.activity("card_submit_message", value={"command": commands[0]})
    activity["conversation"] = {"conversationType": "personal", "id": fixtures.PERSONAL_CONVERSATION_ID}
    del activity["channelData"]["channel"], activity["channelData"]["team"]
    done = await rooms.send(activity)
    assert done.texts == ["Done: **#1** Visit."]


async def test_the_room_cards_tasks_button_lists_the_tasks(rooms: Harness, db: Database) -> None:
    thread = await a_room(rooms)
    [created] = [r for r in rooms.connector.requests if r.kind == "create"]
    room_card = created.json["activity"]["attachments"][0]["content"]
    [tasks_button] = [a for a in room_card["actions"] if a["title"] == "Tasks"]
    empty = await press(rooms, thread, tasks_button["data"])
    assert empty.texts == ["No open tasks in OP-LANTERN."]
    add_task(db, "Visit", now=NOW)
    listed = await press(rooms, thread, tasks_button["data"])
    assert headings(card_of(listed)) == ["**#1** Visit"]
    assert rooms.audit()[-1]["action"] == "task.list"


async def test_a_closed_room_keeps_its_tasks_read_only(rooms: Harness, db: Database) -> None:
    thread = await a_room(rooms)
    add_task(db, "Visit", now=NOW)
    await say(rooms, thread, "room close")
    before = counts(db)
    for command in ("task add Another", "task done 1", "task note 1 hello", "task assign 1 social-care"):
        refused = await say(rooms, thread, command)
        assert refused.texts == ["You can't do that here: the room is closed: it is read-only."], command
        assert rooms.audit()[-1]["rule"] == "closed-room-read-only"
    assert counts(db) == before
    assert headings(card_of(await say(rooms, thread, "task list"))) == ["**#1** Visit"]


async def test_a_guest_sees_only_what_is_shared_with_their_agency(rooms: Harness, db: Database) -> None:
    thread = await a_room(rooms)
    agency(db, "social-care", "health", now=NOW)
    guest_member(db, role="guest_viewer", agency_key="social-care", now=NOW)
    add_task(db, "Shared with them", now=NOW, share=["social-care"])
    add_task(db, "Police only", now=NOW)
    add_task(db, "Their agency's job", now=NOW, assignee=Assignee(agency="social-care"))
    add_task(db, "Everyone's", now=NOW, share=["all"])
    add_task(db, "Health's", now=NOW, share=["health"])
    add_task(db, "For Sam", now=NOW, assignee=Assignee(aad_id=fixtures.GUEST_AAD, name=fixtures.GUEST_NAME))
    listed = card_of(await as_guest(rooms, thread, "/task list"))
    assert headings(listed) == ["**#1** Shared with them", "**#3** Their agency's job", "**#4** Everyone's",
                                "**#6** For Sam"]  # fmt: skip
    assert "(4)" in list(texts(listed))[1] and not list(actions(listed))  # a viewer gets no buttons
    event = rooms.audit()[-1]
    assert (event["actor_kind"], event["actor_agency"], event["rule"]) == ("guest", "social-care", "guest-reads-shared")
    assert event["detail"].startswith("shown #1 #3 #4 #6 (4 of 4)")
    hidden = await as_guest(rooms, thread, "/task show 2")
    missing = await as_guest(rooms, thread, "/task show 99")
    assert hidden.texts == ["There is no task #2 in OP-LANTERN.\n\nUsage: **/task show &lt;number&gt; \\[--room ROOM\\]**"]
    assert missing.texts == [hidden.texts[0].replace("#2", "#99")]  # the same answer: nothing told
    # The audit trail knows the difference the guest is not told.
    assert [(e["outcome"], e["decision"]) for e in rooms.audit()[-2:]] == [("denied", "deny"), ("refused", None)]
    shown = card_of(await as_guest(rooms, thread, "/task show 1"))
    assert "**#1** Shared with them" in texts(shown) and "actions" not in shown
    before = counts(db)
    viewer_done = await as_guest(rooms, thread, "/task done 1")
    assert viewer_done.texts == ["You can't do that here: no rule allows this."]
    hidden_done = await as_guest(rooms, thread, "/task done 2")
    assert hidden_done.texts[0].startswith("There is no task #2 in OP-LANTERN.")
    assert counts(db) == before


async def test_a_guest_contributor_updates_what_is_shared_with_them(rooms: Harness, db: Database) -> None:
    thread = await a_room(rooms)
    agency(db, "social-care", now=NOW)
    guest_member(db, role="guest_contributor", agency_key="social-care", now=NOW)
    add_task(db, "Shared with them", now=NOW, share=["social-care"])
    add_task(db, "Police only", now=NOW)
    listed = card_of(await as_guest(rooms, thread, "/task list"))
    assert [a["title"] for a in actions(listed)] == ["Done", "Note", "Add note"]
    done = await as_guest(rooms, thread, "/task done 1 visited, all safe")
    assert done.texts == ["Done: **#1** Shared with them."]
    assert rows(db, "SELECT done_by FROM task WHERE number = 1") == [(fixtures.GUEST_AAD,)]
    hidden = await as_guest(rooms, thread, "/task note 2 hello")
    assert hidden.texts[0].startswith("There is no task #2 in OP-LANTERN.")
    adding = await as_guest(rooms, thread, "/task add Something")
    assert adding.texts == ["You can't do that here: no rule allows this."]
    assert rows(db, "SELECT count(*) FROM task") == [(2,)]


async def test_help_lists_the_task_commands_in_a_room(rooms: Harness, db: Database) -> None:
    thread = await a_room(rooms)
    officer = await say(rooms, thread, "help task")
    for words in ("add", "list", "show", "done", "assign", "note", "reopen"):
        assert f"`/task {words}`" in officer.texts[0]
    guest_member(db, role="guest_viewer", agency_key="social-care", now=NOW)
    guest = await as_guest(rooms, thread, "/help task")
    assert "`/task list`" in guest.texts[0] and "`/task show`" in guest.texts[0]
    assert "`/task add`" not in guest.texts[0] and "`/task done`" not in guest.texts[0]
