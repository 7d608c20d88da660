"""The rooms and memberships a process looked up, reused while the room's revision holds.

Every request looks up the room of its conversation (or of `--room KEY`) and the caller's membership of
it. Both change rarely, and every change to either (to the room's row or to any of its members' rows,
`last_seen_at` included) raises `room.revision` in the writing transaction (migration 0011's triggers).
So a request reads only the room's id and revision (core.rooms.service.room_ref), and takes the room
and membership a request read before when the revision is the same; otherwise it loads them as before
and keeps them. The revision is read first, so what is loaded after it is at least that new.

Kept rows are detached ORM objects shared by every request that finds them: read them, never change
them (writes load their own rows in their own session). Lookups run on the event loop or in the
database's worker threads (core.db.Database.look_up): a lock guards the maps.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import TypeVar

from sqlmodel import Session

from core.rooms.models import Room, RoomMember

CAPACITY = 4096
"""Rooms, and separately memberships, kept per process (least recently used dropped first)."""

K = TypeVar("K")
V = TypeVar("V")


class Located:
    """One process's kept rooms and memberships (see the module's docstring)."""

    def __init__(self, capacity: int = CAPACITY) -> None:
        self.capacity = capacity
        self._lock = threading.Lock()
        self._rooms: OrderedDict[int, Room] = OrderedDict()
        self._members: OrderedDict[tuple[int, str], tuple[int, RoomMember | None]] = OrderedDict()
        self.loads = 0
        """How many rooms and memberships were loaded rather than reused."""

    def room(self, session: Session, room_id: int, revision: int) -> Room | None:
        """The room at this revision (or newer): kept, else loaded and kept."""
        with self._lock:
            kept = self._rooms.get(room_id)
            if kept is not None and kept.revision >= revision:
                self._rooms.move_to_end(room_id)
                return kept
        room = session.get(Room, room_id)
        if room is not None:
            self._keep(self._rooms, room_id, room, lambda old: old.revision <= room.revision)
        return room

    def member(self, room_id: int, aad_id: str, revision: int,
               load: Callable[[], RoomMember | None]) -> RoomMember | None:  # fmt: skip
        """Someone's membership of the room at this revision (or newer): kept, else `load()` and kept."""
        key = (room_id, aad_id)
        with self._lock:
            kept = self._members.get(key)
            if kept is not None and kept[0] >= revision:
                self._members.move_to_end(key)
                return kept[1]
        found = load()
        self._keep(self._members, key, (revision, found), lambda old: old[0] <= revision)
        return found

    def _keep(self, kept: OrderedDict[K, V], key: K, value: V, newer: Callable[[V], bool]) -> None:
        with self._lock:
            self.loads += 1
            old = kept.get(key)
            if old is None or newer(old):
                kept[key] = value
                kept.move_to_end(key)
                while len(kept) > self.capacity:
                    kept.popitem(last=False)
