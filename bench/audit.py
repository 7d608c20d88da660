"""Parts 2 and 3: durable audit appends, chain verification and the /audit query.

Everything goes through the product's own API: `Database.run` (and the group
commit `Database.commit` when core/db.py has one) with `flows.record`,
`service.verify`, and `service.query` when it exists. Appends are signed
(Ed25519, a key made for the run) as the running bot's are; "chain verified
after" checks the signatures too.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import event, select, text
from sqlmodel import Session

from bench import fill, procs
from core.audit import flows, service, signing
from core.audit.models import Actor, AuditEvent, EventDraft, Where
from core.db import Database

PG_ADMIN = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


@dataclass(frozen=True)
class AuditConfig:
    """Sizes and repetitions of the audit measurements."""

    appends: int = 3000
    append_seconds: float = 5.0
    writers: tuple[int, ...] = (1, 8, 50)
    events: int = 1_000_000
    verify_runs: int = 3
    query_runs: int = 20


def _draft(i: int) -> EventDraft:
    return EventDraft(
        action="task.list", outcome="ok", decision="allow", rule="officer.permit.task.list",
        actor=Actor(f"aaaaaaaa-0000-4000-8000-{i % 500:012d}", fill.HOME_TENANT, "PC Ada Officer", "officer"),
        where=Where("19:team@thread.tacv2", "19:room@thread.tacv2", "19:room@thread.tacv2;messageid=1",
                    f"OP-ROOM{i % 40:02d}"),
        activity_id=str(uuid.uuid4()), activity_type="message", arguments={"mine": True},
        duration_us=4200,
    )  # fmt: skip


def append_apis(db: Database) -> dict[str, Callable[[Callable[[Session], Any]], Awaitable[Any]]]:
    """The ways core/db.py offers to commit a write: `run` always, group commit when present."""
    apis: dict[str, Callable[[Callable[[Session], Any]], Awaitable[Any]]] = {"db.run": db.run}
    for name in ("commit", "submit", "append_grouped"):
        candidate = getattr(db, name, None)
        if candidate is not None and inspect.iscoroutinefunction(candidate):
            apis[f"db.{name} (group commit)"] = candidate
    return apis


async def _appends(api: Callable[[Callable[[Session], Any]], Awaitable[Any]], writers: int,
                   total: int, seconds: float) -> tuple[int, float]:  # fmt: skip
    issued = iter(range(total))
    deadline = time.perf_counter() + seconds
    done = [0]

    async def writer() -> None:
        for i in issued:
            if time.perf_counter() > deadline:
                return
            draft = _draft(i)

            def work(session: Session, d: EventDraft = draft) -> Any:
                return flows.record(session, d)

            await api(work)
            done[0] += 1

    began = time.perf_counter()
    await asyncio.gather(*(writer() for _ in range(writers)))
    return done[0], time.perf_counter() - began


def measure_appends(url: str, label: str, cfg: AuditConfig, work: Path, *, signed: bool = True,
                    writers: tuple[int, ...] | None = None) -> list[dict[str, Any]]:  # fmt: skip
    """Each append API at each writer count against one migrated database; signed: every append signs
    its head as the running bot's do (unsigned: the same without a key, to show what signing costs)."""
    procs.migrate(url, work / "migrate.log")
    db = Database(url)
    signer = signing.Signer.generate() if signed else None
    signing.attach(db.engine, signer)
    out = []
    try:
        for api_name, api in append_apis(db).items():
            if not signed and api_name == "db.run":
                continue
            for count in writers or cfg.writers:
                asyncio.run(_appends(api, count, max(count, 20), cfg.append_seconds))  # warm-up
                events, seconds = asyncio.run(_appends(api, count, cfg.appends, cfg.append_seconds))
                out.append({"backend": label, "api": api_name, "writers": count, "events": events,
                            "seconds": seconds, "per_second": events / seconds,
                            "signed": signed})  # fmt: skip
                print(f"  {label:10} {api_name:26} {count:3} writers{'' if signed else ' (unsigned)'}: "
                      f"{events / seconds:8.0f} events/s", flush=True)  # fmt: skip
        keys = signer.keyring() if signer is not None else None
        result = db.transaction(lambda s: service.verify(s, keys=keys), readonly=True)
        for row in out:
            row["chain_ok"] = result.ok
    finally:
        db.close()
    return out


def run_appends(cfg: AuditConfig, work: Path) -> dict[str, Any]:
    """SQLite in the bench's temp dir, then PostgreSQL in a database of our own, dropped after."""
    out: dict[str, Any] = {"runs": [], "skipped": {}}
    out["runs"] += measure_appends(f"sqlite:///{work / 'appends.db'}", "SQLite", cfg, work)
    bare = f"sqlite:///{work / 'appends-unsigned.db'}"
    out["runs"] += measure_appends(bare, "SQLite", cfg, work, signed=False, writers=(max(cfg.writers),))
    name = f"opsroom_bench_{os.getpid()}"
    try:
        admin = psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=5)
    except psycopg.Error as exc:
        out["skipped"]["PostgreSQL"] = f"cannot connect to {PG_ADMIN}: {type(exc).__name__}"
        return out
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            base = PG_ADMIN.rsplit("/", 1)[0]
            out["runs"] += measure_appends(f"{base}/{name}", "PostgreSQL", cfg, work)
            out["pg_version"] = admin.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return out


def _timed(fn: Callable[[], Any], runs: int) -> tuple[list[float], Any]:
    times, result = [], None
    for _ in range(runs):
        began = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - began)
    return times, result


