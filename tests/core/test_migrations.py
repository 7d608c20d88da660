"""Alembic migrations from nothing, idempotence, and a round trip through base."""

from __future__ import annotations

import importlib

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlmodel import SQLModel

from core import schema
from core.db import Database
from tests.core.support import append_events, trigger_names, verify

EXPECTED_TRIGGERS = {
    "sqlite": {"audit_event_no_update", "audit_event_no_delete"},
    "postgresql": {"audit_event_no_update", "audit_event_no_truncate"},
}


def _tables(db: Database) -> set[str]:
    return set(inspect(db.engine).get_table_names())


def _downgrade(db: Database, target: str) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(schema.MIGRATIONS))
    with db.engine.connect() as connection:
        cfg.attributes["connection"] = connection
        command.downgrade(cfg, target)
        connection.commit()


def _pg_refuse_function_exists(db: Database) -> bool:
    with db.engine.connect() as conn:
        return bool(conn.execute(text("SELECT to_regproc('audit_event_refuse') IS NOT NULL")).scalar())


def test_head_is_known() -> None:
    assert schema.head_revision() == "0011"


def test_upgrade_from_empty_creates_tables_and_triggers(fresh_db: Database) -> None:
    assert _tables(fresh_db) == set()
    assert schema.current_revision(fresh_db) is None

    schema.upgrade(fresh_db)

    assert {"audit_event", "processed_activity", "alembic_version"} <= _tables(fresh_db)
    assert trigger_names(fresh_db) == EXPECTED_TRIGGERS[fresh_db.dialect]
    assert schema.current_revision(fresh_db) == schema.head_revision()
    indexes = {ix["name"] for ix in inspect(fresh_db.engine).get_indexes("audit_event")}
    assert {"ix_audit_event_at", "ix_audit_event_room_seq", "ix_audit_event_actor_seq"} <= indexes


def test_the_models_match_the_migrated_schema(db: Database) -> None:
    """Every table, column, type, index and constraint the models declare is what migrations made."""
    packages = ("agencies", "audit", "dedupe", "digest", "invitations", "outbox", "oversight", "rooms", "tasks")
    for package in packages:
        importlib.import_module(f"core.{package}.models")

    with db.engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), SQLModel.metadata) == []


def test_upgrade_twice_is_a_no_op(db: Database) -> None:
    append_events(db, 3)
    before = (_tables(db), trigger_names(db), schema.current_revision(db))

    schema.upgrade(db)

    assert (_tables(db), trigger_names(db), schema.current_revision(db)) == before
    result = verify(db)
    assert result.ok and result.count == 3


def test_downgrade_to_base_and_up_again(db: Database) -> None:
    append_events(db, 2)

    _downgrade(db, "base")

    assert schema.current_revision(db) is None
    assert not {"audit_event", "processed_activity"} & _tables(db)
    assert trigger_names(db) == set()
    if db.dialect == "postgresql":
        assert not _pg_refuse_function_exists(db)

    schema.upgrade(db)

    assert schema.current_revision(db) == schema.head_revision()
    assert trigger_names(db) == EXPECTED_TRIGGERS[db.dialect]
    result = verify(db)
    assert result.ok and result.count == 0
    append_events(db, 1)
    assert verify(db).count == 1
