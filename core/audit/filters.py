"""What `/audit` and audit exports select from the trail, and keyset pages over it.

Every filter is an equality on a column indexed with seq ((x, seq) indexes, migration 0009), and a
time range becomes a seq range (`at` grows with `seq`: both are assigned under the append lock), so a
page walks one index backwards from a seq and stops after `limit` rows, whatever the table's size.
Pages are anchored at a head (`upto`): events appended while someone pages do not shift the pages.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Row, Table, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement
from sqlmodel import Session

from core.audit.models import AuditEvent


def _table() -> Table:
    return AuditEvent.__table__  # type: ignore[attr-defined,no-any-return]


def stamp(moment: datetime) -> str:
    """A moment as stored in audit_event.at (fixed-width ISO-8601 UTC text)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# The index a search walks: that of the first filter given in this order, the most selective first.
# SQLite plans without statistics and may walk the index of a common value (every `task.list`) while
# testing a rare one (one person's events) on each row: a second instead of a millisecond. So on SQLite
# the other filters' columns are written `+column`, which SQLite never looks up in an index; PostgreSQL
# plans from its statistics and gets the plain columns.
_DRIVERS = ("user", "room_key", "agency", "denied", "action")


class _Unindexed(FunctionElement[Any]):
    """A column that SQLite must not use an index for (`+column`); the plain column elsewhere."""

    inherit_cache = True
    name = "unindexed"


@compiles(_Unindexed)
def _plain(element: _Unindexed, compiler: Any, **kw: Any) -> str:
    return str(compiler.process(element.clauses, **kw))


@compiles(_Unindexed, "sqlite")
def _plus(element: _Unindexed, compiler: Any, **kw: Any) -> str:
    return "+" + str(compiler.process(element.clauses, **kw))


@dataclass(frozen=True)
class AuditFilter:
    """Which events: every field optional, all given ones must hold."""

    user: str | None = None
    """The actor's Entra object id."""
    room_key: str | None = None
    since: datetime | None = None
    """Inclusive."""
    until: datetime | None = None
    """Exclusive."""
    denied: bool = False
    action: str | None = None
    """An action ("task.show"), or every action of a family: "task.*"."""
    agency: str | None = None
    """The actor's partner agency (its key)."""

    def __post_init__(self) -> None:
        """Keys as stored: a room key in upper case, object ids, agency keys and actions in lower case."""
        for name, fix in (("user", str.lower), ("room_key", str.upper), ("agency", str.lower),
                          ("action", str.lower)):  # fmt: skip
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, fix(value.strip()))

    def to_json(self) -> dict[str, Any]:
        """The filter as JSON-able values (times as ISO text), empty fields left out."""
        out: dict[str, Any] = {}
        for name, value in asdict(self).items():
            if value in (None, False):
                continue
            out[name] = value.astimezone(UTC).isoformat() if isinstance(value, datetime) else value
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AuditFilter:
        """The filter back from to_json()."""
        values = dict(data)
        for name in ("since", "until"):
            if isinstance(values.get(name), str):
                values[name] = datetime.fromisoformat(values[name])
        return cls(**values)

    def clauses(self, table: Table) -> list[ColumnElement[bool]]:
        """The WHERE clauses of every field but the time range (which is a seq range, see seq_range)."""
        c = table.c
        driver = next((name for name in _DRIVERS if getattr(self, name)), None)

        def col(name: str, column: Any) -> Any:
            return column if name == driver else _Unindexed(column)

        out: list[ColumnElement[bool]] = []
        if self.user is not None:
            out.append(col("user", c.actor_aad_id) == self.user)
        if self.room_key is not None:
            out.append(col("room_key", c.room_key) == self.room_key)
        if self.agency is not None:
            out.append(col("agency", c.actor_agency) == self.agency)
        if self.denied:
            out.append(col("denied", c.decision) == "deny")
        if self.action is not None:
            if self.action.endswith(".*"):
                out.append(c.action.startswith(self.action[:-1], autoescape=True))
            else:
                out.append(col("action", c.action) == self.action)
        return out


EMPTY = (1, 0)
"""A seq range nothing is in."""


def seq_range(session: Session, f: AuditFilter, upto: int) -> tuple[int, int]:
    """The (first, last) seq, inclusive, that the filter's time range and the head `upto` allow."""
    table = _table()
    low, high = 1, upto
    if f.since is not None:
        first = session.execute(
            select(table.c.seq).where(table.c.at >= stamp(f.since)).order_by(table.c.at).limit(1)
        ).scalar()
        if first is None:
            return EMPTY
        low = int(first)
    if f.until is not None:
        last = session.execute(
            select(table.c.seq).where(table.c.at < stamp(f.until)).order_by(table.c.at.desc()).limit(1)
        ).scalar()
        if last is None:
            return EMPTY
        high = min(high, int(last))
    return low, high


@dataclass(frozen=True)
class Page:
    """Events newest first; newer/older: whether there are more events on that side (within upto)."""

    events: Sequence[Row[Any]]
    newer: bool
    older: bool
    upto: int


def page(session: Session, f: AuditFilter, *, upto: int, before: int | None = None,
         after: int | None = None, limit: int = 10) -> Page:  # fmt: skip
    """One page of matching events up to seq `upto`: the newest ones, the ones just older than seq
    `before`, or the ones just newer than seq `after` (Previous)."""
    table = _table()
    low, high = seq_range(session, f, upto)
    where = f.clauses(table)
    seq = table.c.seq
    if after is not None:
        stmt = select(table).where(*where, seq > max(after, low - 1), seq <= high)
        stmt = stmt.order_by(seq).limit(limit + 1)
        rows = list(session.execute(stmt))
        newer, rows = len(rows) > limit, rows[:limit]
        rows.reverse()
        oldest = rows[-1].seq if rows else after + 1
        return Page(rows, newer, _any(session, table, f, seq < oldest, seq >= low), upto)
    top = high if before is None else min(high, before - 1)
    stmt = select(table).where(*where, seq <= top, seq >= low).order_by(seq.desc()).limit(limit + 1)
    rows = list(session.execute(stmt))
    older, rows = len(rows) > limit, rows[:limit]
    newer = before is not None and _any(session, table, f, seq >= before, seq <= high)
    return Page(rows, newer, older, upto)


def _any(session: Session, table: Table, f: AuditFilter, *more: ColumnElement[bool]) -> bool:
    """Whether any matching event is within the bounds `more`."""
    found = session.execute(select(table.c.seq).where(*f.clauses(table), *more).limit(1)).first()
    return found is not None


def rows(session: Session, f: AuditFilter, *, upto: int, batch: int = 2000) -> Iterator[Row[Any]]:
    """Every matching event up to seq `upto`, oldest first, read in keyset batches (exports)."""
    table = _table()
    low, high = seq_range(session, f, upto)
    where = f.clauses(table)
    seq = table.c.seq
    last = low - 1
    while last < high:
        stmt = select(table).where(*where, seq > last, seq <= high).order_by(seq).limit(batch)
        chunk = list(session.execute(stmt))
        if not chunk:
            return
        yield from chunk
        last = chunk[-1].seq
