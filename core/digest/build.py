"""What a digest says to one reader: the room's tasks read once (a Snapshot), then cut to the task ids
that reader may see. Who may see what is the policy's answer, asked by the caller; nothing here decides.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import cache
from zoneinfo import ZoneInfo

from sqlalchemy import func, or_
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from core.audit.chain import Checkpoint
from core.digest.models import DigestOutcome, DigestRun
from core.rooms import service as rooms
from core.rooms.models import Room, RoomMember
from core.tasks import service as tasks
from core.tasks.models import Task, TaskStatus

FIRST_SINCE = timedelta(hours=24)
"""A room's first digest counts what was done or added in the day before it."""
UNNAMED = "assigned"
"""A task's assignee as a reader sees them who may not see their name."""


@cache
def zone(name: str) -> ZoneInfo:
    """A time zone by name (read once)."""
    return ZoneInfo(name)


@dataclass(frozen=True)
class Snapshot:
    """A room's tasks and members as its digest reads them, at one moment."""

    room: Room
    local_date: date
    now: datetime
    since: datetime
    """Done since and new since count from here: the room's previous digest (or a day before now)."""
    tasks: list[Task]
    """Open tasks and those done since `since`, in list order (due first, undated last, by number)."""
    shares: dict[int, frozenset[str]]
    members: list[RoomMember]
    """Current members (access neither expired nor revoked), in the order they joined."""
    head: Checkpoint
    """The audit chain's head when the digest was made: an outside witness of the audit store."""


def current(members: Sequence[RoomMember], *, now: datetime) -> list[RoomMember]:
    """The members whose access has not ended (neither revoked nor past its expiry): a digest's readers,
    and those of any reply in the room's own space."""
    return [m for m in members if m.revoked_at is None and (m.expires_at is None or m.expires_at > now)]


def previous_at(session: Session, room_id: int, *, before: date) -> datetime | None:
    """When the room's last digest before this local date was claimed (skipped days do not count)."""
    stmt = sa_select(func.max(col(DigestRun.at))).where(
        col(DigestRun.room_id) == room_id, col(DigestRun.audience) == "",
        col(DigestRun.outcome) == DigestOutcome.QUEUED, col(DigestRun.local_date) < before.isoformat(),
    )  # fmt: skip
    found: datetime | None = session.execute(stmt).scalar()  # max() keeps the column's type: aware UTC
    return found


def load(
    session: Session, room: Room, *, now: datetime, local_date: date, head: Checkpoint, preview: bool = False
) -> Snapshot:
    """Read what the room's digest for local_date needs (preview: as `/digest now` shows it, counting
    from the last digest posted, today's included)."""
    assert room.id is not None
    before = local_date + timedelta(days=1) if preview else local_date
    since = previous_at(session, room.id, before=before) or now - FIRST_SINCE
    relevant = or_(col(Task.status) == TaskStatus.OPEN, col(Task.done_at) >= since)
    stmt = select(Task).where(col(Task.room_id) == room.id, relevant)
    found = sorted(session.exec(stmt), key=lambda t: (t.due_at is None, t.due_at or now, t.number))
    shares = tasks.shares(session, [t.id for t in found if t.id is not None])
    members = current(rooms.members(session=session, room_id=room.id), now=now)
    return Snapshot(room, local_date, now, since, found, shares, members, head)


@dataclass(frozen=True)
class Tally:
    """How many tasks fall in each part of a digest."""

    overdue: int = 0
    due_today: int = 0
    done: int = 0
    new: int = 0
    unassigned: int = 0
    total: int = 0


