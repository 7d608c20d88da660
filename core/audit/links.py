"""Reading the chain for verification: every event's link, streamed in seq order, whatever its cells hold."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

from sqlalchemy import select
from sqlmodel import Session

from core.audit.chain import Link, stored_hash, with_optional
from core.audit.models import HASHED_FIELDS, OPTIONAL_HASHED_FIELD, AuditEvent

# The request id (migration 0010) is hashed after the others only when it is not NULL.
_CHAIN_COLUMNS = ", ".join(f"e.{name}" for name in (*HASHED_FIELDS, OPTIONAL_HASHED_FIELD, "hash"))
_SIGNED_COLUMNS = ", s.hash, s.signature, s.key_id, s.from_seq"
_SIGNED_JOIN = " LEFT JOIN audit_signature s ON s.seq = e.seq"
_SEQ, _PREV = HASHED_FIELDS.index("seq"), HASHED_FIELDS.index("prev_hash")


def _cursor_rows(session: Session, sql: str, batch: int, params: dict[str, Any] | None = None
                 ) -> Iterator[tuple[Any, ...]]:  # fmt: skip
    """Stream a query with the driver's own cursor (server-side on PostgreSQL).

    Verification touches every row; the ORM's per-row work would cost more than hashing.
    """
    dbapi: Any = session.connection().connection.dbapi_connection
    postgres = session.get_bind().dialect.name == "postgresql"
    cursor = dbapi.cursor(name="opsroom_chain") if postgres else dbapi.cursor()
    try:
        cursor.arraysize = batch
        if params:
            cursor.execute(sql, params)
        else:
            cursor.execute(sql)
        while rows := cursor.fetchmany(batch):
            yield from rows
    finally:
        cursor.close()


def iter_links(
    session: Session, *, lo: int | None = None, hi: int | None = None, batch: int = 10_000,
    signed: bool = False,
) -> Iterator[Link]:  # fmt: skip
    """Every event's (seq, prev_hash, hash, recomputed hash, signature row), in seq order, optionally lo..hi.

    The signature row (hash, signature, key id, from_seq) comes only with signed, else None.
    On SQLite the canonical JSON array is built by SQLite's json_array(), which
    encodes stored values (control characters are escaped before storage) exactly
    as the Python encoder does, at a fraction of the cost; any event whose hash
    then differs is recomputed in Python before it is called bad, so an encoder
    difference can never raise a false alarm. json_array() refuses a BLOB, and
    SQLite cannot return text that is not UTF-8: from such a row on, every cell is
    read as stored and hashed in Python, so a cell of the wrong type is reported
    as a bad hash at its seq instead of stopping verify.
    """
    bounds = [f"e.seq >= {int(lo)}"] if lo is not None else []
    bounds += [f"e.seq <= {int(hi)}"] if hi is not None else []
    if session.get_bind().dialect.name != "sqlite":
        yield from _python_links(session, bounds, batch, signed)
        return
    errors: Any = session.get_bind().dialect.loaded_dbapi.Error
    last: Any = None
    try:
        for link in _sqlite_links(session, bounds, batch, signed):
            last = link[0]
            yield link
        return
    except errors:
        pass
    # Resume after the last event hashed by SQLite (bound as a parameter: a tampered seq may be text).
    dbapi: Any = session.connection().connection.dbapi_connection
    factory = dbapi.text_factory
    dbapi.text_factory = lambda raw: raw.decode("utf-8", "surrogateescape")
    try:
        after = bounds + (["e.seq > :after"] if last is not None else [])
        yield from _python_links(session, after, batch, signed, {"after": last})
    finally:
        dbapi.text_factory = factory


def _where(bounds: list[str]) -> str:
    return f" WHERE {' AND '.join(bounds)}" if bounds else ""


def _sqlite_links(session: Session, bounds: list[str], batch: int, signed: bool) -> Iterator[Link]:
    encoded_columns = ", ".join(f"e.{name}" for name in HASHED_FIELDS)
    optional = f"e.{OPTIONAL_HASHED_FIELD}"
    encoded = (f"CASE WHEN {optional} IS NULL THEN json_array({encoded_columns}) "
               f"ELSE json_array({encoded_columns}, {optional}) END")  # fmt: skip
    sql = (f"SELECT e.seq, e.prev_hash, e.hash, {encoded}"
           f"{_SIGNED_COLUMNS if signed else ''} FROM audit_event e{_SIGNED_JOIN if signed else ''}"
           f"{_where(bounds)} ORDER BY e.seq")  # fmt: skip
    for row in _cursor_rows(session, sql, batch):
        seq, prev_hash, stored, encoded = row[:4]
        computed: str | None = hashlib.sha256(encoded.encode("utf-8")).hexdigest()
        if computed != stored:
            computed = _recompute(session, seq)
        sig = (row[4], row[5], row[6], row[7]) if signed and row[4] is not None else None
        yield seq, prev_hash, stored, computed, sig


def _python_links(session: Session, bounds: list[str], batch: int, signed: bool,
                  params: dict[str, Any] | None = None) -> Iterator[Link]:  # fmt: skip
    sql = (f"SELECT {_CHAIN_COLUMNS}{_SIGNED_COLUMNS if signed else ''} FROM audit_event e"
           f"{_SIGNED_JOIN if signed else ''}{_where(bounds)} ORDER BY e.seq")  # fmt: skip
    width = len(HASHED_FIELDS)
    for row in _cursor_rows(session, sql, batch, params):
        values = with_optional(row[:width], row[width])
        stored, at = row[width + 1], width + 2
        has_sig = signed and row[at] is not None
        sig = (row[at], row[at + 1], row[at + 2], row[at + 3]) if has_sig else None
        yield values[_SEQ], values[_PREV], stored, stored_hash(values), sig


def _recompute(session: Session, seq: Any) -> str | None:
    table = AuditEvent.__table__  # type: ignore[attr-defined]
    cols = [table.c[name] for name in (*HASHED_FIELDS, OPTIONAL_HASHED_FIELD)]
    values = session.execute(select(*cols).where(table.c.seq == seq)).one()
    return stored_hash(with_optional(tuple(values)[:-1], values[-1]))
