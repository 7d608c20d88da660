"""Room states kept per revision (core/rooms/states.py), over HTTP: what another replica changes in the
store, the next /task list and /room status show, and a guest who joins there is a reader at once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import text
from sqlmodel import Session, col, select

from core.db import Database
from core.rooms.models import RoomMember
from core.tasks import service
from core.tasks.models import Task
from tests import fixtures
from tests.scenarios.conftest import Clock, Exchange, Harness
from tests.scenarios.digest_support import add_member, room_id
from tests.scenarios.rooms_support import in_thread
from tests.scenarios.scope_support import (
    HANA_AAD,
    HANA_NAME,
    card_texts,
    reply_json,
    room_with_sam,
    sam_in_thread,
)
from tests.scenarios.tasks_support import ADA, a_room, add_task, card_of, headings, say, texts

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def listed(exchange: Exchange) -> list[str]:
    return headings(card_of(exchange))


def _done(db: Database, number: int) -> None:
    def work(session: Session) -> None:
        task = session.exec(select(Task).where(col(Task.number) == number)).one()
        service.done(session, task, by=ADA, now=NOW)

    db.transaction(work)


async def test_a_guest_who_joins_through_another_replica_is_a_reader_of_the_next_reply(
    rooms: Harness, db: Database, db_url: str
) -> None:
    thread = await room_with_sam(rooms, db)
    add_task(db, "Safeguarding visit", now=NOW, share=["socialcare"])
    add_task(db, "Multi-agency meeting", now=NOW, share=["all"], due_at=NOW + timedelta(days=1))
    add_task(db, "Call the school", now=NOW, share=["socialcare"], due_at=NOW - timedelta(hours=1))
    first = await sam_in_thread(rooms, thread, "task list")
    again = await sam_in_thread(rooms, thread, "task list")
    assert listed(first) == listed(again) == ["**#3** Call the school", "**#2** Multi-agency meeting",
                                              "**#1** Safeguarding visit"]  # fmt: skip
    assert "Tasks: 3 open, 1 overdue" in card_texts(await rooms.send(in_thread(rooms, thread, "room status")))

    other = Database(db_url)  # another replica, on the same store
    try:
        add_member(other, room_id(other), HANA_AAD, role="guest_viewer", agency="health", name=HANA_NAME)
        _done(other, 3)
    finally:
        other.close()

    after = await sam_in_thread(rooms, thread, "task list")
    assert listed(after) == ["**#2** Multi-agency meeting"]  # Hana (health) reads the thread now
    assert "1 more task only some members may see" in card_texts(after)
    assert "Safeguarding" not in reply_json(after) and "Call the school" not in reply_json(after)
    status = card_texts(await rooms.send(in_thread(rooms, thread, "room status")))
    assert "Tasks: 2 open, 0 overdue" in status and "**health**: 1 person" in status


async def test_a_reader_whose_access_ends_stops_holding_back_the_next_reply(
    rooms: Harness, db: Database, clock: Clock
) -> None:
    """No row changes when a guest's access runs out, so the room's revision stays: what the readers
    may all see is worked out again because the readers are others."""
    thread = await room_with_sam(rooms, db)
    until = NOW + timedelta(hours=2)
    member = RoomMember(room_id=room_id(db), aad_id=HANA_AAD, name=HANA_NAME, role="guest_viewer",
                        agency="health", joined_at=NOW - timedelta(days=1), expires_at=until)  # fmt: skip
    db.transaction(lambda s: s.add(member))
    add_task(db, "Safeguarding visit", now=NOW, share=["socialcare"])
    add_task(db, "Multi-agency meeting", now=NOW, share=["all"])

    assert listed(await sam_in_thread(rooms, thread, "task list")) == ["**#2** Multi-agency meeting"]
    assert listed(await sam_in_thread(rooms, thread, "task list")) == ["**#2** Multi-agency meeting"]
    clock.now = until + timedelta(minutes=1)
    assert listed(await sam_in_thread(rooms, thread, "task list")) == ["**#1** Safeguarding visit",
                                                                       "**#2** Multi-agency meeting"]  # fmt: skip


async def test_a_kept_list_card_follows_the_clock_into_the_next_day_and_past_a_due_time(
    rooms: Harness, db: Database, clock: Clock
) -> None:
    """Nothing is written, so the room state stays; the card is made again when its due labels or
    which tasks are overdue change (London is on UTC in November)."""
    thread = await a_room(rooms)
    add_task(db, "Search warrant", now=NOW, due_at=NOW + timedelta(hours=1))
    add_task(db, "Debrief", now=NOW, due_at=datetime(2026, 12, 1, 17, 0, tzinfo=UTC))

    def rows_of(exchange: Exchange) -> list[str]:
        return [t for t in texts(card_of(exchange)) if t.startswith("due ")]

    first = await say(rooms, thread, "task list")
    assert rows_of(first) == ["due today 10:00, for nobody", "due tomorrow 17:00, for nobody"]
    assert rows_of(await say(rooms, thread, "task list")) == rows_of(first)
    clock.now = NOW + timedelta(hours=2)
    late = await say(rooms, thread, "task list")
    assert rows_of(late) == ["due today 10:00 (overdue), for nobody", "due tomorrow 17:00, for nobody"]
    assert [b.get("style") for b in card_of(late)["body"] if b.get("separator")][:1] == ["attention"]
    clock.now = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    next_day = await say(rooms, thread, "task list")
    assert rows_of(next_day) == ["due Mon 30 Nov 10:00 (overdue), for nobody", "due today 17:00, for nobody"]


async def test_a_guest_revoked_or_a_room_closed_through_another_replica_counts_at_the_next_request(
    rooms: Harness, db: Database, db_url: str
) -> None:
    """The room and the caller's membership each request looks up are kept per revision too
    (core/rooms/located.py): a change made elsewhere is seen by the next request."""
    thread = await room_with_sam(rooms, db)
    add_task(db, "Multi-agency meeting", now=NOW, share=["all"])
    for _ in range(2):
        assert listed(await sam_in_thread(rooms, thread, "task list")) == ["**#1** Multi-agency meeting"]

    other = Database(db_url)
    try:
        other.transaction(lambda s: s.execute(text(f"UPDATE room_member SET revoked_at = joined_at "
                                                   f"WHERE aad_id = '{fixtures.GUEST_AAD}'")))  # fmt: skip
        after = await sam_in_thread(rooms, thread, "task list")
        assert not after.replies[0].get("attachments") and rooms.audit()[-1]["outcome"] == "needs_room"
        other.transaction(lambda s: s.execute(text("UPDATE room SET status = 'closed'")))
    finally:
        other.close()
    closed = await say(rooms, thread, "task add Search the flat")
    assert "closed" in closed.texts[0] and rooms.audit()[-1]["outcome"] != "ok"
