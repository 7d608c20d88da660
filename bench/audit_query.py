"""The `/audit` query's pages over 1,000,000 events: `core.audit.filters.page` for each filter, first
page, a deep Next page (`before`) and a Previous page (`after`), each timed many times.

    python -m bench.audit_query [--events N] [--runs N]

The chain is the cached SQLite file of bench/fill.py (migrated to head by the product's CLI, so with
migration 0009's (action, seq), (actor_agency, seq) and (decision, seq) indexes): ~40 rooms of uneven
activity, ~500 people, the usual mix of commands, ~4% refused.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy import event, text
from sqlmodel import Session

from bench import fill
from core.audit.filters import AuditFilter, page
from core.db import Database

TARGET_MS = 100.0
LIMIT = 10


def _facts(session: Session) -> dict[str, Any]:
    one = session.execute
    newest, head = one(text("SELECT max(at), max(seq) FROM audit_event")).one()
    room = one(text("SELECT room_key FROM audit_event WHERE room_key IS NOT NULL GROUP BY 1 "
                    "ORDER BY count(*) DESC LIMIT 1")).scalar_one()  # fmt: skip
    quiet = one(text("SELECT room_key FROM audit_event WHERE room_key IS NOT NULL GROUP BY 1 "
                     "ORDER BY count(*) LIMIT 1")).scalar_one()  # fmt: skip
    by_actor = "SELECT actor_aad_id FROM audit_event GROUP BY 1 ORDER BY count(*)"
    user = one(text(f"{by_actor} DESC LIMIT 1")).scalar_one()
    rare = one(text(f"{by_actor} LIMIT 1")).scalar_one()
    agency = one(text("SELECT actor_agency FROM audit_event WHERE actor_agency IS NOT NULL GROUP BY 1 "
                      "ORDER BY count(*) DESC LIMIT 1")).scalar_one()  # fmt: skip
    return {"newest": newest, "head": int(head), "room": room, "quiet": quiet, "user": user, "rare": rare,
            "agency": agency}  # fmt: skip


def filters(f: dict[str, Any]) -> dict[str, AuditFilter]:
    """The filters an /audit user would type, on the busiest and the rarest values."""
    since = datetime.fromisoformat(f["newest"].replace("Z", "+00:00")) - timedelta(days=7)
    return {
        "none": AuditFilter(),
        "--room (busiest)": AuditFilter(room_key=f["room"]),
        "--room (quietest)": AuditFilter(room_key=f["quiet"]),
        "--user (most active)": AuditFilter(user=f["user"]),
        "--user (least active)": AuditFilter(user=f["rare"]),
        "--denied": AuditFilter(denied=True),
        "--action task.show": AuditFilter(action="task.show"),
        "--action audit.*": AuditFilter(action="audit.*"),
        "--agency": AuditFilter(agency=f["agency"]),
        "--since 7d": AuditFilter(since=since),
        "--user + --denied": AuditFilter(user=f["user"], denied=True),
        "--room + --since 7d": AuditFilter(room_key=f["room"], since=since),
        "--room + --denied + --since 7d": AuditFilter(room_key=f["quiet"], denied=True, since=since),
        "--agency + --action room.open": AuditFilter(agency=f["agency"], action="room.open"),
        "--user + --room + --action task.list": AuditFilter(user=f["rare"], room_key=f["room"],
                                                            action="task.list"),
    }  # fmt: skip


def _timed(fn: Callable[[], Any], runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        began = time.perf_counter()
        fn()
        out.append((time.perf_counter() - began) * 1000)
    return out


def _stats(ms: list[float]) -> dict[str, float]:
    ordered = sorted(ms)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return {"p50": statistics.median(ordered), "p99": p99, "max": ordered[-1], "runs": len(ordered)}


def _page(session: Session, *, f: AuditFilter, upto: int, before: int | None = None,
          after: int | None = None, limit: int = LIMIT) -> Any:  # fmt: skip
    return page(session, f, upto=upto, before=before, after=after, limit=limit)


def measure(db: Database, runs: int) -> dict[str, Any]:
    """Every filter's first, deep Next and Previous page, `runs` times each."""
    facts = db.transaction(_facts, readonly=True)
    upto = facts["head"]
    cases: dict[str, Any] = {}
    statements: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        statements.append((statement, parameters))

    for label, f in filters(facts).items():
        # The deep page: ten pages in (or as deep as the filter goes), then its Previous page.
        anchor = db.transaction(partial(_page, f=f, upto=upto, limit=LIMIT * 10), readonly=True)
        deep_before = anchor.events[-1].seq if anchor.events else None
        kinds: dict[str, Callable[[Session], Any]] = {
            "first": partial(_page, f=f, upto=upto),
            "next (deep)": partial(_page, f=f, upto=upto, before=deep_before),
            "previous": partial(_page, f=f, upto=upto, after=(deep_before or 1) - 1),
        }
        cases[label] = {"filter": f.to_json(), "pages": {}}
        for kind, fn in kinds.items():
            rows = len(db.transaction(fn, readonly=True).events)  # warm the cache
            statements.clear()
            event.listen(db.engine, "before_cursor_execute", capture)
            db.transaction(fn, readonly=True)
            event.remove(db.engine, "before_cursor_execute", capture)
            caught = list(statements)
            ms = _timed(partial(db.transaction, fn, readonly=True), runs)
            result: dict[str, Any] = {**_stats(ms), "rows": rows}
            if result["max"] >= TARGET_MS or result["p99"] >= TARGET_MS:
                result["plans"] = [_explain(db, s) for s in caught]
            cases[label]["pages"][kind] = result
            print(f"  {label:38} {kind:12} {rows:3} rows  p50 {result['p50']:7.2f}  "
                  f"p99 {result['p99']:7.2f}  max {result['max']:7.2f} ms", flush=True)  # fmt: skip
    return {"cases": cases, "runs": runs, "limit": LIMIT, "head": upto, "newest": facts["newest"]}


