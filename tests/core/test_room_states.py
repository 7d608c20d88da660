"""room.revision (migration 0011's triggers) and the room states a process keeps per revision."""

from __future__ import annotations

import asyncio
import itertools
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlmodel import Session

from core.db import Database
from core.rooms import flows
from core.rooms.located import Located
from core.rooms.models import Room, RoomMember
from core.rooms.states import DERIVED_MAX, RoomStates
from core.tasks import service
from core.tasks.models import Task
from core.tasks.service import Actor, Assignee
from tests.core.support import add_room

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
ADA = Actor("aad-ada", "PC Ada Officer")


def _room(session: Session, key: str = "OP-LANTERN") -> int:
    return add_room(session, key, opened_at=NOW)


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


def test_the_rooms_own_row_raises_it_once_per_update_and_so_does_a_members_last_seen(db: Database) -> None:
    room_id, other = db.transaction(lambda s: (_room(s), _room(s, "OP-KESTREL")))
    db.transaction(lambda s: s.add(_member(room_id, "aad-ben")))
    before = _revision(db, room_id)
    _sql(db, f"UPDATE room SET digest_time = '08:00', status = 'closed' WHERE id = {room_id}")
    assert _revision(db, room_id) == before + 1  # not again for the trigger's own update
    _sql(db, "UPDATE room_member SET last_seen_at = joined_at")
    assert _revision(db, room_id) == before + 2
    db.transaction(lambda s: service.add(s, room_id, title="Visit", by=ADA, now=NOW))
    assert _revision(db, room_id) > before + 2
    assert _revision(db, other) == 0


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


def test_rooms_and_memberships_are_looked_up_once_per_revision(db: Database, second: Database) -> None:
    room_id = db.transaction(lambda s: _room(s))
    db.transaction(lambda s: s.add(_member(room_id, "aad-ben")))
    located = Located()
    conversation = "19:OP-LANTERN@thread.tacv2;messageid=1"

    def find(store: Database = db, aad_id: str = "aad-ben", **where: str) -> flows.Found:
        options = {"conversation_id": conversation, "key": None} | where
        return store.transaction(lambda s: flows.find(s, aad_id=aad_id, located=located, **options),
                                 readonly=True)  # fmt: skip

    first, again = find(), find()
    assert located.loads == 2 and again.room is first.room and again.member is first.member
    assert first.member is not None and first.member.role == "officer" and first.inside
    assert find(key="op-lantern").room is first.room and located.loads == 2
    assert find(aad_id="aad-cy").member is None and located.loads == 3  # nobody: kept as nobody
    assert find(aad_id="aad-cy").member is None and located.loads == 3

    # Another replica revokes Ben and closes the room: the next look-up sees both.
    second.transaction(lambda s: s.execute(text("UPDATE room_member SET revoked_at = joined_at")))
    revoked = find(store=second)
    assert revoked.member is not None and revoked.member.revoked_at is not None
    second.transaction(lambda s: s.execute(text("UPDATE room SET status = 'closed'")))
    closed = find()
    assert closed.room is not None and closed.room.closed
    second.transaction(lambda s: s.add(_member(room_id, "aad-cy")))
    assert find(aad_id="aad-cy").member is not None
    second.transaction(lambda s: s.execute(text("UPDATE room SET status = 'cancelled'")))
    assert find().room is None  # not usable: no room
    assert find(conversation_id="19:nowhere@thread.tacv2").room is None


def test_look_ups_from_many_threads_agree(db: Database) -> None:
    room_id = db.transaction(lambda s: _room(s))
    for n in range(8):
        db.transaction(lambda s, n=n: s.add(_member(room_id, f"aad-{n}")))
    located = Located(capacity=4)
    errors: list[BaseException] = []

    def look(n: int) -> None:
        try:
            for i in range(50):
                aad_id = f"aad-{(n + i) % 8}"
                found = db.transaction(lambda s, a=aad_id: flows.find(
                    s, conversation_id="19:OP-LANTERN@thread.tacv2;messageid=1", key=None, aad_id=a,
                    located=located), readonly=True)  # fmt: skip
                assert found.member is not None and found.member.aad_id == aad_id
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=look, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors


def test_a_read_without_a_snapshot_sees_each_statements_newest_state(db: Database, second: Database) -> None:
    """Database.transaction(snapshot=False), as a request's look-ups run: on SQLite no BEGIN, so a
    commit between two statements is seen by the second (with a snapshot, SQLite would not see it)."""
    room_id = db.transaction(lambda s: _room(s))

    def read(session: Session, *, between: bool = True) -> tuple[int, int]:
        before = _revision_in(session, room_id)
        if between:
            second.transaction(lambda s: s.add(_member(room_id, f"aad-{before}")))
        return before, _revision_in(session, room_id)

    before, after = db.transaction(read, readonly=True, snapshot=False)
    assert after > before
    if db.dialect == "sqlite":
        held = db.transaction(read, readonly=True)
        assert held[0] == held[1]
    with pytest.raises(ValueError):
        db.transaction(lambda s: read(s, between=False), snapshot=False)


def _revision_in(session: Session, room_id: int) -> int:
    return int(session.execute(text(f"SELECT revision FROM room WHERE id = {room_id}")).scalar_one())
