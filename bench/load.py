"""Part 1: /api/messages throughput and latency, opsroom next to the sample echo bot and a raw aiohttp bot.

The load generator is a closed loop: `clients` workers share one aiohttp
keep-alive pool and each sends its next request as soon as the previous answer
arrived, until the request count or the time limit is reached. A request counts
when its HTTP response has arrived; every bot sends its reply to the connector
before answering, and the connector's count is checked against the answers.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from bench import procs, rooms
from tests import fixtures

FIXTURE = "channel_message_mention"
TEXT = "/help"
_ID = "BENCH-ACTIVITY-ID"


@dataclass(frozen=True)
class LoadConfig:
    """How much load each measured run gets."""

    requests: int = 2000
    seconds: float = 10.0
    warmup: int = 200
    clients: tuple[int, ...] = (1, 50)
    connector: str = "fake"
    connector_seconds: float = 3.0


@dataclass
class RunResult:
    """One measured run against one target at one concurrency."""

    target: str
    clients: int
    ok: int = 0
    errors: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    rps: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    mean_ms: float = 0.0
    max_ms: float = 0.0
    replies: int | None = None
    cpu_pct: dict[str, float] = field(default_factory=dict)
    rss_peak_mb: float | None = None
    server_cpu_ms_per_request: float | None = None


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list (0 when empty)."""
    if not sorted_values:
        return 0.0
    rank = max(1, min(len(sorted_values), round(q / 100 * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]


def activity_maker(service_url: str, body: dict[str, Any] | None = None) -> Callable[[], bytes]:
    """A function returning the Teams channel message `@Opsroom /help` (or `body`), a new id each call."""
    body = fixtures.load(FIXTURE, service_url=service_url, text=TEXT) if body is None else body
    template = json.dumps({**body, "id": _ID})
    head, tail = template.split(_ID, 1)
    if _ID in tail:
        raise RuntimeError("activity id placeholder appears twice")
    return lambda: f"{head}{uuid.uuid4()}{tail}".encode()


def reply_maker(conversation: str) -> tuple[str, Callable[[], bytes]]:
    """(path, body) of a bot's reply as a connector receives it: for timing the connector alone."""
    path = f"v3/conversations/{conversation}/activities/1700000000000"
    body = json.dumps({"type": "message", "text": "Echo: /help", "textFormat": "markdown",
                       "conversation": {"id": conversation}, "replyToId": "1700000000000",
                       "from": {"id": fixtures.BOT_ID},
                       "recipient": {"id": fixtures.OFFICER_ID}})  # fmt: skip
    return path, body.encode


async def drive(url: str, make: Callable[[], bytes], clients: int, requests: int, seconds: float,
                watch_pid: int | None = None) -> RunResult:  # fmt: skip
    """Closed-loop load: up to `requests` POSTs or `seconds`, whichever ends first."""
    result = RunResult(target=url, clients=clients)
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    issued = itertools.count()
    headers = {"Content-Type": "application/json"}
    peak = [0.0]

    async def sample_rss() -> None:
        while watch_pid is not None:
            peak[0] = max(peak[0], procs.rss_mb(watch_pid))
            await asyncio.sleep(0.2)

    conn = aiohttp.TCPConnector(limit=clients, limit_per_host=clients)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=conn, timeout=timeout) as http:
        deadline = time.perf_counter() + seconds

        async def worker() -> None:
            while next(issued) < requests and time.perf_counter() < deadline:
                body = make()
                start = time.perf_counter()
                try:
                    async with http.post(url, data=body, headers=headers) as response:
                        await response.read()
                        status = str(response.status)
                except (aiohttp.ClientError, TimeoutError) as exc:
                    status = type(exc).__name__
                latencies.append(time.perf_counter() - start)
                statuses[status] += 1

        sampler = asyncio.create_task(sample_rss())
        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        result.seconds = time.perf_counter() - began
        sampler.cancel()
    latencies.sort()
    result.statuses = dict(statuses)
    result.ok = sum(n for s, n in statuses.items() if s.startswith("2"))
    result.errors = len(latencies) - result.ok
    result.rps = result.ok / result.seconds if result.seconds else 0.0
    result.p50_ms = percentile(latencies, 50) * 1000
    result.p99_ms = percentile(latencies, 99) * 1000
    result.mean_ms = sum(latencies) / len(latencies) * 1000 if latencies else 0.0
    result.max_ms = latencies[-1] * 1000 if latencies else 0.0
    result.rss_peak_mb = round(peak[0], 1) if watch_pid is not None else None
    return result


def measure(target: str, url: str, make: Callable[[], bytes], clients: int, cfg: LoadConfig,
            server_pid: int, connector: procs.Connector | None) -> RunResult:  # fmt: skip
    """Warm up, then one measured run, with CPU use of every process and the reply check."""
    warm = max(clients, cfg.warmup)
    asyncio.run(drive(url, make, clients, warm, cfg.seconds))
    pids = {"server": server_pid} | ({"connector": connector.pid} if connector else {})
    replies_before = connector.activities() if connector else 0
    cpu_before = {name: procs.cpu_seconds(pid) for name, pid in pids.items()}
    own_before = time.process_time()
    result = asyncio.run(drive(url, make, clients, cfg.requests, cfg.seconds, watch_pid=server_pid))
    wall = result.seconds
    result.cpu_pct = {name: round((procs.cpu_seconds(pid) - cpu_before[name]) / wall * 100, 1)
                      for name, pid in pids.items()}  # fmt: skip
    if result.ok:
        spent = procs.cpu_seconds(server_pid) - cpu_before["server"]
        result.server_cpu_ms_per_request = round(spent / result.ok * 1000, 2)
    result.cpu_pct["load generator"] = round((time.process_time() - own_before) / wall * 100, 1)
    if connector is not None:
        # Replies are sent before the response: by now every one has arrived.
        result.replies = connector.activities() - replies_before
    result.target = target
    return result


def connector_alone(impl: str, cfg: LoadConfig) -> list[dict[str, Any]]:
    """The connector by itself, taking bot replies as fast as the load generator can send them."""
    runs = []
    quick = LoadConfig(requests=10**9, seconds=cfg.connector_seconds, warmup=min(cfg.warmup, 200))
    with procs.Connector(impl) as connector:
        path, make = reply_maker(fixtures.THREAD_CONVERSATION_ID.replace(";", "%3B"))
        for clients in cfg.clients:
            run = measure(f"{impl} connector alone", connector.url + path, make, clients, quick,
                          connector.pid, None)  # fmt: skip
            runs.append(asdict(run))
    return runs


def run_room(cfg: LoadConfig, ops: procs.Server, connector: procs.Connector) -> dict[str, Any]:
    """`/room status` and `/task list` typed by the lead in a room of 50 tasks, on the opsroom server the
    `/help` runs loaded; each answer checked at the connector before and after its measured run."""
    room = rooms.set_up(ops.url, connector)
    print(f"  room {room.key}: opened, 3 members, {room.tasks} tasks added over HTTP in "
          f"{room.setup_seconds:.1f} s", flush=True)  # fmt: skip
    out: dict[str, Any] = {"key": room.key, "tasks": room.tasks, "members": 3, "mix": room.mix,
                           "setup_seconds": room.setup_seconds, "runs": []}  # fmt: skip
    url = f"{ops.url}/api/messages"
    for clients in cfg.clients:
        for command in rooms.COMMANDS:
            make = activity_maker(connector.url, rooms.request(connector.url, command, room))
            probe = asyncio.run(drive(url, make, 1, 1, cfg.seconds))
            if probe.ok != 1:
                raise RuntimeError(f"{command} in {room.key}: the bot answered {probe.statuses}")
            answer = rooms.check(command, room, connector)
            run = measure(f"opsroom {command}", url, make, clients, cfg, ops.pid, connector)
            rooms.check(command, room, connector)  # the run's own last answer, too
            out["runs"].append({"command": command, "answer": answer, **asdict(run)})
            print(f"  {command:13} {clients:3} clients: {run.rps:8.1f} req/s  p50 {run.p50_ms:6.2f} ms  "
                  f"p99 {run.p99_ms:6.2f} ms  bot CPU {run.server_cpu_ms_per_request} ms/request  "
                  f"ok {run.ok} err {run.errors} replies {run.replies}  cpu {run.cpu_pct}",
                  flush=True)  # fmt: skip
            if run.replies != run.ok or run.errors:
                print(f"  !! {command}: {run.errors} errors {run.statuses}; the connector received "
                      f"{run.replies} replies for {run.ok} answered requests", flush=True)  # fmt: skip
    return out


def run_http(cfg: LoadConfig, work: Path) -> dict[str, Any]:
    """The three bots side by side: idle RSS, then each concurrency against raw, echo, then opsroom; then
    opsroom alone with commands in a room of 50 tasks (`run_room`)."""
    database_url = f"sqlite:///{work / 'opsroom-http.db'}"
    procs.migrate(database_url, work / "migrate.log")
    out: dict[str, Any] = {"config": asdict(cfg), "runs": [], "rss_mb": {}}
    with procs.Connector(cfg.connector) as connector, procs.raw_server(work) as raw, \
            procs.echo_server(work) as echo, procs.opsroom_server(database_url, work) as ops:  # fmt: skip
        servers = {"raw": raw, "echo": echo, "opsroom": ops}
        for server in servers.values():
            server.wait_ready()
        time.sleep(1.0)
        for name, server in servers.items():
            out["rss_mb"][name] = {"idle": round(procs.rss_mb(server.pid), 1)}
        make = activity_maker(connector.url)
        for clients in cfg.clients:
            for name, server in servers.items():
                run = measure(name, f"{server.url}/api/messages", make, clients, cfg, server.pid, connector)
                out["runs"].append(asdict(run))
                print(f"  {name:8} {clients:3} clients: {run.rps:8.1f} req/s  p50 {run.p50_ms:6.2f} ms  "
                      f"p99 {run.p99_ms:6.2f} ms  ok {run.ok} err {run.errors} replies {run.replies}  "
                      f"cpu {run.cpu_pct}", flush=True)  # fmt: skip
                if run.replies != run.ok:
                    print(f"  !! {name}: the connector received {run.replies} replies for {run.ok} "
                          f"answered requests", flush=True)  # fmt: skip
        time.sleep(1.0)
        for name, server in servers.items():
            out["rss_mb"][name]["after_load"] = round(procs.rss_mb(server.pid), 1)
            peaks = [r["rss_peak_mb"] or 0.0 for r in out["runs"] if r["target"] == name]
            out["rss_mb"][name]["peak_under_load"] = max(peaks, default=0.0)
        out["room"] = run_room(cfg, ops, connector)
    out["connector_alone"] = []
    for impl in ("fast", "fake"):
        out["connector_alone"] += connector_alone(impl, cfg)
        for run in out["connector_alone"][-len(cfg.clients) :]:
            print(f"  {run['target']:24} {run['clients']:3} clients: {run['rps']:8.1f} req/s  "
                  f"cpu {run['cpu_pct']}", flush=True)  # fmt: skip
    return out
