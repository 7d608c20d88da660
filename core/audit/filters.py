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

from sqlalchemy import Row, Table, and_, exists, select
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session

from core.audit.models import AuditEvent


def _table() -> Table:
    return AuditEvent.__table__  # type: ignore[attr-defined,no-any-return]


def stamp(moment: datetime) -> str:
    """A moment as stored in audit_event.at (fixed-width ISO-8601 UTC text)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


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
        out: list[ColumnElement[bool]] = []
        if self.user is not None:
            out.append(c.actor_aad_id == self.user.lower())
        if self.room_key is not None:
            out.append(c.room_key == self.room_key.upper())
        if self.denied:
            out.append(c.decision == "deny")
        if self.action is not None:
            if self.action.endswith(".*"):
                out.append(c.action.startswith(self.action[:-1], autoescape=True))
            else:
                out.append(c.action == self.action)
        if self.agency is not None:
            out.append(c.actor_agency == self.agency.lower())
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
        return Page(rows, newer, _any(session, where, seq < oldest, seq >= low), upto)
    top = high if before is None else min(high, before - 1)
    stmt = select(table).where(*where, seq <= top, seq >= low).order_by(seq.desc()).limit(limit + 1)
    rows = list(session.execute(stmt))
    older, rows = len(rows) > limit, rows[:limit]
    newer = before is not None and _any(session, where, seq >= before, seq <= high)
    return Page(rows, newer, older, upto)


def _any(session: Session, where: list[ColumnElement[bool]], *more: ColumnElement[bool]) -> bool:
    return bool(session.execute(select(exists().where(and_(*where, *more)))).scalar())


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
