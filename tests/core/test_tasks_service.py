"""The task service: numbers per room under concurrency, history, and who a task is shared with."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session

from core.db import Database
from core.errors import Refused
from core.rooms.models import Room
from core.tasks import service
from core.tasks.models import SHARE_ALL, Task
from core.tasks.service import Actor, Assignee
from tests.core.support import add_room

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
ADA = Actor("aad-ada", "PC Ada Officer")
BEN = Actor("aad-ben", "PC Ben Officer")
EACH = 50


def _room(session: Session, key: str) -> int:
    return add_room(session, key, opened_at=NOW)


def test_two_processes_adding_to_one_room_get_distinct_numbers(db: Database, second: Database) -> None:
    room_id = db.transaction(lambda s: _room(s, "OP-LANTERN"))
    other_room = db.transaction(lambda s: _room(s, "OP-KESTREL"))
    start = threading.Barrier(4)
    errors: list[BaseException] = []

    def adder(store: Database, where: int, name: str) -> None:
        try:
            start.wait()
            for n in range(EACH):
                store.transaction(lambda s, n=n: service.add(s, where, title=f"{name} {n}", by=ADA, now=NOW))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=adder, args=args) for args in
               ((db, room_id, "one"), (second, room_id, "two"), (second, other_room, "three"), (db, other_room, "four"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors

    def numbers(session: Session, where: int) -> tuple[list[int], int]:
        tasks = service.in_room(session, where, now=NOW, include_done=True)
        room = session.get(Room, where)
        assert room is not None
        return sorted(t.number for t in tasks), room.task_seq

    assert db.transaction(lambda s: numbers(s, room_id), readonly=True) == (list(range(1, 2 * EACH + 1)), 2 * EACH)
    assert db.transaction(lambda s: numbers(s, other_room), readonly=True) == (list(range(1, 2 * EACH + 1)), 2 * EACH)


def test_every_change_is_in_the_history(db: Database) -> None:
    def work(session: Session) -> list[tuple[str, str | None, str | None]]:
        room_id = _room(session, "OP-LANTERN")
        task = service.add(session, room_id, title="Visit", by=ADA, now=NOW, share=["Health", "all", " "],
                           assignee=Assignee(agency="social-care"))  # fmt: skip
        service.add_note(session, task, "spoke to the neighbour", by=BEN, now=NOW + timedelta(minutes=1))
        service.assign(session, task, Assignee(aad_id="aad-ben", name="PC Ben Officer"), by=ADA, now=NOW)
        service.done(session, task, by=BEN, now=NOW, note="all safe")
        with pytest.raises(Refused, match="already done"):
            service.done(session, task, by=BEN, now=NOW)
        service.reopen(session, task, by=ADA, now=NOW)
        with pytest.raises(Refused, match="still open"):
            service.reopen(session, task, by=ADA, now=NOW)
        service.assign(session, task, None, by=ADA, now=NOW)
        assert task.id is not None
        assert service.shares(session, [task.id]) == {task.id: frozenset({"health", SHARE_ALL})}
        return [(e.change, e.actor_aad_id, e.detail) for e in service.history(session, task.id)]

    assert db.transaction(work) == [
        ("created", "aad-ada", None), ("assigned", "aad-ada", "agency social-care"),
        ("note", "aad-ben", "spoke to the neighbour"), ("assigned", "aad-ada", "PC Ben Officer"),
        ("done", "aad-ben", "all safe"), ("reopened", "aad-ada", None), ("assigned", "aad-ada", "nobody"),
    ]  # fmt: skip


def _task(*, aad_id: str | None = None, agency: str | None = None) -> Task:
    return Task(room_id=1, number=1, title="t", created_by="x", created_at=NOW, assignee_aad_id=aad_id,
                assignee_agency=agency)  # fmt: skip


@pytest.mark.parametrize(
    ("task", "shares", "caller", "agency", "expected"),
    [
        (_task(aad_id="sam"), frozenset(), "sam", None, True),  # assigned to them
        (_task(aad_id="sam"), frozenset(), "kim", "social-care", False),  # to someone else
        (_task(agency="social-care"), frozenset(), "sam", "social-care", True),  # to their agency
        (_task(agency="health"), frozenset(), "sam", "social-care", False),
        (_task(), frozenset({"social-care"}), "sam", "social-care", True),  # shared with their agency
        (_task(), frozenset({"health"}), "sam", "social-care", False),
        (_task(), frozenset({SHARE_ALL}), "sam", "social-care", True),  # shared with every agency
        (_task(), frozenset({SHARE_ALL}), "sam", None, False),  # ...but they belong to none
        (_task(agency="social-care"), frozenset({"social-care"}), "sam", None, False),
        (_task(), frozenset(), None, None, False),
    ],
)
def test_shared_with(task: Task, shares: frozenset[str], caller: str | None, agency: str | None,
                     expected: bool) -> None:  # fmt: skip
    assert service.shared_with(task, shares, aad_id=caller, agency=agency) is expected


def test_lists_put_overdue_first_then_due_time_then_the_undated_then_done(db: Database) -> None:
    def work(session: Session) -> list[str]:
        room_id = _room(session, "OP-LANTERN")
        for title, due in (("undated", None), ("later", NOW + timedelta(days=2)), ("late", NOW - timedelta(hours=1)),
                           ("soon", NOW + timedelta(hours=1)), ("very late", NOW - timedelta(days=3))):  # fmt: skip
            service.add(session, room_id, title=title, by=ADA, now=NOW, due_at=due)
        finished = service.add(session, room_id, title="finished", by=ADA, now=NOW, due_at=NOW - timedelta(days=9))
        service.done(session, finished, by=ADA, now=NOW)
        assert [t.title for t in service.in_room(session, room_id, now=NOW, overdue_only=True)] == ["very late", "late"]
        return [t.title for t in service.in_room(session, room_id, now=NOW, include_done=True)]

    assert db.transaction(work) == ["very late", "late", "soon", "later", "undated", "finished"]

