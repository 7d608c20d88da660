"""Tasks: add, change and read them; every change writes the task's history in the same transaction.

Numbers are per room: `add` bumps the room's `task_seq` with one UPDATE .. RETURNING, which holds
the room row until commit (PostgreSQL) or runs under the single writer (SQLite), so two processes
adding to one room at once get different numbers.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, text
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from core.errors import Refused
from core.tasks.models import SHARE_ALL, Task, TaskChange, TaskEvent, TaskShare, TaskStatus

TITLE_MAX = 200
NOTE_MAX = 2000


@dataclass(frozen=True)
class Assignee:
    """Who a task is for: a person (Entra object id) or a partner agency (its key)."""

    aad_id: str | None = None
    tenant_id: str | None = None
    name: str | None = None
    agency: str | None = None

    def label(self) -> str:
        return self.name or self.aad_id or (f"agency {self.agency}" if self.agency else "nobody")


@dataclass(frozen=True)
class Actor:
    """Who made a change."""

    aad_id: str | None
    name: str | None


_BUMP = text("UPDATE room SET task_seq = task_seq + 1 WHERE id = :room RETURNING task_seq")


def _history(session: Session, task: Task, change: TaskChange, by: Actor, now: datetime,
             detail: str | None = None) -> None:  # fmt: skip
    assert task.id is not None
    session.add(TaskEvent(task_id=task.id, at=now, actor_aad_id=by.aad_id, actor_name=by.name,
                          change=change, detail=detail))  # fmt: skip


def _assign_fields(task: Task, assignee: Assignee | None) -> None:
    task.assignee_aad_id = assignee.aad_id if assignee else None
    task.assignee_tenant_id = assignee.tenant_id if assignee else None
    task.assignee_name = assignee.name if assignee else None
    task.assignee_agency = assignee.agency if assignee else None


def created(session: Session, task: Task, *, shared: Iterable[str], by: str, name: str | None,
            now: datetime) -> None:  # fmt: skip
    """A task just inserted (flushed): its sharing rows and the first line of its history."""
    assert task.id is not None
    for agency in sorted({a.strip().lower() for a in shared if a.strip()}):
        session.add(TaskShare(task_id=task.id, agency=SHARE_ALL if agency == "all" else agency))
    _history(session, task, TaskChange.CREATED, Actor(by, name), now)


def add(
    session: Session, room_id: int, *, title: str, by: Actor, now: datetime, due_at: datetime | None = None,
    priority: str = "normal", assignee: Assignee | None = None, share: Sequence[str] = (),
) -> Task:  # fmt: skip
    """A new task with the room's next number."""
    number = session.execute(_BUMP, {"room": room_id}).scalar_one()
    task = Task(room_id=room_id, number=int(number), title=title, priority=priority, due_at=due_at,
                created_by=by.aad_id or "", created_at=now, updated_at=now)  # fmt: skip
    _assign_fields(task, assignee)
    session.add(task)
    session.flush()
    created(session, task, shared=share, by=by.aad_id or "", name=by.name, now=now)
    if assignee is not None:
        _history(session, task, TaskChange.ASSIGNED, by, now, assignee.label())
    return task


def get(session: Session, room_id: int, number: int) -> Task | None:
    """The room's task with this number (None: there is none in this room)."""
    stmt = select(Task).where(col(Task.room_id) == room_id, col(Task.number) == number)
    return session.exec(stmt).first()


def _changed(session: Session, task: Task, now: datetime) -> None:
    task.updated_at = now
    session.add(task)


def assign(session: Session, task: Task, assignee: Assignee | None, *, by: Actor, now: datetime) -> Task:
    """Give the task to someone (or to an agency); None unassigns."""
    _assign_fields(task, assignee)
    _changed(session, task, now)
    _history(session, task, TaskChange.ASSIGNED, by, now, assignee.label() if assignee else "nobody")
    return task


def done(session: Session, task: Task, *, by: Actor, now: datetime, note: str | None = None) -> Task:
    """Mark the task done, with an optional note; a task already done is refused."""
    if not task.is_open:
        raise Refused(f"task #{task.number} is already done")
    task.status, task.done_at, task.done_by = TaskStatus.DONE, now, by.aad_id
    _changed(session, task, now)
    _history(session, task, TaskChange.DONE, by, now, note)
    return task


def add_note(session: Session, task: Task, note: str, *, by: Actor, now: datetime) -> Task:
    """A note on the task's history."""
    _changed(session, task, now)
    _history(session, task, TaskChange.NOTE, by, now, note)
    return task


def reopen(session: Session, task: Task, *, by: Actor, now: datetime) -> Task:
    """Open a done task again; an open task is refused."""
    if task.is_open:
        raise Refused(f"task #{task.number} is still open")
    task.status, task.done_at, task.done_by = TaskStatus.OPEN, None, None
    _changed(session, task, now)
    _history(session, task, TaskChange.REOPENED, by, now)
    return task


def history(session: Session, task_id: int) -> list[TaskEvent]:
    """The task's changes, oldest first."""
    stmt = select(TaskEvent).where(col(TaskEvent.task_id) == task_id).order_by(col(TaskEvent.id))
    return list(session.exec(stmt))


def shares(session: Session, task_ids: Sequence[int]) -> dict[int, frozenset[str]]:
    """The agencies each task is shared with (`*`: all)."""
    found: dict[int, set[str]] = {task_id: set() for task_id in task_ids}
    if task_ids:
        stmt = sa_select(col(TaskShare.task_id), col(TaskShare.agency))
        stmt = stmt.where(col(TaskShare.task_id).in_(task_ids))
        for task_id, agency in session.execute(stmt):
            found[task_id].add(agency)
    return {task_id: frozenset(agencies) for task_id, agencies in found.items()}


def shared_with(task: Task, agencies: frozenset[str], *, aad_id: str | None, agency: str | None) -> bool:
    """The fact the policy reads as `shared_with_caller`: the task is assigned to this person or their
    agency, or shared with their agency (or with every agency, when they belong to one)."""
    if aad_id is not None and task.assignee_aad_id == aad_id:
        return True
    if agency is None:
        return False
    return task.assignee_agency == agency or agency in agencies or SHARE_ALL in agencies


def in_room(
    session: Session, room_id: int, *, now: datetime, include_done: bool = False, overdue_only: bool = False,
    assigned_to: str | None = None,
) -> list[Task]:  # fmt: skip
    """A room's tasks in the order lists show them: overdue first, then by due time (none last), then
    by number; done ones (when asked for) after every open one."""
    stmt = select(Task).where(col(Task.room_id) == room_id)
    if not include_done:
        stmt = stmt.where(col(Task.status) == TaskStatus.OPEN)
    if overdue_only:
        stmt = stmt.where(col(Task.status) == TaskStatus.OPEN, col(Task.due_at) < now)
    if assigned_to is not None:
        stmt = stmt.where(col(Task.assignee_aad_id) == assigned_to)
    is_done = case((col(Task.status) == TaskStatus.OPEN, 0), else_=1)
    no_due = case((col(Task.due_at).is_(None), 1), else_=0)
    stmt = stmt.order_by(is_done, no_due, col(Task.due_at), col(Task.number))
    return list(session.exec(stmt))


def is_overdue(task: Task, now: datetime) -> bool:
    return task.is_open and task.due_at is not None and task.due_at < now
