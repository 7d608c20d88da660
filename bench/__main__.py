"""`python -m bench [--quick] [--only PART]...`: measure, then write the report.

Parts: http, audit, verify, startup, policy, odd, digest (the digest fan-out), oversight (the misuse
rules over a simulated month), query (every `/audit` page over the big chain), replicas (audit appends on
one PostgreSQL chain from three processes against one).

Results are merged into var/bench/results.json (a part run alone keeps the
others' figures, each with the date it was measured) and rendered to
docs/PERFORMANCE.md; a --quick run keeps its own files so it never replaces
the real figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from bench import audit, audit_query, digest, load, odd, oversight, policy, procs, replicas, report

PARTS = ("http", "audit", "verify", "startup", "policy", "odd", "digest", "oversight", "query", "replicas")
PACKAGES = ("botbuilder-core", "botbuilder-integration-aiohttp", "aiohttp", "SQLAlchemy", "sqlmodel",
            "psycopg", "alembic", "cedarpy")  # fmt: skip


def _env(name: str, default: str) -> str:
    return os.environ.get(f"BENCH_{name}", default)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="small loads and a 100,000-event chain (smoke run)")
    p.add_argument("--only", action="append", choices=PARTS, help="run only this part (repeatable)")
    p.add_argument(
        "--requests",
        type=int,
        default=int(_env("REQUESTS", "2000")),
        help="requests per measured HTTP run (BENCH_REQUESTS, 2000)",
    )
    p.add_argument(
        "--seconds",
        type=float,
        default=float(_env("SECONDS", "10")),
        help="time limit per measured HTTP run (BENCH_SECONDS, 10)",
    )
    p.add_argument("--warmup", type=int, default=int(_env("WARMUP", "200")), help="warm-up requests (200)")
    p.add_argument("--clients", default=_env("CLIENTS", "1,50"), help="concurrent clients (1,50)")
    p.add_argument(
        "--connector",
        choices=("fake", "fast"),
        default=_env("CONNECTOR", "fake"),
        help="tests.fakes FakeConnector (fake, default) or bench's minimal one (fast)",
    )
    p.add_argument(
        "--appends",
        type=int,
        default=int(_env("APPENDS", "3000")),
        help="appends per measured audit run (BENCH_APPENDS, 3000)",
    )
    p.add_argument("--append-seconds", type=float, default=float(_env("APPEND_SECONDS", "5")))
    p.add_argument(
        "--events",
        type=int,
        default=int(_env("EVENTS", "1000000")),
        help="events in the chain for verify and query (BENCH_EVENTS, 1000000)",
    )
    p.add_argument("--report-only", action="store_true", help="rewrite the report from stored results")
    p.add_argument("--out", type=Path, help="report path (docs/PERFORMANCE.md; quick: var/bench/...)")
    return p  # fmt: skip


def _meta(quick: bool) -> dict[str, Any]:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor() or "unknown CPU")  # fmt: skip
    mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    git = ["git", "-C", str(procs.ROOT)]
    try:
        head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              timeout=10).stdout.strip() or "unknown"  # fmt: skip
        dirty = subprocess.run([*git, "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, timeout=10).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        head, dirty = "unknown", ""
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "quick": quick,
        "cores": os.cpu_count(), "cpu": cpu, "memory": f"{mem_kb / 2**20:.0f} GiB RAM",
        "os": f"{platform.system()} {platform.release()}", "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version, "commit": head + (" with uncommitted changes" if dirty else ""),
        "packages": {name: _version(name) for name in PACKAGES},
    }  # fmt: skip


def _machine_busy() -> float:
    """CPU seconds the whole machine has spent busy (not idle, not waiting on I/O)."""
    ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return (sum(ticks) - ticks[3] - ticks[4]) / procs.CLK_TCK


def _ours() -> float:
    """CPU seconds of this process and of its children that have been waited for."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def main(argv: list[str] | None = None) -> int:
    """Run the chosen parts, merge their results, write the report."""
    args = _parser().parse_args(argv)
    parts = args.only or list(PARTS)
    clients = tuple(int(c) for c in args.clients.split(",") if c.strip())
    lcfg = load.LoadConfig(args.requests, args.seconds, args.warmup, clients, args.connector)
    acfg = audit.AuditConfig(appends=args.appends, append_seconds=args.append_seconds, events=args.events)
    if args.quick:
        lcfg = replace(lcfg, requests=min(lcfg.requests, 300), seconds=min(lcfg.seconds, 3),
                       warmup=min(lcfg.warmup, 50), connector_seconds=1.5)  # fmt: skip
        acfg = replace(acfg, appends=min(acfg.appends, 300), append_seconds=1.5, writers=(1, 8),
                       events=min(acfg.events, 100_000), verify_runs=1, query_runs=5)  # fmt: skip
    pcfg = policy.PolicyConfig()
    if args.quick:
        pcfg = policy.PolicyConfig(decisions=2_000, warmup=200, batches=30)
    store = procs.ROOT / "var" / "bench" / ("results-quick.json" if args.quick else "results.json")
    default_out = "var/bench/PERFORMANCE-quick.md" if args.quick else "docs/PERFORMANCE.md"
    out: Path = args.out or procs.ROOT / default_out
    results: dict[str, Any] = json.loads(store.read_text()) if store.exists() else {}
    if args.report_only and results:
        out.write_text(report.render(results))
        print(f"rewrote {out} from {store}")
        return 0
    results["meta"] = _meta(args.quick)
    results.setdefault("measured", {})
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="opsroom-bench-") as tmp:
        work = Path(tmp)
        steps: dict[str, Callable[[], Any]] = {"startup": lambda: procs.measure_startup(work),
                 "http": lambda: load.run_http(lcfg, work),
                 "audit": lambda: audit.run_appends(acfg, work),
                 "verify": lambda: audit.run_verify(acfg),
                 "policy": lambda: policy.run(pcfg),
                 "odd": lambda: odd.run(work, rounds=2 if args.quick else 5),
                 "digest": lambda: digest.run(work, rooms=100 if args.quick else digest.ROOMS),
                 "oversight": lambda: oversight.run(days=7 if args.quick else oversight.DAYS,
                                                    also=() if args.quick else oversight.ALSO),
                 "query": lambda: audit_query.run(acfg.events, runs=5 if args.quick else 50),
                 "replicas": lambda: replicas.run(seconds=3.0 if args.quick else 8.0)}  # fmt: skip
        for part in ("startup", "http", "audit", "verify", "policy", "odd", "digest", "oversight", "query",
                     "replicas"):  # fmt: skip
            if part not in parts:
                continue
            print(f"== {part}", flush=True)
            part_began, busy, ours = time.perf_counter(), _machine_busy(), _ours()
            results[part] = steps[part]()
            wall = time.perf_counter() - part_began
            # Every child is reaped by the end of a part, so its CPU is in os.times().
            others = max(0.0, (_machine_busy() - busy) - (_ours() - ours)) / wall * 100
            results["measured"][part] = results["meta"]["date"]
            results.setdefault("others_cpu_pct", {})[part] = round(others, 1)
            print(f"   ({wall:.0f} s; other processes used {others:.0f}% of a core meanwhile)", flush=True)
    store.parent.mkdir(parents=True, exist_ok=True)
    store.write_text(json.dumps(results, indent=1))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(report.render(results))
    print(f"wrote {out.relative_to(procs.ROOT) if out.is_relative_to(procs.ROOT) else out} "
          f"in {time.perf_counter() - began:.0f} s", flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
