"""Engines and sessions: the one place that talks to the database driver.

Sessions are synchronous SQLAlchemy sessions, and the same code serves SQLite (pysqlite) and
PostgreSQL (psycopg 3). Reads run in a small worker-thread pool and writes in the group writer's
thread, so neither holds up the event loop; the one exception is a request's few indexed look-ups on
SQLite (`Database.look_up`), which cost less on the loop than the hand-off to a thread.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import event, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.pool import ConnectionPoolEntry
from sqlmodel import Session, create_engine

from core.groupcommit import GroupWriter

T = TypeVar("T")

DEFAULT_SQLITE_PATH = Path("var") / "opsroom.db"

LOOK_UP_BUSY_MS = 20
"""How long a look-up on the event loop may wait for SQLite's lock before it goes to a worker thread
instead (`Database.look_up`); a reader in WAL mode almost never waits at all."""
_WAITED = {5, 6}
"""SQLITE_BUSY and SQLITE_LOCKED (with their extended codes, such as BUSY_RECOVERY, in the high bits)."""


def normalise_url(url: str | None) -> str:
    """Turn the usual `sqlite:///path` / `postgresql://...` forms into driver URLs."""
    if not url:
        return f"sqlite+pysqlite:///{DEFAULT_SQLITE_PATH}"
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return parsed.set(drivername="sqlite+pysqlite").render_as_string(hide_password=False)
    if backend in ("postgresql", "postgres"):
        return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    raise ValueError(f"unsupported DATABASE_URL backend {backend!r}: use sqlite or postgresql")


def _sqlite_setup(engine: Engine) -> None:
    """WAL, durable commits, and writer transactions that take the lock up front.

    pysqlite's own transaction handling is turned off so that every transaction
    starts with BEGIN IMMEDIATE: writers queue on the database lock at the start
    instead of failing with SQLITE_BUSY on upgrade, which the audit chain needs
    (read the head, append after it, atomically).
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: DBAPIConnection, _rec: ConnectionPoolEntry) -> None:
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        # FULL in WAL mode syncs the log on every commit: an acknowledged
        # append survives a power cut.
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        options = conn.get_execution_options()
        if options.get("opsroom_statements"):
            return  # each statement reads on its own (Database.transaction's snapshot=False)
        conn.exec_driver_sql("BEGIN" if options.get("opsroom_readonly", False) else "BEGIN IMMEDIATE")


_DIRECT = "opsroom_direct"
"""Session.info key: the connection a session's fixed statements go to without its transaction (a
look-up's kept connection on SQLite, where each statement reads the newest commit on its own)."""


class DriverResult:
    """The rows of one fixed statement, all fetched (its cursor is closed before it is returned)."""

    __slots__ = ("_rows", "rowcount")

    def __init__(self, rows: list[tuple[Any, ...]], rowcount: int) -> None:
        self._rows = rows
        self.rowcount = rowcount
        """Rows the statement changed (-1 for a query on SQLite)."""

    def first(self) -> tuple[Any, ...] | None:
        """The first row, or None."""
        return self._rows[0] if self._rows else None

    def all(self) -> list[tuple[Any, ...]]:
        """Every row."""
        return self._rows


def driver_execute(
    session: Session, sql: str, params: Sequence[Any] = (), *, many: bool = False
) -> DriverResult:
    """Run one fixed statement of the hot path on the session's connection, straight to the driver.

    `sql` uses `?` for its parameters (written as `%s` for psycopg). SQLAlchemy's statement building,
    cache-key generation and result machinery cost several times what such a statement costs the
    database (a primary-key read, a one-row insert), on every request: the statement goes to a DBAPI
    cursor of the session's connection, within the session's transaction, and its rows are fetched
    whole and the cursor closed, so no statement ever leaves a cursor (and on SQLite a read snapshot)
    open. Errors are raised as SQLAlchemy raises them (`sqlalchemy.exc.DBAPIError` and its subclasses,
    the driver's error as `.orig`), and a lost connection is invalidated as SQLAlchemy would. many:
    params is a list of rows, the statement run for each (executemany).
    """
    connection: Connection = session.info.get(_DIRECT) or session.connection()
    dialect = connection.dialect
    statement = _styled(sql, dialect.paramstyle)
    values: Any = [tuple(row) for row in params] if many else tuple(params)
    dbapi_connection = connection.connection.dbapi_connection
    assert dbapi_connection is not None
    cursor = dbapi_connection.cursor()
    try:
        if many:
            cursor.executemany(statement, values)
        else:
            cursor.execute(statement, values)
        rows = list(cursor.fetchall()) if cursor.description is not None else []
        return DriverResult(rows, cursor.rowcount)
    except dialect.loaded_dbapi.Error as exc:
        lost = dialect.is_disconnect(exc, dbapi_connection, cursor)
        if lost:
            connection.invalidate(exc)
        raise DBAPIError.instance(statement, values, exc, dialect.loaded_dbapi.Error, dialect=dialect,
                                  connection_invalidated=lost, ismulti=many) from exc  # fmt: skip
    finally:
        cursor.close()


@functools.cache
def _styled(sql: str, paramstyle: str) -> str:
    if paramstyle == "qmark":
        return sql
    if "%" in sql:
        raise ValueError("driver SQL must not contain '%'")
    return sql.replace("?", "%s")


def _look_up_in(session: Session, here: Connection, fn: Callable[[Session], T]) -> T:
    """fn on the look-ups' kept session over `here`. Fixed statements go to the connection as they are
    (each its own read, driver_execute); a session transaction begins only if fn loads through the ORM,
    and ends here. The session is emptied after each look-up (a new one costs a quarter of a look-up),
    and nothing a look-up noted in its info carries over to the next one."""
    try:
        found = fn(session)
        if session.in_transaction():
            session.commit()
        return found
    finally:
        session.close()
        if len(session.info) != 1:
            session.info.clear()
            session.info[_DIRECT] = here


