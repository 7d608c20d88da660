"""Prometheus metrics (`opsroom_*`), one registry per Runtime, served at GET /metrics.

Each app gets its own CollectorRegistry rather than prometheus_client's global one: tests and
benchmarks build several apps in one process, and the same metric names registered twice in the
global registry would raise. Counters are incremented in bot/ from what core returns (core never
imports prometheus). The outbox gauges are read from the database when /metrics is scraped, on the
read-only path (one indexed count), so they are what the store holds, whichever replica sent what.

Where /metrics is served: OPSROOM_METRICS_PORT=0 (the default) on the bot's own port; any other port
gives it a listener of its own on OPSROOM_METRICS_HOST (and the main port no longer serves it), for
deployments whose main port the internet can reach.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from core.db import Database
from core.outbox import service as outbox

T = TypeVar("T")

log = logging.getLogger(__name__)

APPEND_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


def family(action: str | None) -> str:
    """An action's family for a label (`task.list` -> `task`): a few dozen values at most."""
    return (action or "unknown").split(".", 1)[0][:32] or "unknown"


class Metrics:
    """The metrics of one app (see the module docstring)."""

    def __init__(self, db: Database | None = None, *, clock: Callable[[], datetime] | None = None) -> None:
        self.db = db
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}
        self.clock = clock or (lambda: datetime.now(UTC))
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "opsroom_requests", "Activities POSTed to /api/messages, by outcome (the audit event's outcome, "
            "or rejected/unauthorized/unavailable before the bot) and action family", ["outcome", "family"],
            registry=r)  # fmt: skip
        self.decisions = Counter(
            "opsroom_policy_decisions", "Enforcement decisions of the policy (one per command that reached "
            "the authorise step, and the visibility check of a named thing), by deciding rule and decision",
            ["rule", "decision"], registry=r)  # fmt: skip
        self.audit_append = Histogram(
            "opsroom_audit_append_seconds", "Time of the group-writer commit that appends a request's audit "
            "event (queueing, the batch and its fsync), by path: request, step, duplicate, rejection",
            ["path"], buckets=APPEND_BUCKETS, registry=r)  # fmt: skip
        self.outbox_depth = Gauge("opsroom_outbox_depth", "Outbox messages not yet delivered (pending or "
                                  "being sent), read from the database at scrape time",
                                  registry=r)  # fmt: skip
        self.outbox_age = Gauge("opsroom_outbox_oldest_age_seconds", "Age of the oldest outbox message not "
                                "yet delivered (0 when none), read at scrape time", registry=r)  # fmt: skip
        self.outbox_up = Gauge("opsroom_outbox_scrape_ok", "1 when the outbox gauges were read from the "
                               "database at this scrape, 0 when the read failed", registry=r)  # fmt: skip
        self.deliveries = Counter(
            "opsroom_outbox_deliveries", "Outbox posts settled by this process, by outcome: sent, retried "
            "(412/5xx/no answer), throttled (429, retried), failed, dead, blocked, lost (taken over)",
            ["outcome"], registry=r)  # fmt: skip
        self.throttled = Counter("opsroom_connector_429", "HTTP 429 answers from the Bot Connector to "
                                 "outbox posts", registry=r)  # fmt: skip
        self.retries = Counter("opsroom_outbox_retries", "Outbox posts put back to be tried again (429 "
                               "and transient failures)", registry=r)  # fmt: skip
        self.released = Counter("opsroom_outbox_released", "Claimed outbox rows given back unsent (at "
                                "shutdown, or behind a retried row)", registry=r)  # fmt: skip
        self.digests = Counter("opsroom_digests", "Room digests this process claimed, by outcome: queued "
                               "(sent to the outbox) or skipped (missed while down)", ["outcome"],
                               registry=r)  # fmt: skip
        self.alerts = Counter("opsroom_alerts", "Misuse alerts raised by this process's monitor, by rule "
                              "and outcome: queued, muted, no_target", ["rule", "outcome"],
                              registry=r)  # fmt: skip
        self.jobs = Counter("opsroom_jobs", "Scheduler job runs, by job and outcome (ok, error)",
                            ["job", "outcome"], registry=r)  # fmt: skip
        self.shutting_down = Gauge("opsroom_shutting_down", "1 once graceful shutdown has begun",
                                   registry=r)  # fmt: skip

    def request(self, outcome: str, action: str | None) -> None:
        """Count one activity by its outcome."""
        self.child(self.requests, outcome[:32], family(action)).inc()

    def decision(self, rule: str | None, allowed: bool) -> None:
        """Count one enforcement decision (no rule: the default deny)."""
        self.child(self.decisions, (rule or "default-deny")[:128], "allow" if allowed else "deny").inc()

    def child(self, metric: T, *values: str) -> T:
        """`metric.labels(*values)`, looked up once per set of values (labels() checks and locks each
        time; these are counted on every request). Values are few: rules, outcomes, families."""
        key = (id(metric), values)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*values)  # type: ignore[attr-defined]
        return cast(T, found)

    def delivered(self, outcome: str, count: int = 1) -> None:
        """Count settled outbox posts (retries and 429s are counted here too)."""
        self.deliveries.labels(outcome=outcome).inc(count)
        if outcome in ("retried", "throttled"):
            self.retries.inc(count)

    async def refresh(self) -> None:
        """Read the outbox gauges from the database (one read-only transaction)."""
        if self.db is None:
            return
        now = self.clock()
        try:
            count, age = await self.db.run(lambda s: outbox.depth(session=s, now=now), readonly=True)
        except Exception as exc:  # the scrape still answers: the counters are in memory
            log.warning("metrics: could not read the outbox depth: %s", type(exc).__name__)
            self.outbox_up.set(0)
            return
        self.outbox_depth.set(count)
        self.outbox_age.set(age)
        self.outbox_up.set(1)

    async def exposition(self) -> bytes:
        """The text exposition of every metric, the outbox gauges read now."""
        await self.refresh()
        return generate_latest(self.registry)


async def serve_metrics(metrics: Metrics) -> web.Response:
    """GET /metrics: Prometheus' text format."""
    body = await metrics.exposition()
    response = web.Response(body=body)
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response


METRICS = web.AppKey("metrics", Metrics)


class Listener:
    """/metrics on a port of its own (OPSROOM_METRICS_PORT > 0), beside the bot's main site."""

    def __init__(self, metrics: Metrics, host: str, port: int) -> None:
        self.metrics, self.host, self.port = metrics, host, port
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        """Bind and serve; raises OSError when the port is taken."""
        app = web.Application()

        async def handler(request: web.Request) -> web.Response:
            return await serve_metrics(self.metrics)

        app.router.add_get("/metrics", handler)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()
        log.info("metrics on http://%s:%s/metrics", self.host, self.port)

    async def stop(self) -> None:
        """Close the listener."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
