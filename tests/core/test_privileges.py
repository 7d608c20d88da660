"""core/privileges: the runtime role's grants (worked out from the database, idempotent) and the rights a
role has on the audit tables, on PostgreSQL with roles of the test's own; SQLite has no roles."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from core import privileges, schema
from core.db import Database
from tests.core.roles_support import Roles, connect, granted, owner_and_runtime


@pytest.fixture
def roles(pg_database_url: str) -> Iterator[Roles]:
    """An owner, a runtime role and a database the owner owns, migrated by the owner; dropped after."""
    with owner_and_runtime(pg_database_url) as made:
        _migrate(made)
        yield made


def _migrate(made: Roles) -> None:
    owner = Database(made.owner_url)
    try:
        schema.upgrade(owner)
    finally:
        owner.close()


def _apply(url: str, role: str) -> list[str]:
    db = Database(url)
    try:
        return db.transaction(lambda s: privileges.apply_grants(s, role))
    finally:
        db.close()


def _rights(url: str, role: str | None = None) -> privileges.Rights:
    db = Database(url)
    try:
        return db.transaction(lambda s: privileges.rights(s, role), readonly=True)
    finally:
        db.close()


def _statements(url: str, role: str) -> list[str]:
    db = Database(url)
    try:
        return db.transaction(lambda s: privileges.grant_statements(s, role), readonly=True)
    finally:
        db.close()


@pytest.mark.parametrize("name", ["", "app;drop", "app role", "1app", "x" * 64, "public", "PUBLIC",
                                  "current_user", "pg_signal_backend", 'a"b'])  # fmt: skip
def test_a_role_name_is_checked_before_it_reaches_sql(name: str) -> None:
    with pytest.raises(ValueError, match=r"role name|reserved"):
        privileges.check_role(name)


def test_sqlite_has_no_roles_and_says_what_protects_it(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'opsroom.db'}")
    try:
        schema.upgrade(db)
        found = db.transaction(privileges.rights, readonly=True)
        with pytest.raises(ValueError, match="SQLite: no database roles"):
            db.transaction(lambda s: privileges.grant_statements(s, "opsroom_app"))
    finally:
        db.close()

    assert found.role is None and found.warning is None
    assert found.summary == "SQLite: no database roles; the file's permissions and the triggers protect the audit tables"
    assert found.lines() == [f"database rights: {found.summary}"]


def test_the_runtime_role_may_read_and_append_but_not_change_the_audit_tables(roles: Roles) -> None:
    _apply(roles.owner_url, roles.runtime)

    own = _rights(roles.runtime_url)
    seen_by_owner = _rights(roles.owner_url, roles.runtime)

    assert own == seen_by_owner
    assert own.warning is None and not own.superuser and own.ddl == ()
    assert own.lines() == [
        f"database rights of {roles.runtime}: audit_event SELECT, INSERT; no UPDATE, DELETE, TRUNCATE; no DDL",
        f"database rights of {roles.runtime}: audit_signature SELECT, INSERT; no UPDATE, DELETE, TRUNCATE; no DDL",
        f"database rights of {roles.runtime}: audit_meta SELECT; no INSERT, UPDATE, DELETE, TRUNCATE; no DDL",
    ]  # fmt: skip
    assert own.summary == (f"role {roles.runtime} may not UPDATE, DELETE or TRUNCATE the audit tables, owns none "
                           "of them and may not run DDL")  # fmt: skip


def test_the_owner_is_warned_about(roles: Roles) -> None:
    found = _rights(roles.owner_url)

    assert found.role == roles.owner and not found.superuser
    assert all(t.owner and set(t.held) == set(privileges.REPORTED) for t in found.tables)
    assert found.warning is not None
    assert found.warning.startswith(f"role {roles.owner} can change or drop the audit tables or run DDL: "
                                    "it owns audit_event, audit_signature, audit_meta")  # fmt: skip
    assert f"it may run DDL (CREATE in schema public, CREATE on database {roles.database})" in found.warning
    assert found.lines()[0] == (f"database rights of {roles.owner}: audit_event SELECT, INSERT, UPDATE, DELETE, "
                                "TRUNCATE; owner; DDL")  # fmt: skip


def test_a_runtime_role_in_the_owners_role_is_warned_about_after_its_grants(roles: Roles) -> None:
    with connect(roles.admin_url) as admin:
        admin.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(roles.owner), sql.Identifier(roles.runtime)))
    _apply(roles.owner_url, roles.runtime)

    found = _rights(roles.owner_url, roles.runtime)

    assert found.warning is not None and "it owns audit_event, audit_signature, audit_meta" in found.warning


def test_grants_are_idempotent_and_reach_tables_a_later_migration_adds(roles: Roles) -> None:
    first = _apply(roles.owner_url, roles.runtime)
    after_first = granted(roles.admin_url, roles.runtime)
    second = _apply(roles.owner_url, roles.runtime)

    assert second == first and granted(roles.admin_url, roles.runtime) == after_first
    assert ("table audit_event", "INSERT") in after_first and ("table audit_event", "UPDATE") not in after_first
    assert ("table room", "UPDATE") in after_first and ("schema public", "CREATE") not in after_first

    # A later migration, run by the owner, adds a table: the runtime role has no right to it until the next run.
    with connect(roles.owner_url) as owner:
        owner.execute("CREATE TABLE later_table (id serial PRIMARY KEY, note text)")
    with connect(roles.runtime_url) as runtime, pytest.raises(psycopg.errors.InsufficientPrivilege):
        runtime.execute("INSERT INTO later_table (note) VALUES ('x')")
    third = _apply(roles.owner_url, roles.runtime)
    with connect(roles.runtime_url) as runtime:
        runtime.execute("INSERT INTO later_table (note) VALUES ('x')")
        runtime.execute("UPDATE later_table SET note = 'y'")

    assert "GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE public.later_table TO " + roles.runtime in third
    assert "GRANT USAGE, SELECT ON SEQUENCE public.later_table_id_seq TO " + roles.runtime in third


def test_rights_granted_by_hand_beyond_the_bots_needs_are_taken_back(roles: Roles) -> None:
    with connect(roles.owner_url) as owner:
        owner.execute(sql.SQL("GRANT ALL ON audit_event, room TO {}").format(sql.Identifier(roles.runtime)))
        owner.execute(sql.SQL("GRANT CREATE ON SCHEMA public TO {}").format(sql.Identifier(roles.runtime)))
        owner.execute(sql.SQL("GRANT UPDATE (key_id) ON audit_signature TO {}").format(sql.Identifier(roles.runtime)))
    before = _rights(roles.owner_url, roles.runtime).warning
    assert before is not None and "it may UPDATE audit_signature" in before  # a column's right counts

    _apply(roles.owner_url, roles.runtime)

    assert _rights(roles.owner_url, roles.runtime).warning is None
    assert ("table room", "TRUNCATE") not in granted(roles.admin_url, roles.runtime)
    with connect(roles.runtime_url) as runtime, pytest.raises(psycopg.errors.InsufficientPrivilege):
        runtime.execute("UPDATE audit_signature SET key_id = 'x'")


def test_create_on_the_schema_is_revoked_from_public_where_the_server_grants_it(roles: Roles) -> None:
    """PostgreSQL before 15 lets PUBLIC create in schema public; here a DBA grants it back to mimic that."""
    assert not any("FROM PUBLIC" in s for s in _statements(roles.owner_url, roles.runtime))
    with connect(roles.admin_url) as admin:
        admin.execute("GRANT CREATE ON SCHEMA public TO PUBLIC")
    assert _rights(roles.owner_url, roles.runtime).ddl == ("CREATE in schema public",)

    applied = _apply(roles.owner_url, roles.runtime)

    assert "REVOKE CREATE ON SCHEMA public FROM PUBLIC" in applied
    assert _rights(roles.owner_url, roles.runtime).ddl == ()
    with connect(roles.runtime_url) as runtime, pytest.raises(psycopg.errors.InsufficientPrivilege):
        runtime.execute("CREATE TABLE shadow (id int)")


def test_the_role_connected_and_unknown_roles_are_refused(roles: Roles) -> None:
    with pytest.raises(ValueError, match="is the role connected"):
        _apply(roles.owner_url, roles.owner)
    with pytest.raises(ValueError, match="does not exist"):
        _apply(roles.owner_url, roles.runtime.upper())
    assert granted(roles.admin_url, roles.runtime) == set()


def test_a_role_name_that_needs_quoting_is_quoted(pg_database_url: str) -> None:
    with owner_and_runtime(pg_database_url, runtime_prefix="Opsroom-App") as made:
        _migrate(made)

        applied = _apply(made.owner_url, made.runtime)
        found = _rights(made.owner_url, made.runtime)

        assert f'GRANT SELECT, INSERT ON TABLE public.audit_event TO "{made.runtime}"' in applied
        assert found.role == made.runtime and found.warning is None
        assert ("table audit_event", "INSERT") in granted(made.admin_url, made.runtime)


def test_the_runtime_roles_writes_raise_a_rooms_revision(roles: Roles) -> None:
    """Migration 0011's trigger function runs with the rights of whoever writes: the runtime role's."""
    _apply(roles.owner_url, roles.runtime)
    with connect(roles.runtime_url) as runtime:
        [(room_id,)] = runtime.execute(
            "INSERT INTO room (key, name, classification, timezone, lead_aad_id, tenant_id, space_kind, reference,"
            " status, orphaned, opened_at, task_seq) VALUES ('OP-ROLE', 'Role', 'OFFICIAL', 'Europe/London', 'a',"
            " 't', 'thread', '{}', 'open', false, now(), 0) RETURNING id").fetchall()  # fmt: skip
        runtime.execute("INSERT INTO room_member (room_id, aad_id, role, joined_at, no_export, digest_personal)"
                        " VALUES (%s, 'b', 'officer', now(), false, false)", (room_id,))  # fmt: skip
        [(revision,)] = runtime.execute("SELECT revision FROM room WHERE id = %s", (room_id,)).fetchall()
    assert revision == 1
