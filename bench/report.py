"""docs/PERFORMANCE.md from the results of a run: figures, the issue's targets, met or not."""

from __future__ import annotations

import statistics
from typing import Any

from bench import audit_query, digest, oversight, policy, replicas
from bench.notes import HOW_TO, NOTES


def _met(ok: bool | None) -> str:
    return "n/a" if ok is None else ("**met**" if ok else "**not met**")


def _f(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _runs(http: dict[str, Any], target: str, clients: int) -> dict[str, Any] | None:
    return next((r for r in http.get("runs", []) if r["target"] == target and r["clients"] == clients), None)


REFERENCE_ECHO_CPU_MS = 7.46
"""The sample echo bot's CPU per request at 50 clients in the run of 2026-11-30 19:52 UTC (AMD EPYC, on the
host the targets were last judged on). The echo bot is CPU-bound and its code never changes, so the same
figure in another run says how fast that run's machine was."""


def machine_speed(results: dict[str, Any]) -> list[str]:
    """How much slower this run's machine was than the reference, by the echo bot's CPU per request."""
    echo = _runs(results.get("http") or {}, "echo", 50)
    ms = echo.get("server_cpu_ms_per_request") if echo else None
    if not ms:
        return []
    factor = ms / REFERENCE_ECHO_CPU_MS
    if 0.8 <= factor <= 1.25:
        return []
    speed = f"about {factor:.1f} times slower" if factor > 1 else f"about {1 / factor:.1f} times faster"
    when = results.get("measured", {}).get("http", results["meta"]["date"])
    return [f"**Machine speed**: in the HTTP part ({when}) the sample echo bot (CPU-bound, its code never "
            f"changes) used {ms:.2f} ms of CPU per request at 50 clients, against {REFERENCE_ECHO_CPU_MS:g} "
            f"ms in the run of 2026-11-30 19:52 UTC: this machine ran {speed} than that one. Targets in "
            f"milliseconds, seconds and events per second are judged below on the figures as measured; "
            f"at that one's speed, times would be about {factor:.1f} times shorter and rates as many times "
            f"higher (roughly: not every kind of work slows alike). The ratios to the raw and the echo "
            f"bot, measured side by side, depend on the machine far less.", ""]  # fmt: skip


def summary(results: dict[str, Any]) -> list[str]:
    """The targets from the issue, each with the figure it is judged on."""
    rows = [*machine_speed(results), "| target (from the issue) | figure | |", "|---|---|---|"]
    http = results.get("http") or {}
    ops50, echo50, ops1 = _runs(http, "opsroom", 50), _runs(http, "echo", 50), _runs(http, "opsroom", 1)
    if ops50 and echo50 and echo50["rps"]:
        ratio = ops50["rps"] / echo50["rps"]
        rows.append(f"| full pipeline >= 3x the echo bot's throughput at 50 clients | {ratio:.2f}x "
                    f"({ops50['rps']:.0f} vs {echo50['rps']:.0f} req/s) | {_met(ratio >= 3)} |")  # fmt: skip
    raw50 = _runs(http, "raw", 50)
    if ops50 and raw50 and raw50["rps"]:
        share = ops50["rps"] / raw50["rps"]
        rows.append(f"| `/help` at 50 clients: >= 0.3 of the raw aiohttp bot's throughput | {share:.2f} "
                    f"({ops50['rps']:.0f} vs {raw50['rps']:.0f} req/s) | {_met(share >= 0.3)} |")  # fmt: skip
    cpu50 = ops50.get("server_cpu_ms_per_request") if ops50 else None
    if cpu50 is not None:
        rows.append(f"| `/help` at 50 clients: <= 1.25 ms bot CPU per request | {cpu50:.2f} ms | "
                    f"{_met(cpu50 <= 1.25)} |")  # fmt: skip
    rows += room_summary(http)
    if ops1:
        p99 = ops1["p99_ms"]
        rows.append(f"| p99 < 15 ms with one client | {p99:.1f} ms | {_met(p99 < 15)} |")
    runs = [r for r in (results.get("audit") or {}).get("runs", []) if r["backend"] == "SQLite"]
    sqlite = [r for r in runs if r.get("signed", True)]
    if sqlite:
        best = max(sqlite, key=lambda r: r["per_second"])
        single = next((r for r in sqlite if r["api"] == "db.run" and r["writers"] == 1), best)
        bare = next((r for r in runs if not r.get("signed", True)), None)
        unsigned = f"; the same unsigned {bare['per_second']:,.0f}/s" if bare else ""
        rows.append(f"| >= 2,000 durable audit appends/s on SQLite | best {best['per_second']:,.0f}/s "
                    f"({best['api']}, {best['writers']} writers, signed){unsigned}; `db.run` 1 writer "
                    f"{single['per_second']:,.0f}/s | {_met(best['per_second'] >= 2000)} |")  # fmt: skip
    verify = results.get("verify") or {}
    if verify:
        v = verify["verify"]
        rows.append(f"| verify {verify['events']:,} events < 5 s | {v['median']:.2f} s median "
                    f"({v['per_second']:,.0f} events/s, chain ok: {v['ok']}) | "
                    f"{_met(v['median'] < 5 and v['ok'])} |")  # fmt: skip
        worst = max(c["median"] for c in verify["queries"]["cases"].values())
        rows.append(
            f"| the audit query < 100 ms | slowest case {worst:.2f} ms median | {_met(worst < 100)} |"
        )
    idle = _idle_rss(results, "opsroom")
    if idle is not None:
        rows.append(f"| RSS < 150 MB idle | {idle:.1f} MB | {_met(idle < 150)} |")
    if results.get("policy"):
        rows.append(policy.summary_row(results["policy"]))
    if results.get("digest"):
        rows += digest.summary_rows(results["digest"])
    if results.get("query"):
        rows += audit_query.summary_rows(results["query"])
    if results.get("oversight"):
        rows += oversight.summary_rows(results["oversight"])
    if results.get("replicas"):
        rows += replicas.summary_rows(results["replicas"])
    return rows


ROOM_CPU_TARGET_MS = 2.5


def _room_runs(http: dict[str, Any], clients: int) -> list[dict[str, Any]]:
    return [r for r in (http.get("room") or {}).get("runs", []) if r["clients"] == clients]


def room_summary(http: dict[str, Any]) -> list[str]:
    """The room target: the worse of `/room status` and `/task list` at 50 clients, in bot CPU per request."""
    room = http.get("room") or {}
    runs = [r for r in _room_runs(http, 50) if r.get("server_cpu_ms_per_request") is not None]
    if not runs:
        return []
    worst = max(runs, key=lambda r: r["server_cpu_ms_per_request"])
    others = "; ".join(f"`{r['command']}` {r['server_cpu_ms_per_request']:.2f} ms"
                       for r in runs if r is not worst)  # fmt: skip
    return [f"| `/room status` and `/task list` (room of {room.get('tasks', 50)} tasks, 50 clients): "
            f"<= {ROOM_CPU_TARGET_MS:g} ms bot CPU per request | worse of the two: `{worst['command']}` "
            f"{worst['server_cpu_ms_per_request']:.2f} ms" + (f" ({others})" if others else "") + " | "
            f"{_met(worst['server_cpu_ms_per_request'] <= ROOM_CPU_TARGET_MS)} |"]  # fmt: skip


def room_section(http: dict[str, Any]) -> list[str]:
    """Commands in a room of 50 tasks, on the opsroom server the `/help` runs loaded."""
    room = http.get("room") or {}
    if not room.get("runs"):
        return []
    mix = room.get("mix") or {}
    assigned, due, high = (mix.get(flag, "?") for flag in ("assign", "due", "priority"))
    lines = ["", f"Commands in a room of {room['tasks']} tasks: `{room['key']}`, opened by `/room open` and "
             f"filled by {room['tasks']} `/task add` ({assigned} assigned, {due} with a due date, {high} "
             "high priority) over HTTP before these runs "
             f"({room['setup_seconds']:.1f} s), {room['members']} members; each request is "
             "the lead's `@Opsroom <command>` in the room's thread, and one answer before and the last "
             "answer after each run were checked at the connector to be the status card or the task "
             "list.", "",
             "| command | clients | req/s | p50 ms | p99 ms | bot CPU ms/request | ok | errors | replies at "
             "connector | CPU % bot / connector / load gen | target |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in room["runs"]:
        cpu, ms = r["cpu_pct"], r["server_cpu_ms_per_request"]
        target = (f"<= {ROOM_CPU_TARGET_MS:g} ms: {_met(ms <= ROOM_CPU_TARGET_MS)}"
                  if r["clients"] == 50 and ms is not None else "-")  # fmt: skip
        lines.append(f"| `{r['command']}` | {r['clients']} | {r['rps']:,.1f} | {r['p50_ms']:.2f} | "
                     f"{r['p99_ms']:.2f} | {_f(ms, 2)} | {r['ok']:,} | {r['errors']} | {r['replies']:,} | "
                     f"{cpu.get('server', 0):.0f} / {cpu.get('connector', 0):.0f} / "
                     f"{cpu.get('load generator', 0):.0f} | {target} |")  # fmt: skip
    return lines


def _idle_rss(results: dict[str, Any], bot: str) -> float | None:
    startup = (results.get("startup") or {}).get(bot)
    if startup:
        return float(statistics.median(startup["rss_idle_mb"]))
    rss = ((results.get("http") or {}).get("rss_mb") or {}).get(bot)
    return float(rss["idle"]) if rss else None


def http_section(http: dict[str, Any]) -> list[str]:
    """Throughput and latency of the three bots, opsroom's ratios, and the harness's own capacity."""
    cfg = http["config"]
    lines = [f"Per run: warm-up {cfg['warmup']} requests, then {cfg['requests']:,} requests or "
             f"{cfg['seconds']:g} s, whichever first. Connector: `{cfg['connector']}`.", "",
             "| clients | bot | req/s | p50 ms | p99 ms | mean ms | max ms | ok | errors | replies at "
             "connector | bot CPU ms/request | CPU % bot / connector / load gen |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in http["runs"]:
        cpu = r["cpu_pct"]
        lines.append(f"| {r['clients']} | {r['target']} | {r['rps']:,.1f} | {r['p50_ms']:.2f} | "
                     f"{r['p99_ms']:.2f} | {r['mean_ms']:.2f} | {r['max_ms']:.1f} | {r['ok']:,} | "
                     f"{r['errors']} | {r['replies']:,} | {_f(r['server_cpu_ms_per_request'], 2)} | "
                     f"{cpu.get('server', 0):.0f} / {cpu.get('connector', 0):.0f} / "
                     f"{cpu.get('load generator', 0):.0f} |")  # fmt: skip
    lines += ["", "| clients | opsroom req/s | echo req/s | opsroom / echo | target | | raw req/s | "
              "opsroom / raw | target | |", "|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for clients in cfg["clients"]:
        ops, echo, raw = (_runs(http, bot, clients) for bot in ("opsroom", "echo", "raw"))
        if not ops:
            continue
        cells = [str(clients), f"{ops['rps']:,.1f}"]
        for ref, factor, label in ((echo, 3.0, "3x"), (raw, 0.3, "0.3x")):
            if ref and ref["rps"]:
                ratio = ops["rps"] / ref["rps"]
                target, met = (label, _met(ratio >= factor)) if clients == 50 else ("-", "")
                cells += [f"{ref['rps']:,.1f}", f"{ratio:.2f}x", target, met]
            else:
                cells += ["-", "-", "-", ""]
        lines.append("| " + " | ".join(cells) + " |")
    lines += room_section(http)
    lines += ["", "The harness alone (the load generator against each connector, with a bot reply as "
              "the body), to show it is not what limits the figures above:", "",
              "| connector | clients | req/s | p50 ms | p99 ms | CPU % connector / load gen |",
              "|---|---|---|---|---|---|"]  # fmt: skip
    for r in http.get("connector_alone", []):
        lines.append(f"| {r['target'].replace(' connector alone', '')} | {r['clients']} | {r['rps']:,.0f} | "
                     f"{r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['cpu_pct'].get('server', 0):.0f} / "
                     f"{r['cpu_pct'].get('load generator', 0):.0f} |")  # fmt: skip
    return lines


def memory_section(results: dict[str, Any]) -> list[str]:
    """Start-up time and resident memory of the bots."""
    lines = ["| bot | start to /healthz, median (min-max) | RSS idle | RSS peak under load | "
             "RSS after load | target |", "|---|---|---|---|---|---|"]  # fmt: skip
    startup = results.get("startup") or {}
    rss = (results.get("http") or {}).get("rss_mb") or {}
    for bot in ("opsroom", "echo", "raw"):
        s = startup.get(bot)
        started = (f"{statistics.median(s['seconds']):.2f} s ({min(s['seconds']):.2f}-"
                   f"{max(s['seconds']):.2f})") if s else "-"  # fmt: skip
        idle = _idle_rss(results, bot)
        m = rss.get(bot, {})
        target = f"< 150 MB idle: {_met(idle < 150)}" if bot == "opsroom" and idle is not None else "-"
        lines.append(f"| {bot} | {started} | {_f(idle)} MB | {_f(m.get('peak_under_load'))} MB | "
                     f"{_f(m.get('after_load'))} MB | {target} |")  # fmt: skip
    return lines


def audit_section(audit: dict[str, Any]) -> list[str]:
    """Durable appends per second."""
    lines = ["| backend | API | writers | signed | events | events/s | target | chain verified after |",
             "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in audit["runs"]:
        signed = r.get("signed", True)
        judged = r["backend"] == "SQLite" and signed
        target = f">= 2,000/s: {_met(r['per_second'] >= 2000)}" if judged else "-"
        lines.append(f"| {r['backend']} | `{r['api']}` | {r['writers']} | {'yes' if signed else 'no'} | "
                     f"{r['events']:,} | {r['per_second']:,.0f} | {target} | "
                     f"{r.get('chain_ok')} |")  # fmt: skip
    for backend, why in audit.get("skipped", {}).items():
        lines.append(f"| {backend} | skipped: {why} | | | | | | |")
    if any(r.get("signed") for r in audit["runs"]):
        lines += ["", "Signed: each committed transaction (a group-commit batch: the whole batch) signed its "
                      "new head with Ed25519, as the running bot does; the check after verified the "
                      "signatures. The unsigned row is the same load without a key: what signing costs."]
    if audit.get("pg_version"):
        lines += ["", f"PostgreSQL server {audit['pg_version']}."]
    return lines


def verify_section(verify: dict[str, Any]) -> list[str]:
    """Chain verification and the /audit query over the big chain."""
    v, q = verify["verify"], verify["queries"]
    built = (f"built in {verify['built_seconds']:.0f} s this run" if verify.get("built_seconds")
             else "taken from the cache")  # fmt: skip
    lines = [f"Chain: {verify['events']:,} events, `{verify['file']}` ({verify['file_mb']:.0f} MB, {built}).",
             "", "| what | runs | min | median | events/s (min) | chain ok | target | |",
             "|---|---|---|---|---|---|---|---|",
             f"| `service.verify` | {v['runs']} | {v['min']:.2f} s | {v['median']:.2f} s | "
             f"{v['per_second']:,.0f} | {v['ok']} | < 5 s | {_met(v['median'] < 5 and v['ok'])} |", "",
             f"Query: `{q['function']}`, the 50 newest events since {q['since']} (7 days before the "
             f"newest event, {q['newest']}):", "",
             "| case | rows | runs | min ms | median ms | target | | SQLite plan |",
             "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for label, c in q["cases"].items():
        plan = "; ".join(c["plan"]).replace("|", "/")
        lines.append(f"| {label} | {c['rows']} | {c['runs']} | {c['min']:.2f} | {c['median']:.2f} | "
                     f"< 100 ms | {_met(c['median'] < 100)} | {plan} |")  # fmt: skip
    return lines


def _measured(results: dict[str, Any], key: str) -> str:
    when = results.get("measured", {}).get(key, results["meta"]["date"])
    others = results.get("others_cpu_pct", {}).get(key)
    busy = f"; meanwhile other processes on the machine used {others:.0f}% of one core" if others else ""
    return f"_Measured {when}{busy}._"


def _contention(results: dict[str, Any]) -> list[str]:
    busy = {k: v for k, v in results.get("others_cpu_pct", {}).items() if v >= 15 and results.get(k)}
    if not busy:
        return []
    parts = ", ".join(f"{k} {v:.0f}%" for k, v in busy.items())
    return [
        f"**The machine was not quiet**: other processes used part of a core while parts ran "
        f"({parts} of one core), so those figures are lower than this machine can do alone.",
        "",
    ]


def odd_section(odd: dict[str, Any]) -> list[str]:
    """Messages built to make text handling backtrack, and /healthz meanwhile (target: within 100 ms)."""
    ok = odd["healthz_max_ms"] <= 100
    size = odd["bytes_each"] // 1024
    return [f"{odd['messages']} messages of {size} KB (runs of `<`, `<at>`, `<a`, `&lt;`, long words, and "
            f"a mention whose text is a backtracking pattern) posted one after another in {odd['seconds']} s,"
            " "
            f"answered {odd['statuses']}; meanwhile `/healthz` was polled {odd['healthz_probes']} times: "
            f"slowest {odd['healthz_max_ms']} ms, p99 {odd['healthz_p99_ms']} ms "
            f"({_met(ok)} target: within 100 ms)."]  # fmt: skip


def render(results: dict[str, Any]) -> str:
    """The whole document."""
    meta = results["meta"]
    out = ["# Performance", "",
           f"_Generated by `make bench` (`python -m bench`{' --quick' if meta.get('quick') else ''}) "
           f"on {meta['date']}. Do not edit by hand: rerun it._", "",
           f"Machine: {meta['cores']} cores ({meta['cpu']}), {meta['memory']}, {meta['os']}; "
           f"Python {meta['python']}; SQLite {meta['sqlite']}; code at `{meta['commit']}`.", "",
           "Packages: " + ", ".join(f"{k} {v}" for k, v in meta["packages"].items()) + ".", "",
           "## Summary", "", *_contention(results), *summary(results), ""]  # fmt: skip
    http_title = "## `/api/messages`: opsroom's full pipeline, the sample echo bot and a raw aiohttp bot"
    parts = (("http", http_title, http_section),
             ("audit", "## Durable audit appends", audit_section),
             ("verify", "## Chain verification and the `/audit` query", verify_section),
             ("policy", "## Policy decisions (Cedar)", policy.section),
             ("digest", "## Daily digest fan-out", digest.section),
             ("query", "## `/audit` pages over the big chain", audit_query.section),
             ("oversight", "## Misuse monitoring", oversight.section),
             ("replicas", "## One audit chain, several replicas", replicas.section),
             ("odd", "## Pathological input and /healthz", odd_section))  # fmt: skip
    for key, title, render_part in parts:
        if results.get(key):
            out += [title, "", _measured(results, key), "", *render_part(results[key]), ""]
    if results.get("startup") or results.get("http"):
        out += ["## Start-up and memory", "",
                "Start-up: from starting the process to `/healthz` answering 200 (polled every 10 ms), "
                "median of 3. RSS: VmRSS from /proc, idle 1 s after start-up (median of 3 starts), "
                "peak sampled every 0.2 s during the load runs above, and 1 s after them.", "",
                _measured(results, "startup") if results.get("startup") else "", "",
                *memory_section(results), ""]  # fmt: skip
    out += [NOTES, HOW_TO]
    return "\n".join(out)