@dataclass(frozen=True)
class Digest:
    """One reader's digest: the room post (reader None: tasks every member may see) or a person's own."""

    room: Room
    local_date: date
    now: datetime
    since: datetime
    head: Checkpoint
    reader: str | None = None
    """Who it is for, as the card says it ("you"); None for the room's post."""
    overdue: list[Task] = field(default_factory=list)
    due_today: list[Task] = field(default_factory=list)
    done: list[Task] = field(default_factory=list)
    new: list[Task] = field(default_factory=list)
    unassigned: list[Task] = field(default_factory=list)
    assignees: list[tuple[str, int]] = field(default_factory=list)
    """Open tasks per assignee, most first."""
    open_count: int = 0
    hidden: Tally = field(default_factory=Tally)
    """Room post only: the tasks shared with only some members, counted and never shown."""
    named: frozenset[str] | None = None
    """The people (Entra object ids) it may name; None: anyone (a caller who asked no one)."""

    @property
    def quiet(self) -> bool:
        """Nothing to act on: nothing overdue, due today, done, new or unassigned, and nothing held back."""
        return not (self.overdue or self.due_today or self.done or self.new or self.unassigned
                    or self.hidden.total)  # fmt: skip

    @property
    def zone(self) -> ZoneInfo:
        """The room's time zone."""
        return zone(self.room.timezone)


def _parts(task: Task, snapshot: Snapshot) -> tuple[bool, bool, bool, bool, bool]:
    """(overdue, due today, done since, new since, unassigned) for one task."""
    now, is_open = snapshot.now, task.is_open
    overdue = tasks.is_overdue(task, now)
    due = task.due_at
    today = is_open and not overdue and due is not None and _local_date(due, snapshot) == snapshot.local_date
    done = not is_open and task.done_at is not None and task.done_at >= snapshot.since
    new = task.created_at >= snapshot.since
    unassigned = is_open and task.assignee_aad_id is None and task.assignee_agency is None
    return overdue, today, done, new, unassigned


def _local_date(moment: datetime, snapshot: Snapshot) -> date:
    return moment.astimezone(zone(snapshot.room.timezone)).date()


def assignee_label(task: Task, named: Collection[str] | None = None) -> str | None:
    """Who a task is for, as people read it (None: nobody); a person not in `named` is UNNAMED."""
    if task.assignee_aad_id is None and task.assignee_agency is None:
        return None
    if task.assignee_aad_id is not None and named is not None and task.assignee_aad_id not in named:
        return UNNAMED
    return task.assignee_name or task.assignee_aad_id or f"agency {task.assignee_agency}"


def compose(
    snapshot: Snapshot, visible: Collection[int], *, reader: str | None = None, hidden: Collection[int] = (),
    named: frozenset[str] | None = None,
) -> Digest:  # fmt: skip
    """The digest of the tasks whose ids are in `visible`; those in `hidden` are only counted; people are
    named only if in `named` (the policy's answer, asked by the caller)."""
    parts: tuple[list[Task], ...] = ([], [], [], [], [])
    counted = [0, 0, 0, 0, 0]
    held, assignees, open_count = 0, Counter[str](), 0
    for task in snapshot.tasks:
        flags = _parts(task, snapshot)
        if task.id in visible:
            for part, flag in zip(parts, flags, strict=True):
                if flag:
                    part.append(task)
            if task.is_open:
                open_count += 1
                label = assignee_label(task, named)
                if label is not None:
                    assignees[label] += 1
        elif task.id in hidden and (task.is_open or flags[2]):
            held += 1
            counted = [n + int(flag) for n, flag in zip(counted, flags, strict=True)]
    overdue, today, done, new, unassigned = parts
    done.sort(key=lambda t: (t.done_at or snapshot.now, t.number))
    new.sort(key=lambda t: t.number)
    ranked = sorted(assignees.items(), key=lambda item: (-item[1], item[0].lower()))
    return Digest(snapshot.room, snapshot.local_date, snapshot.now, snapshot.since, snapshot.head, reader,
                  overdue, today, done, new, unassigned, ranked, open_count,
                  Tally(counted[0], counted[1], counted[2], counted[3], counted[4], held), named)  # fmt: skip