def _explain(db: Database, captured: tuple[str, Any]) -> dict[str, Any]:
    statement, parameters = captured

    def plan(session: Session) -> list[str]:
        rows = session.connection().exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters).all()
        return [str(r[-1]) for r in rows]

    try:
        return {"sql": " ".join(statement.split())[:400], "plan": db.transaction(plan, readonly=True)}
    except Exception as exc:  # a plan is a nicety; never fail the run for it
        return {"sql": statement[:200], "plan": [f"(no plan: {type(exc).__name__})"]}


def run(events: int = 1_000_000, runs: int = 50) -> dict[str, Any]:
    """The cached chain of `events` events (built if missing), then every filter's pages."""
    path, built = fill.cached(events)
    db = Database(f"sqlite:///{path}")
    try:
        out = measure(db, runs)
    finally:
        db.close()
    return out | {"events": events, "backend": "SQLite", "built_seconds": built}


def _worst(d: dict[str, Any]) -> tuple[str, float]:
    label, kind, p = max(((lbl, k, p) for lbl, c in d["cases"].items() for k, p in c["pages"].items()),
                         key=lambda t: t[2]["max"])  # fmt: skip
    return f"{label}, {kind}", p["max"]


def summary_rows(d: dict[str, Any]) -> list[str]:
    """The issue's target for /audit pages, with the slowest page."""
    where, worst = _worst(d)
    met = "**met**" if worst < TARGET_MS else "**not met**"
    return [f"| any `/audit` page over {d['events']:,} events < 100 ms | slowest {worst:.1f} ms max "
            f"({where}) | {met} |"]  # fmt: skip


def section(d: dict[str, Any]) -> list[str]:
    """Each filter's pages: p50, p99 and max against the target."""
    lines = [f"`core.audit.filters.page` on {d['backend']}, {d['events']:,} events (the cached chain of "
             f"`bench/fill.py`), pages of {d['limit']}, anchored at the head (seq {d['head']:,}); each page "
             f"{d['runs']} times after a warm-up. \"Next (deep)\" is the page after the first hundred "
             "matches; \"previous\" the page before that one.", "",
             "| filter | page | rows | p50 ms | p99 ms | max ms | target | |",
             "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    slow = []
    for label, c in d["cases"].items():
        for kind, p in c["pages"].items():
            ok = p["max"] < TARGET_MS
            lines.append(f"| {label} | {kind} | {p['rows']} | {p['p50']:.2f} | {p['p99']:.2f} | "
                         f"{p['max']:.2f} | < 100 ms | {'**met**' if ok else '**not met**'} |")  # fmt: skip
            if "plans" in p:
                slow.append((label, kind, p["plans"]))
    for label, kind, plans in slow:
        lines += ["", f"Plan of `{label}`, {kind} page (SQLite):", ""]
        for plan in plans:
            lines += [f"- `{plan['sql'][:200]}`: " + "; ".join(plan["plan"])]
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.audit_query", description=__doc__.split("\n")[0])
    p.add_argument("--events", type=int, default=1_000_000, help="events in the chain (1,000,000)")
    p.add_argument("--runs", type=int, default=50, help="timed runs per page (50)")
    args = p.parse_args(argv)
    out = run(args.events, args.runs)
    where, worst = _worst(out)
    print(f"slowest page: {where}, {worst:.1f} ms max")
    return 0


if __name__ == "__main__":
    sys.exit(main())
