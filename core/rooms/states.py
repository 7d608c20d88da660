"""What a process read of a room's open tasks, their shares and its members, kept per room revision.

`/task list` and `/room status` read the same rows for every request about a room until one of them
changes, and the database raises `room.revision` whenever one does (or the room's own row changes), in
the writing transaction (migration 0011's triggers, so no write path can forget). A process keeps its
newest such read per room and hands it out while the room a request read at its start carries that
revision or an older one: a request may see what changed since it began, never less. The read takes the
revision first, so what it keeps is at least as new as the number it is kept under (on PostgreSQL each
statement may see newer rows; on SQLite the read is one snapshot). Every replica checks against the
same database, so none can show another's stale state; a room's first request after a change reads it
again.

Why: on SQLite, pysqlite lets go of the GIL for every row it steps, and under load each of those is a
thread switch; a room of 50 tasks cost /task list about half its CPU in that read (docs/PERFORMANCE.md).

What is kept is shared by concurrent requests: detached ORM rows, to be read and never changed. Done
tasks are not kept (a room's history grows without bound): `/task list --all` reads the table.
"""

from __future__ import annotations

import asyncio
import bisect
import functools
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import bindparam
from sqlalchemy import select as sa_select
from sqlmodel import Session, col

from core.db import Database
from core.rooms import service as rooms
from core.rooms.flows import RoomError
from core.rooms.models import Room, RoomMember
from core.tasks import service as tasks
from core.tasks.models import Task

T = TypeVar("T")

CAPACITY = 64
"""Rooms kept per process (least recently used dropped first). A state holds about 3 KB per open task
(measured: 1.5 MB for 500 tasks and 20 members), plus what is derived from it."""
DERIVED_MAX = 16
"""Values kept with one state: the readers' common sight, and list cards with their JSON (about 120 KB
for 25 rows; each kind of list, audience and caller of `--mine` adds one). At most about 2 MB per room
beyond its tasks, so some 125 MB in all at the worst, a few MB in the usual case."""

_REVISION = sa_select(col(Room.revision)).where(col(Room.id) == bindparam("room_id"))


@dataclass(frozen=True)
class RoomState:
    """A room's open tasks (in list order: by due time, none last, then number), the agencies each is
    shared with, and everyone recorded as its member, as of `revision` or later."""

    room_id: int
    revision: int
    tasks: tuple[Task, ...]
    shares: Mapping[int, frozenset[str]]
    members: tuple[RoomMember, ...]
    derived: dict[Hashable, Any] = field(default_factory=dict, compare=False, repr=False)
    """What replies work out from this state alone and may reuse while it is kept (`derive`)."""

    def derive(self, key: Hashable, make: Callable[[], T]) -> T:
        """`make()`, remembered with this state under `key` (which must name everything else it reads)."""
        if key in self.derived:
            found: T = self.derived[key]
            return found
        if len(self.derived) >= DERIVED_MAX:
            self.derived.clear()
        made = self.derived[key] = make()
        return made

    def open_tasks(self, *, now: datetime, overdue_only: bool = False,
                   assigned_to: str | None = None) -> list[Task]:  # fmt: skip
        """The open tasks, in list order, as `core.tasks.service.in_room` would select them."""
        return [task for task in self.tasks
                if (assigned_to is None or task.assignee_aad_id == assigned_to)
                and (not overdue_only or tasks.is_overdue(task, now))]  # fmt: skip

    def overdue(self, now: datetime) -> int:
        """How many open tasks are past their due time."""
        return bisect.bisect_left(self._due_times, now)

    @functools.cached_property
    def _due_times(self) -> list[datetime]:
        return sorted(task.due_at for task in self.tasks if task.due_at is not None)


def read(session: Session, room_id: int) -> RoomState:
    """The room's state, its revision read first (raises RoomError when the room is gone)."""
    revision = session.execute(_REVISION, {"room_id": room_id}).scalar()
    if revision is None:
        raise RoomError("that room no longer exists")
    found = tasks.in_room(session, room_id, now=datetime.now(UTC))  # open ones: `now` filters nothing here
    shares = tasks.shares(session, [task.id for task in found if task.id is not None])
    members = rooms.members(session=session, room_id=room_id)
    return RoomState(room_id, revision, tuple(found), shares, tuple(members))


class RoomStates:
    """One process's kept room states (see the module's docstring); used from the event loop only."""

    def __init__(self, capacity: int = CAPACITY) -> None:
        self.capacity = capacity
        self._kept: OrderedDict[int, RoomState] = OrderedDict()
        self._reading: dict[int, asyncio.Future[RoomState]] = {}
        self.reads = 0
        """How many times a state was read from the database (the rest were kept ones)."""

    async def of(self, db: Database, room: Room) -> RoomState:
        """The state of this room at least as new as `room` (read at the start of the request)."""
        assert room.id is not None
        room_id = room.id
        while True:
            kept = self._kept.get(room_id)
            if kept is not None and kept.revision >= room.revision:
                self._kept.move_to_end(room_id)
                return kept
            reading = self._reading.get(room_id)
            if reading is None:
                break
            # Another request is reading this room: one read serves both. `wait` neither raises that
            # read's failure (its request reports it; this one then reads for itself) nor swallows a
            # cancellation of this request.
            await asyncio.wait({reading})
        return await self._read(db, room_id)

    async def _read(self, db: Database, room_id: int) -> RoomState:
        future: asyncio.Future[RoomState] = asyncio.get_running_loop().create_future()
        self._reading[room_id] = future
        try:
            state = await db.run(lambda session: read(session, room_id), readonly=True)
        except BaseException as exc:
            if isinstance(exc, asyncio.CancelledError):
                future.cancel()
            else:
                future.set_exception(exc)
                future.exception()  # marked retrieved: the waiters only wait for it
            raise
        finally:
            if self._reading.get(room_id) is future:
                del self._reading[room_id]
        self.reads += 1
        kept = self._kept.get(room_id)
        if kept is None or kept.revision <= state.revision:
            self._kept[room_id] = state
            self._kept.move_to_end(room_id)
            while len(self._kept) > self.capacity:
                self._kept.popitem(last=False)
        future.set_result(state)
        return state
