"""A sliding window of one person's matching events for one rule: what the engine counts."""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable, Iterator
from datetime import datetime
from typing import NamedTuple

MAX_ENTRIES = 5_000
"""Most entries one window keeps: a flood past it drops its oldest (the count is then a floor)."""


class Entry(NamedTuple):
    """One matching event: when, its seq, what it counts as, and what the alert will name."""

    at: datetime
    seq: int
    item: Hashable
    action: str
    room: str | None


class Window:
    """Entries in seq order, with how many times each item occurs among them (for distinct counts)."""

    __slots__ = ("entries", "items")

    def __init__(self) -> None:
        self.entries: deque[Entry] = deque()
        self.items: dict[Hashable, int] = {}

    def add(self, entry: Entry) -> None:
        """Take a newer entry (dropping the oldest past MAX_ENTRIES)."""
        self.entries.append(entry)
        self.items[entry.item] = self.items.get(entry.item, 0) + 1
        if len(self.entries) > MAX_ENTRIES:
            self._drop()

    def evict(self, before: datetime) -> None:
        """Forget entries older than `before` (an entry at `before` stays: windows are inclusive)."""
        entries = self.entries
        while entries and entries[0].at < before:
            self._drop()

    def clear(self) -> None:
        self.entries.clear()
        self.items.clear()

    def count(self, *, distinct: bool) -> int:
        """Entries, or distinct items, in the window."""
        return len(self.items) if distinct else len(self.entries)

    def __iter__(self) -> Iterator[Entry]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def _drop(self) -> None:
        item = self.entries.popleft().item
        left = self.items[item] - 1
        if left:
            self.items[item] = left
        else:
            del self.items[item]