class Database:
    """Owns the engine and the worker threads that run sessions."""

    def __init__(self, url: str | None, *, workers: int = 4, echo: bool = False) -> None:
        self.url = normalise_url(url)
        parsed = make_url(self.url)
        self.dialect = parsed.get_backend_name()
        kwargs: dict[str, Any] = {"echo": echo, "pool_pre_ping": self.dialect != "sqlite"}
        if self.dialect == "sqlite":
            db_path = parsed.database
            if db_path and db_path != ":memory:":
                Path(db_path).parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        else:
            kwargs["pool_size"] = workers
            kwargs["max_overflow"] = 2
        self.engine: Engine = create_engine(self.url, **kwargs)
        if self.dialect == "sqlite":
            _sqlite_setup(self.engine)
        # Read-only work (queries, verify) must not queue behind writers on SQLite.
        self._readonly_engine = self.engine.execution_options(opsroom_readonly=True)
        self._statements_engine = self._readonly_engine.execution_options(opsroom_statements=True)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="db")
        self.writer = GroupWriter(lambda: Session(self.engine, expire_on_commit=False))
        self._here: Connection | None = None
        """The connection `look_up` reads through in the caller's thread (SQLite), made on first use."""
        self._here_session: Session | None = None
        """The session over `_here` that look-ups are given, closed (emptied) after each."""
        self._here_lock = threading.Lock()
        self._here_ok = self.dialect == "sqlite" and parsed.database not in (None, "", ":memory:")

    def __repr__(self) -> str:
        return f"Database({make_url(self.url).render_as_string(hide_password=True)!r})"

    def transaction(self, fn: Callable[[Session], T], *, readonly: bool = False, snapshot: bool = True) -> T:
        """Run fn in one transaction (commit on return, roll back on raise), in this thread.

        snapshot=False (read-only work only): on SQLite, no BEGIN and no COMMIT, so each statement reads
        the newest committed state on its own; for short reads whose statements need not agree (a
        request's look-ups, each of which says how new it is: `look_up`). Two statements fewer, and each
        lets go of the GIL, which under load is a thread switch. PostgreSQL is unaffected.
        """
        if not snapshot and not readonly:
            raise ValueError("only read-only work may go without a snapshot")
        bind = self.engine if not readonly else self._readonly_engine if snapshot else self._statements_engine
        with Session(bind, expire_on_commit=False) as session, session.begin():
            return fn(session)

    async def run(self, fn: Callable[[Session], T], *, readonly: bool = False, snapshot: bool = True) -> T:
        """Run fn in one transaction on a worker thread (snapshot: see `transaction`)."""
        loop = asyncio.get_running_loop()
        ctx = contextvars.copy_context()
        call = functools.partial(ctx.run, self.transaction, fn, readonly=readonly, snapshot=snapshot)
        return await loop.run_in_executor(self._pool, call)

    async def look_up(self, fn: Callable[[Session], T]) -> T:
        """Run a request's few indexed look-ups (read-only, no snapshot: see `transaction`).

        On SQLite they run here, on the event loop, through one connection kept for them: each costs
        microseconds, less than handing it to a worker thread and back, and under load that hand-off is
        paid again in GIL hand-offs between the threads (pysqlite lets go of the GIL on every step).
        Measured at 50 clients: about 10% less CPU per `/help` and a third of the thread switches
        (docs/PERFORMANCE.md). A look-up that would wait for SQLite's lock more than LOOK_UP_BUSY_MS
        (a reader in WAL mode hardly ever waits), or that finds the connection busy in another thread,
        runs on a worker thread instead, as every read on PostgreSQL does (there each is a round trip
        over the network, which must not hold up the loop).
        """
        if self._here_ok and self._here_lock.acquire(blocking=False):
            try:
                here, session = self._here, self._here_session
                if here is None or session is None or here.closed or here.invalidated:
                    # Opening sets the connection up with the pool's long lock wait: not on the loop.
                    here = self._here = await asyncio.to_thread(self._open_here)
                    session = self._here_session = Session(here, expire_on_commit=False, info={_DIRECT: here})
                return _look_up_in(session, here, fn)
            except OperationalError as exc:
                if getattr(exc.orig, "sqlite_errorcode", 0) & 0xFF not in _WAITED:
                    raise
            finally:
                self._here_lock.release()
        return await self.run(fn, readonly=True, snapshot=False)

    def _open_here(self) -> Connection:
        connection = self._statements_engine.connect()
        connection.detach()  # its own: never back in the pool with the short lock wait below
        connection.exec_driver_sql(f"PRAGMA busy_timeout={LOOK_UP_BUSY_MS}")
        connection.commit()
        return connection

    async def commit(self, fn: Callable[[Session], T]) -> T:
        """Run fn in the group writer: its own savepoint, committed with whatever else is queued.

        Returns (or raises) only once the batch holding fn is durable or rolled back.
        """
        ctx = contextvars.copy_context()
        result: T = await self.writer.submit(lambda session: ctx.run(fn, session))
        return result

    async def ping(self) -> None:
        """Raise if the database cannot be reached."""

        def _ping(session: Session) -> None:
            session.exec(text("SELECT 1"))  # type: ignore[call-overload]

        await self.run(_ping, readonly=True)

    def close(self) -> None:
        """Release connections and worker threads."""
        self.writer.stop()
        self._pool.shutdown(wait=True)
        with self._here_lock:
            self._here_ok = False  # a look-up after close fails as any other use of the database does
            if self._here is not None:
                self._here.close()
                self._here = self._here_session = None
        self.engine.dispose()
