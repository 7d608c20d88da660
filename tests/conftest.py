"""Database fixtures shared by the whole suite.

Every test that asks for `db_url`, `db` or `fresh_db` runs twice: on a SQLite
file in the test's tmp_path and on PostgreSQL. Each test session creates its own
PostgreSQL database (dropped at the end of the session) and every test starts
from an empty `public` schema in it, so tests are isolated from each other and
from other sessions running at the same time.

Environment:
  OPSROOM_TEST_PG_URL       server to create the session database on
                            (default postgresql://postgres@127.0.0.1:5432/test)
  OPSROOM_REQUIRE_POSTGRES  "1": an unreachable server fails the postgresql
                            tests instead of skipping them
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from sqlalchemy.engine import make_url

from core import schema
from core.db import Database

DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/test"


def _pg_base_url() -> str:
    return os.environ.get("OPSROOM_TEST_PG_URL") or DEFAULT_PG_URL


def _libpq_url(url: str) -> str:
    """The URL psycopg.connect understands (no "+driver" suffix)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _shown(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def _admin_connect(url: str) -> psycopg.Connection:
    return psycopg.connect(_libpq_url(url), autocommit=True, connect_timeout=5)


@pytest.fixture(scope="session")
def pg_database_url() -> Iterator[str]:
    """A PostgreSQL database of this test session's own, dropped when the session ends.

    Skips (or fails, with OPSROOM_REQUIRE_POSTGRES=1) when the server cannot be
    reached; being session-scoped, the outcome is decided once.
    """
    base = _pg_base_url()
    try:
        admin = _admin_connect(base)
    except psycopg.OperationalError as exc:
        admin, reason = None, f"PostgreSQL not reachable at {_shown(base)}: {str(exc).strip()}"
    if admin is None:
        if os.environ.get("OPSROOM_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"{reason} (OPSROOM_REQUIRE_POSTGRES=1)", pytrace=False)
        pytest.skip(f"{reason} (set OPSROOM_TEST_PG_URL, or OPSROOM_REQUIRE_POSTGRES=1 to fail)")
    name = f"opsroom_test_{os.getpid()}_{secrets.token_hex(4)}"
    with admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield make_url(base).set(drivername="postgresql", database=name).render_as_string(hide_password=False)
    finally:
        with _admin_connect(base) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def _reset_pg_schema(url: str) -> None:
    """Empty the database: end its other sessions, then recreate the public schema."""
    with _admin_connect(url) as conn:
        # A Database a previous test forgot to close would hold locks and block the drop.
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        conn.execute("SET lock_timeout = '10s'")
        conn.execute("DROP SCHEMA IF EXISTS public CASCADE")
        conn.execute("CREATE SCHEMA public")


@pytest.fixture(params=["sqlite", "postgresql"], ids=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A DATABASE_URL-style URL of an empty database, once per backend.

    sqlite: `sqlite:///<tmp_path>/opsroom.db` (the file does not exist yet).
    postgresql: `postgresql://user@host:port/<session database>` with an empty
    public schema.
    """
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'opsroom.db'}"
    url: str = request.getfixturevalue("pg_database_url")
    _reset_pg_schema(url)
    return url


@pytest.fixture
def fresh_db(db_url: str) -> Iterator[Database]:
    """A Database on the empty database of `db_url`, never migrated; closed after the test."""
    database = Database(db_url)
    try:
        yield database
    finally:
        database.close()


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    """A Database migrated to head on the database of `db_url`; closed after the test."""
    database = Database(db_url)
    try:
        schema.upgrade(database)
        yield database
    finally:
        database.close()


@pytest.fixture
def second(db: Database, db_url: str) -> Iterator[Database]:
    """Another Database on the same store as `db`, with its own engine and connections: another process."""
    other = Database(db_url)
    try:
        yield other
    finally:
        other.close()
