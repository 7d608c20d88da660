"""Whether the audit tables are still append-only: their triggers in place, or no right to change them.

A trigger is in place only if it is the one the migrations created: same name,
same events, no WHEN clause, enabled, and (PostgreSQL) calling the refusing
function with its original body. A trigger recreated with a harmless body, or
disabled, protects nothing. On PostgreSQL a table is also protected when the
role verify runs as (the bot's own) may not UPDATE, DELETE or TRUNCATE it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlmodel import Session

TABLES = ("audit_event", "audit_signature", "audit_meta")


@dataclass(frozen=True)
class Guard:
    """What protects one table, as found."""

    table: str
    ok: bool
    finding: str


def check(session: Session) -> list[Guard]:
    """Each audit table's protection."""
    if session.get_bind().dialect.name == "postgresql":
        return [_postgres(session, table) for table in TABLES]
    return [_sqlite(session, table) for table in TABLES]


def _normal(sql: str) -> str:
    return " ".join(sql.split())


def _sqlite_expected(table: str, operation: str) -> str:
    """The trigger as migrations 0001 and 0005 create it."""
    name, refused = f"{table}_no_{operation.lower()}", f"{table} is append-only: {operation} refused"
    return f"CREATE TRIGGER {name} BEFORE {operation} ON {table} BEGIN SELECT RAISE(ABORT, '{refused}'); END"


def _sqlite(session: Session, table: str) -> Guard:
    rows = session.execute(
        text("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = :t"), {"t": table}
    ).all()
    found = {str(name): str(sql or "") for name, sql in rows}
    problems = []
    names = []
    for operation in ("UPDATE", "DELETE"):
        name = f"{table}_no_{operation.lower()}"
        names.append(name)
        if name not in found:
            problems.append(f"trigger {name} is MISSING")
        elif _normal(found[name]) != _sqlite_expected(table, operation):
            problems.append(f"trigger {name} is not the one the migrations create")
    if problems:
        return Guard(table, False, f"{table}: {'; '.join(problems)}")
    return Guard(table, True, f"{table}: triggers {' and '.join(names)} in place")


# PostgreSQL trigger types (pg_trigger.tgtype bits): ROW 1, BEFORE 2, DELETE 8, UPDATE 16, TRUNCATE 32.
_PG_TYPES = {"no_update": 1 | 2 | 8 | 16, "no_truncate": 2 | 32}
_PG_BODIES = {
    "audit_event_refuse": "BEGIN RAISE EXCEPTION 'audit_event is append-only: % refused', TG_OP "
                          "USING ERRCODE = 'insufficient_privilege'; END",
    "audit_append_only_refuse": "BEGIN RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP "
                                "USING ERRCODE = 'insufficient_privilege'; END",
}  # fmt: skip


_PG_TRIGGERS = text(
    "SELECT t.tgname, t.tgenabled, t.tgtype, t.tgqual IS NULL, p.proname, p.prosrc"
    " FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid"
    " WHERE t.tgrelid = to_regclass(:t) AND NOT t.tgisinternal"
)
_PG_RIGHTS = text(
    "SELECT current_user, has_table_privilege(to_regclass(:t), 'UPDATE'),"
    " has_table_privilege(to_regclass(:t), 'DELETE'), has_table_privilege(to_regclass(:t), 'TRUNCATE')"
)


def _postgres(session: Session, table: str) -> Guard:
    function = "audit_event_refuse" if table == "audit_event" else "audit_append_only_refuse"
    rows = session.execute(_PG_TRIGGERS, {"t": table}).all()
    found: dict[str, Any] = {str(row[0]): row for row in rows}
    problems, names = [], []
    for suffix, tgtype in _PG_TYPES.items():
        name = f"{table}_{suffix}"
        names.append(name)
        row = found.get(name)
        if row is None:
            problems.append(f"trigger {name} is MISSING")
        elif str(row[1]) not in ("O", "A"):  # D: disabled; R: fires only on replicas
            problems.append(f"trigger {name} is DISABLED")
        elif (int(row[2]) != tgtype or not row[3] or row[4] != function
              or _normal(str(row[5])) != _PG_BODIES[function]):  # fmt: skip
            problems.append(f"trigger {name} is not the one the migrations create")
    if not problems:
        return Guard(table, True, f"{table}: triggers {' and '.join(names)} in place and enabled")
    role, update, delete, truncate = session.execute(_PG_RIGHTS, {"t": table}).one()
    # NULL: the table cannot be looked up as this role; never read that as "no right to change it".
    rights = [name for name, held in (("UPDATE", update), ("DELETE", delete), ("TRUNCATE", truncate))
              if held or held is None]  # fmt: skip
    if not rights:
        return Guard(table, True, f"{table}: {'; '.join(problems)}, but role {role} may not UPDATE, "
                                  "DELETE or TRUNCATE it")  # fmt: skip
    return Guard(table, False, f"{table}: {'; '.join(problems)}, and role {role} may {', '.join(rights)} it")
