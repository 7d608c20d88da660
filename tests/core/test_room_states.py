"""room.revision (migration 0011's triggers) and the room states a process keeps per revision."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlmodel import Session

from core.db import Database
from core.rooms.models import Room, RoomMember
from core.rooms.states import DERIVED_MAX, RoomStates
from core.tasks import service
from core.tasks.models import Task
from core.tasks.service import Actor, Assignee

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
ADA = Actor("aad-ada", "PC Ada Officer")


def _room(session: Session, key: str = "OP-LANTERN") -> int:
    room = Room(key=key, name=key, classification="OFFICIAL", timezone="Europe/London", lead_aad_id="aad-ada",
                tenant_id="t", space_kind="thread", conversation_id=f"19:{key}@thread.tacv2;messageid=1",
                reference="{}", opened_at=NOW)  # fmt: skip
    session.add(room)
    session.flush()
    assert room.id is not None
    return room.id


def _member(room_id: int, aad_id: str, **extra: object) -> RoomMember:
    return RoomMember(room_id=room_id, aad_id=aad_id, tenant_id="t", name=aad_id, role="officer", joined_at=NOW,
                      **extra)  # fmt: skip


def _revision(db: Database, room_id: int) -> int:
    return int(db.transaction(lambda s: s.execute(text(f"SELECT revision FROM room WHERE id = {room_id}")).scalar_one()))


def _room_row(db: Database, room_id: int) -> Room:
    def get(session: Session) -> Room:
        room = session.get(Room, room_id)
        assert room is not None
        return room

    return db.transaction(get, readonly=True)


def _as_of(room: Room, revision: int) -> Room:
    """The room as a request that read it at another revision holds it."""
    copy = Room(**room.model_dump())
    copy.revision = revision
    return copy


def _sql(db: Database, statement: str) -> None:
    db.transaction(lambda s: s.execute(text(statement)))


def _task(session: Session, task_id: int) -> Task:
    task = session.get(Task, task_id)
    assert task is not None
    return task


@pytest.fixture
def second(db: Database, db_url: str) -> Iterator[Database]:
    """Another Database on the same store: another replica."""
    other = Database(db_url)
    try:
        yield other
    finally:
        other.close()


def test_every_change_to_a_rooms_tasks_shares_or_members_raises_its_revision(db: Database) -> None:
    room_id, other = db.transaction(lambda s: (_room(s), _room(s, "OP-KESTREL")))
    before = _revision(db, room_id)
    changes = [
        lambda s: service.add(s, room_id, title="Visit", by=ADA, now=NOW, share=["health"]).id,
        lambda s: service.done(s, _task(s, 1), by=ADA, now=NOW),
        lambda s: service.assign(s, _task(s, 1), Assignee(agency="health"), by=ADA, now=NOW),
        lambda s: s.execute(text("DELETE FROM task_share WHERE task_id = 1")),
        lambda s: s.execute(text("INSERT INTO task_share (task_id, agency) VALUES (1, 'police-led')")),
        lambda s: s.add(_member(room_id, "aad-ben")),
        lambda s: s.execute(text("UPDATE room_member SET role = 'supervisor' WHERE aad_id = 'aad-ben'")),
        lambda s: s.execute(text("UPDATE room_member SET revoked_at = expires_at WHERE aad_id = 'aad-ben'")),
        lambda s: s.execute(text("DELETE FROM room_member WHERE aad_id = 'aad-ben'")),
    ]
    seen = [before]
    for change in changes:
        db.transaction(change)
        seen.append(_revision(db, room_id))
    assert all(later > earlier for earlier, later in itertools.pairwise(seen)), seen
    assert _revision(db, other) == 0  # another room's changes leave it alone


def test_a_members_last_seen_and_the_room_row_itself_leave_the_revision_alone(db: Database) -> None:
    room_id = db.transaction(lambda s: _room(s))
    db.transaction(lambda s: s.add(_member(room_id, "aad-ben")))
    before = _revision(db, room_id)
    _sql(db, "UPDATE room_member SET last_seen_at = joined_at")
    _sql(db, "UPDATE room SET digest_time = '08:00', status = 'closed'")
    assert _revision(db, room_id) == before


def test_the_member_trigger_watches_every_column_but_last_seen(db: Database) -> None:
    """A column added to room_member later must be added to the trigger (migration 0011's docstring)."""
    if db.dialect == "postgresql":
        query = ("SELECT pg_get_triggerdef(oid) FROM pg_trigger WHERE NOT tgisinternal "
                 "AND tgrelid = to_regclass('room_member') AND tgname = 'room_revision'")  # fmt: skip
    else:
        query = "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = 'room_revision_room_member_update'"
    [definition] = db.transaction(lambda s: [row[0] for row in s.execute(text(query))], readonly=True)
    watched = definition.split("UPDATE OF", 1)[1].split(" ON ", 1)[0].replace(" OR DELETE", "")
    columns = {name.strip() for name in watched.split(",")}
    assert columns == {c.name for c in RoomMember.__table__.columns} - {"last_seen_at"}  # type: ignore[attr-defined]


async def test_a_state_is_read_once_per_revision_and_again_after_a_change(db: Database, second: Database) -> None:
    room_id = db.transaction(lambda s: _room(s))
    db.transaction(lambda s: [service.add(s, room_id, title=f"Task {n}", by=ADA, now=NOW,
                                          due_at=NOW + timedelta(hours=n)) for n in range(3)])  # fmt: skip
    states = RoomStates()
    first = await states.of(db, _room_row(db, room_id))
    again = await states.of(db, _room_row(db, room_id))
    assert again is first and states.reads == 1
    assert [t.title for t in first.tasks] == ["Task 0", "Task 1", "Task 2"]

    # Another replica marks a task done and adds a member: the next request's room carries a new revision.
    second.transaction(lambda s: service.done(s, _task(s, 2), by=ADA, now=NOW))
    second.transaction(lambda s: s.add(_member(room_id, "aad-ben")))
    fresh = await states.of(db, _room_row(db, room_id))
    assert states.reads == 2
    assert [t.title for t in fresh.tasks] == ["Task 0", "Task 2"]
    assert [m.aad_id for m in fresh.members] == ["aad-ben"]
    # A request that read the room before the change may be given the newer state, never an older one.
    assert await states.of(db, _as_of(_room_row(db, room_id), 0)) is fresh


async def test_the_open_tasks_are_filtered_as_the_table_would_be(db: Database) -> None:
    room_id = db.transaction(lambda s: _room(s))
    ben = Assignee(aad_id="aad-ben", name="PC Ben")
    for title, due, who in (("None", None, None), ("Late", NOW - timedelta(hours=1), ben),
                            ("Soon", NOW + timedelta(hours=1), ben), ("Later", NOW + timedelta(days=1), None)):
        db.transaction(lambda s, t=title, d=due, w=who: service.add(s, room_id, title=t, by=ADA, now=NOW,
                                                                     due_at=d, assignee=w))  # fmt: skip
    state = await RoomStates().of(db, _room_row(db, room_id))
    for options in ({}, {"overdue_only": True}, {"assigned_to": "aad-ben"},
                    {"overdue_only": True, "assigned_to": "aad-ben"}):  # fmt: skip
        from_table = db.transaction(lambda s, o=options: service.in_room(s, room_id, now=NOW, **o), readonly=True)
        assert [t.number for t in state.open_tasks(now=NOW, **options)] == [t.number for t in from_table]
    assert state.overdue(NOW) == 1


async def test_requests_at_once_share_one_read_and_a_failed_read_is_not_kept(db: Database) -> None:
    room_id = db.transaction(lambda s: _room(s))
    room = _room_row(db, room_id)
    states = RoomStates()
    results = await asyncio.gather(*(states.of(db, room) for _ in range(10)))
    assert states.reads == 1 and all(r is results[0] for r in results)

    class Broken(Database):
        async def run(self, fn, *, readonly=False):  # type: ignore[no-untyped-def]
            raise RuntimeError("the database went away")

    broken = Broken(db.url)
    try:
        newer = _as_of(room, room.revision + 1)
        outcomes = await asyncio.gather(*(states.of(broken, newer) for _ in range(3)), return_exceptions=True)
        assert all(isinstance(o, RuntimeError) for o in outcomes)
    finally:
        broken.close()
    assert (await states.of(db, room)) is results[0]  # the kept one still serves its revision


async def test_only_the_most_recently_used_rooms_are_kept(db: Database) -> None:
    ids = db.transaction(lambda s: [_room(s, f"OP-{n}") for n in range(3)])
    states = RoomStates(capacity=2)
    for room_id in ids:
        await states.of(db, _room_row(db, room_id))
    await states.of(db, _room_row(db, ids[2]))
    assert states.reads == 3
    await states.of(db, _room_row(db, ids[0]))  # dropped when the third came in
    assert states.reads == 4


async def test_what_is_derived_from_a_state_is_made_once_per_key_and_kept_within_bounds(db: Database) -> None:
    room_id = db.transaction(lambda s: _room(s))
    state = await RoomStates().of(db, _room_row(db, room_id))
    made: list[int] = []

    def make(n: int) -> int:
        made.append(n)
        return n * 2

    assert state.derive(("a", 1), lambda: make(1)) == state.derive(("a", 1), lambda: make(1)) == 2
    assert made == [1]
    for n in range(DERIVED_MAX + 1):
        state.derive(("b", n), lambda n=n: make(n))
    assert len(state.derived) <= DERIVED_MAX