def _summary(times: list[float]) -> dict[str, float]:
    return {"min": min(times), "median": statistics.median(times), "max": max(times), "runs": len(times)}


def run_verify(cfg: AuditConfig) -> dict[str, Any]:
    """Verify the cached chain of cfg.events events, then time /audit-style queries on it."""
    path, built = fill.cached(cfg.events)
    db = Database(f"sqlite:///{path}")
    try:
        times, result = _timed(lambda: db.transaction(lambda s: service.verify(s), readonly=True),
                               cfg.verify_runs)  # fmt: skip
        checked = {"ok": result.ok, "count": result.count, "per_second": result.count / min(times)}
        out: dict[str, Any] = {"events": cfg.events, "file": str(path.relative_to(procs.ROOT)),
                               "file_mb": path.stat().st_size / 2**20, "built_seconds": built,
                               "verify": _summary(times) | checked}  # fmt: skip
        print(f"  verify {result.count} events: ok={result.ok} min {min(times):.2f} s "
              f"({result.count / min(times):,.0f} events/s)", flush=True)  # fmt: skip
        out["queries"] = run_queries(db, cfg.query_runs)
    finally:
        db.close()
    return out


def _product_query() -> Callable[..., Any] | None:
    """`service.query` if it takes the filters this benchmark needs."""
    fn = getattr(service, "query", None)
    if fn is None:
        return None
    wanted = {"room_key", "since", "limit", "denied_only", "actor_aad_id"}
    return fn if wanted <= set(inspect.signature(fn).parameters) else None


def _own_query(session: Session, *, room_key: str, since: datetime, limit: int = 50,
               denied_only: bool = False, actor_aad_id: str | None = None) -> list[Any]:  # fmt: skip
    """The query written here when the product has none: newest first on (room_key, at)."""
    table = AuditEvent.__table__  # type: ignore[attr-defined]
    stmt = select(table).where(table.c.room_key == room_key, table.c.at >= service.utc_stamp(since))
    if denied_only:
        stmt = stmt.where(table.c.decision == "deny")
    if actor_aad_id is not None:
        stmt = stmt.where(table.c.actor_aad_id == actor_aad_id)
    return list(session.execute(stmt.order_by(table.c.at.desc()).limit(limit)))


def run_queries(db: Database, runs: int) -> dict[str, Any]:
    """The 50 newest events for a room since 7 days before the newest event, four ways."""
    product = _product_query()
    query: Callable[..., Any] = product or _own_query

    def facts(session: Session) -> tuple[str, list[tuple[str, int]], str]:
        newest = session.execute(text("SELECT max(at) FROM audit_event")).scalar_one()
        rooms = session.execute(text("SELECT room_key, count(*) FROM audit_event WHERE room_key "
                                     "IS NOT NULL GROUP BY room_key ORDER BY 2 DESC")).all()  # fmt: skip
        top_user = text(
            "SELECT actor_aad_id FROM audit_event WHERE room_key = :r "
            "GROUP BY 1 ORDER BY count(*) DESC LIMIT 1"
        )
        user = session.execute(top_user, {"r": rooms[0][0]})
        return newest, [(r[0], r[1]) for r in rooms], user.scalar_one()

    newest, rooms, user = db.transaction(facts, readonly=True)
    since = datetime.fromisoformat(newest.replace("Z", "+00:00")) - timedelta(days=7)
    busy, quiet = rooms[0][0], rooms[-1][0]
    cases: dict[str, dict[str, Any]] = {
        f"busiest room ({busy}, {rooms[0][1]:,} events)": {"room_key": busy},
        "busiest room, denied only": {"room_key": busy, "denied_only": True},
        "busiest room, by its most active user": {"room_key": busy, "actor_aad_id": user},
        f"quietest room ({quiet}, {rooms[-1][1]:,} events), denied only": {"room_key": quiet,
                                                                           "denied_only": True},
    }  # fmt: skip
    statements: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        statements.append((statement, parameters))

    out: dict[str, Any] = {"function": "core.audit.service.query" if product else "bench.audit._own_query",
                           "since": service.utc_stamp(since), "newest": newest, "cases": {}}  # fmt: skip
    for label, kwargs in cases.items():

        def call(kw: dict[str, Any] = kwargs) -> int:
            return len(db.transaction(lambda s: query(s, since=since, limit=50, **kw), readonly=True))

        call()  # warm the page cache and the statement cache
        statements.clear()
        event.listen(db.engine, "before_cursor_execute", capture)
        rows = call()
        event.remove(db.engine, "before_cursor_execute", capture)
        plan = _explain(db, statements[-1]) if statements else []
        times, _ = _timed(call, runs)
        out["cases"][label] = _summary([t * 1000 for t in times]) | {"rows": rows, "plan": plan}
        print(f"  query {label}: {rows} rows, min {min(times) * 1000:.2f} ms, "
              f"median {statistics.median(times) * 1000:.2f} ms", flush=True)  # fmt: skip
    return out


def _explain(db: Database, captured: tuple[str, Any]) -> list[str]:
    """SQLite's plan for the main statement a query ran."""
    statement, parameters = captured

    def plan(session: Session) -> list[str]:
        conn = session.connection()
        rows = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters).all()
        return [str(r[-1]) for r in rows]

    try:
        return db.transaction(plan, readonly=True)
    except Exception as exc:  # a plan is a nicety; never fail the run for it
        return [f"(no plan: {type(exc).__name__})"]
