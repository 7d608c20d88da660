"""Least privilege in the database: the rights the bot's runtime role is given, and the rights a role has.

Migrations run as the role that owns the schema; the bot runs as a runtime role that may read and write the
application's tables, only read and append to the audit trail (audit_event, audit_signature), only read
audit_meta and alembic_version, and run no DDL. The triggers refuse UPDATE and DELETE on the audit tables
as well, but the owner of a table may drop its triggers: without the rights, whoever holds the bot's
credentials cannot rewrite or empty the trail at all. SQLite has no roles; there the file's permissions and
the triggers are the protection.

The grants are worked out from the database (information_schema), not from a list here, so a table a later
migration adds gets its rights the next time they are applied (`python -m bot db upgrade --runtime-role`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import text
from sqlmodel import Session

from core.audit.protection import TABLES as AUDIT_TABLES

SQLITE = "SQLite: no database roles; the file's permissions and the triggers protect the audit tables"

TABLE_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")
APPLICATION = ("SELECT", "INSERT", "UPDATE", "DELETE")
APPEND_ONLY = ("SELECT", "INSERT")
READ_ONLY = ("SELECT",)
_READ_ONLY_TABLES = ("audit_meta", "alembic_version")  # written only by migrations
REPORTED = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE")
CHANGES = ("UPDATE", "DELETE", "TRUNCATE")

_ROLE = re.compile(r"[A-Za-z_][A-Za-z0-9_$-]*", re.ASCII)
_PSEUDO_ROLES = ("public", "none", "current_user", "current_role", "session_user")


def check_role(name: str) -> str:
    """The role name, or ValueError saying why it is not one we grant to."""
    if not _ROLE.fullmatch(name) or len(name) > 63:
        raise ValueError(f"{name!r} is not a role name: letters, digits, _, $ and -, starting with a letter "
                         "or _, at most 63 characters")  # fmt: skip
    if name.lower() in _PSEUDO_ROLES or name.lower().startswith("pg_"):
        raise ValueError(f"{name!r} is reserved by PostgreSQL: give the bot a role of its own")
    return name


def rights_of(table: str) -> tuple[str, ...]:
    """The table privileges the runtime role gets on a table."""
    if table in AUDIT_TABLES and table not in _READ_ONLY_TABLES:
        return APPEND_ONLY
    if table in _READ_ONLY_TABLES:
        return READ_ONLY
    return APPLICATION


def _postgres_only(session: Session) -> None:
    if session.get_bind().dialect.name != "postgresql":
        raise ValueError(f"{SQLITE}: there is no runtime role to grant to")


_WHERE = text(
    "SELECT current_database(), current_schema(), EXISTS (SELECT 1 FROM pg_namespace n,"
    " aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) a"
    " WHERE n.nspname = current_schema() AND a.grantee = 0 AND a.privilege_type = 'CREATE')"
)
_TABLES = text(
    "SELECT table_name FROM information_schema.tables"
    " WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY table_name"
)
_SEQUENCES = text(
    "SELECT sequence_name FROM information_schema.sequences"
    " WHERE sequence_schema = current_schema() ORDER BY sequence_name"
)


def grant_statements(session: Session, role: str) -> list[str]:
    """The SQL that gives `role` exactly the rights the bot needs in this database, as statements.

    Every statement is idempotent: each table gets its rights granted and the others revoked, so the
    same statements leave the same rights however often they run, and whatever was granted before.
    CREATE on the schema is revoked from PUBLIC only where the server grants it (PostgreSQL before 15).
    """
    _postgres_only(session)
    quote = session.get_bind().dialect.identifier_preparer.quote
    grantee = quote(check_role(role))
    database, schema_name, public_creates = session.execute(_WHERE).one()
    if schema_name is None:
        raise ValueError("no current schema (search_path names none that exists): nothing to grant on")
    where = quote(schema_name)
    statements = [
        f"GRANT CONNECT ON DATABASE {quote(database)} TO {grantee}",
        f"REVOKE CREATE ON DATABASE {quote(database)} FROM {grantee}",
        f"GRANT USAGE ON SCHEMA {where} TO {grantee}",
        f"REVOKE CREATE ON SCHEMA {where} FROM {grantee}",
    ]
    if public_creates:
        statements.append(f"REVOKE CREATE ON SCHEMA {where} FROM PUBLIC")
    for (table,) in session.execute(_TABLES).all():
        granted = rights_of(str(table))
        refused = [name for name in TABLE_PRIVILEGES if name not in granted]
        name = f"{where}.{quote(str(table))}"
        statements.append(f"GRANT {', '.join(granted)} ON TABLE {name} TO {grantee}")
        statements.append(f"REVOKE {', '.join(refused)} ON TABLE {name} FROM {grantee}")
    for (sequence,) in session.execute(_SEQUENCES).all():
        name = f"{where}.{quote(str(sequence))}"
        statements.append(f"GRANT USAGE, SELECT ON SEQUENCE {name} TO {grantee}")
        statements.append(f"REVOKE UPDATE ON SEQUENCE {name} FROM {grantee}")
    return statements


def script(statements: list[str]) -> str:
    """The statements as one SQL script for a DBA: one transaction, one statement a line."""
    head = ("-- Opsroom: the bot's runtime role gets what it needs and no more (python -m bot db grants).\n"
            "-- Run as the owner of the tables after every migration; running it again changes "
            "nothing.\n")  # fmt: skip
    return head + "BEGIN;\n" + "".join(f"{statement};\n" for statement in statements) + "COMMIT;\n"


def apply_grants(session: Session, role: str) -> list[str]:
    """Give `role` its runtime rights (grant_statements) in this transaction; the statements run.

    ValueError when the role does not exist or is the role connected (the owner must stay the owner).
    """
    _postgres_only(session)
    check_role(role)
    row = session.execute(text("SELECT rolname = current_user FROM pg_roles WHERE rolname = :r"),
                          {"r": role}).first()  # fmt: skip
    if row is None:
        raise ValueError(f"role {role} does not exist (names are case-sensitive): create it first, "
                         f"CREATE ROLE {role} LOGIN PASSWORD '...'")  # fmt: skip
    if row[0]:
        raise ValueError(f"role {role} is the role connected, which runs the migrations and owns the tables: "
                         "the runtime role must be another one")  # fmt: skip
    statements = grant_statements(session, role)
    connection = session.connection()
    for statement in statements:
        connection.exec_driver_sql(statement)
    return statements


@dataclass(frozen=True)
class TableRights:
    """What a role may do to one audit table."""

    table: str
    held: tuple[str, ...]
    """Of REPORTED, those the role has (directly, through PUBLIC or a role it inherits)."""
    owner: bool
    """The role owns the table or belongs to the role that does: it may ALTER or DROP it and its triggers."""
    found: bool = True

    @property
    def changes(self) -> tuple[str, ...]:
        """UPDATE, DELETE, TRUNCATE: those it has."""
        return tuple(name for name in CHANGES if name in self.held)

    def describe(self) -> str:
        """`audit_event SELECT, INSERT; no UPDATE, DELETE, TRUNCATE`, and `; owner` when it is."""
        if not self.found:
            return f"{self.table} not found"
        missing = [name for name in REPORTED if name not in self.held]
        parts = [", ".join(self.held)] if self.held else []
        if missing:
            parts.append("no " + ", ".join(missing))
        if self.owner:
            parts.append("owner")
        return f"{self.table} {'; '.join(parts)}"


@dataclass(frozen=True)
class Rights:
    """What a role may do to the audit tables, as found (role None: SQLite, which has no roles)."""

    role: str | None
    tables: tuple[TableRights, ...] = ()
    ddl: tuple[str, ...] = ()
    """The DDL it may run: `CREATE in schema public`, `CREATE on database opsroom`."""
    superuser: bool = False

    def problems(self) -> list[str]:
        """Each way the role could change or drop the audit tables, or run DDL, in plain words."""
        if self.superuser:
            return ["it is a superuser, which may do anything to any table"]
        found: list[str] = []
        owned = [t.table for t in self.tables if t.owner]
        if owned:
            found.append(f"it owns {', '.join(owned)} (or belongs to the role that does), so it may drop "
                         "their triggers, alter or drop them")  # fmt: skip
        changes: dict[tuple[str, ...], list[str]] = {}
        for table in self.tables:
            if table.changes:
                changes.setdefault(table.changes, []).append(table.table)
        found += [f"it may {', '.join(held)} {', '.join(names)}" for held, names in changes.items()]
        if self.ddl:
            found.append(f"it may run DDL ({', '.join(self.ddl)})")
        return found

    @property
    def warning(self) -> str | None:
        """Why the role could change or drop the audit tables or run DDL; None when it cannot."""
        found = self.problems()
        if self.role is None or not found:
            return None
        return f"role {self.role} can change or drop the audit tables or run DDL: {'; '.join(found)}"

    @property
    def summary(self) -> str:
        """What the role may do, in a sentence."""
        if self.role is None:
            return SQLITE
        return self.warning or (f"role {self.role} may not UPDATE, DELETE or TRUNCATE the audit tables, owns "
                                "none of them and may not run DDL")  # fmt: skip

    def lines(self) -> list[str]:
        """One line per audit table: `database rights of ROLE: audit_event SELECT, INSERT; no ...; no DDL`."""
        if self.role is None:
            return [f"database rights: {SQLITE}"]
        ddl = "superuser" if self.superuser else "DDL" if self.ddl else "no DDL"
        return [f"database rights of {self.role}: {t.describe()}; {ddl}" for t in self.tables]


_ROLE_FACTS = text(
    "SELECT rolname, rolsuper, current_schema(), current_database(),"
    " has_schema_privilege(rolname, current_schema(), 'CREATE'),"
    " has_database_privilege(rolname, current_database(), 'CREATE')"
    " FROM pg_roles WHERE rolname = coalesce(CAST(:r AS name), current_user)"
)
# has_any_column_privilege: a right granted on one column (GRANT UPDATE (action) ON audit_event) counts too.
_CHECKS = {"SELECT": "has_any_column_privilege", "INSERT": "has_any_column_privilege",
           "UPDATE": "has_any_column_privilege", "DELETE": "has_table_privilege",
           "TRUNCATE": "has_table_privilege"}  # fmt: skip
_TABLE_FACTS = text(
    "SELECT " + ", ".join(f"{_CHECKS[name]}(CAST(:r AS name), c.oid, '{name}')" for name in REPORTED)
    + ", pg_has_role(CAST(:r AS name), c.relowner, 'MEMBER') FROM pg_class c WHERE c.oid = to_regclass(:t)"
)  # fmt: skip


def rights(session: Session, role: str | None = None) -> Rights:
    """What `role` (default: the one connected) may do to the audit tables; ValueError for an unknown role."""
    if session.get_bind().dialect.name != "postgresql":
        return Rights(role=None)
    if role is not None:
        check_role(role)
    facts = session.execute(_ROLE_FACTS, {"r": role}).first()
    if facts is None:
        raise ValueError(f"role {role} does not exist (names are case-sensitive)")
    name, superuser, schema_name, database, schema_create, database_create = facts
    tables = []
    for table in AUDIT_TABLES:
        row = session.execute(_TABLE_FACTS, {"r": name, "t": table}).first()
        if row is None:
            tables.append(TableRights(table, (), owner=False, found=False))
            continue
        # NULL (the table vanished meanwhile) is never read as "no right".
        held = tuple(priv for priv, has in zip(REPORTED, row[:-1], strict=True) if has or has is None)
        tables.append(TableRights(table, held, owner=bool(row[-1])))
    ddl = []
    if schema_create or (schema_create is None and schema_name is not None):
        ddl.append(f"CREATE in schema {schema_name}")
    if database_create or database_create is None:
        ddl.append(f"CREATE on database {database}")
    return Rights(role=str(name), tables=tuple(tables), ddl=tuple(ddl), superuser=bool(superuser))
