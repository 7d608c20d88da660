"""Serving and stopping: the request id and in-flight count of every HTTP request, and graceful shutdown.

Shutdown (SIGTERM or SIGINT to `python -m bot serve`), bounded by OPSROOM_SHUTDOWN_TIMEOUT in all:

1. At once: /readyz answers 503 "shutting down" and new /api/messages requests 503 with Retry-After (the
   Bot Connector sends them again, to another replica); the scheduler starts no more runs.
2. After OPSROOM_SHUTDOWN_DRAIN_SECONDS (0 by default) the listening socket closes.
3. Together, until the deadline (less a reserve for what follows): requests in flight finish (their audit
   commit and reply), scheduler runs in flight finish, and the outbox sender finishes its posts in flight
   and gives back every row it holds (pending again, so another replica takes them now, not after the
   lease). What is still running at the deadline is cancelled: each unit of work is one transaction, so
   it is committed or rolled back, never half.
4. aiohttp closes the connections; the app's cleanup writes what is left (delivery marks, rejection
   summaries) and closes the clients; the database closes last.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import signal
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from aiohttp import web

from bot.logs import new_request_id, request_id
from bot.metrics import METRICS

log = logging.getLogger(__name__)

RESERVE = 2.0
"""Seconds of the shutdown budget kept for giving rows back, final writes and closing the database."""
RETRY_AFTER = "5"
"""Seconds a request refused during shutdown is told to wait (another replica will take it)."""
QUIET = frozenset({"/healthz", "/readyz", "/metrics"})
"""Probes and scrapes: not logged per request (they come every few seconds)."""
_UPSTREAM = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_TRACEPARENT = re.compile(r"[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}")


class Lifecycle:
    """Whether the app is stopping, and the requests it is still serving."""

    def __init__(self, timeout: float = 25.0) -> None:
        self.timeout = timeout
        self.stopping = False
        self.deadline: float | None = None
        self._inflight = 0
        self._idle: asyncio.Event | None = None

    def begin(self) -> bool:
        """Shutdown starts now (False if it had already begun)."""
        if self.stopping:
            return False
        self.stopping = True
        self.deadline = time.monotonic() + self.timeout
        log.info("shutting down: finishing %d requests in flight within %g s", self._inflight, self.timeout)
        return True

    def remaining(self, reserve: float = 0.0) -> float:
        """Seconds left of the shutdown budget, less reserve (the whole budget before shutdown began)."""
        left = self.timeout if self.deadline is None else self.deadline - time.monotonic()
        return max(0.0, left - reserve)

    @property
    def inflight(self) -> int:
        """Requests being served now."""
        return self._inflight

    @contextlib.contextmanager
    def track(self) -> Iterator[None]:
        """Count one request in flight for its lifetime."""
        self._inflight += 1
        try:
            yield
        finally:
            self._inflight -= 1
            if self._inflight == 0 and self._idle is not None:
                self._idle.set()

    async def idle(self, timeout: float) -> bool:
        """Wait up to timeout for the requests in flight to finish; True when none is left."""
        if self._inflight == 0:
            return True
        self._idle = asyncio.Event()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), max(0.0, timeout))
        return self._inflight == 0


LIFECYCLE = web.AppKey("lifecycle", Lifecycle)
Hook = Callable[[], Awaitable[Any]]
ON_STOPPING = web.AppKey("on_stopping", list[Callable[[], None]])
"""Called as shutdown begins (the scheduler starts no more runs)."""
DRAIN = web.AppKey("drain", list[Hook])
"""Awaited together with the requests in flight, until the deadline (scheduler runs, the outbox sender)."""


def upstream_ids(request: web.BaseRequest) -> dict[str, str]:
    """A caller's own request id and trace id, logged beside ours (never used as ours: unauthenticated, and
    not unique per request)."""
    found = {}
    given = request.headers.get("X-Request-Id", "")
    if _UPSTREAM.fullmatch(given):
        found["upstream_request_id"] = given
    trace = _TRACEPARENT.fullmatch(request.headers.get("traceparent", "").strip().lower())
    if trace:
        found["trace_id"] = trace.group(1)
    return found


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def request_context(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every request: a fresh id (logs, the X-Request-Id header, its audit event), counted while in flight;
    while shutting down, a new message is refused with 503."""
    rid = new_request_id()
    token = request_id.set(rid)
    lifecycle = request.app[LIFECYCLE]
    started = time.perf_counter()
    status = 500
    try:
        if lifecycle.stopping and request.path == "/api/messages":
            metrics = request.app.get(METRICS)
            if metrics is not None:
                metrics.request("shutting_down", "http")
            response: web.StreamResponse = web.json_response(
                {"error": "shutting down"}, status=503, headers={"Retry-After": RETRY_AFTER})
        else:
            with lifecycle.track():
                response = await handler(request)
        status = response.status
        response.headers["X-Request-Id"] = rid
        return response
    except web.HTTPException as exc:
        status = exc.status
        exc.headers["X-Request-Id"] = rid
        raise
    finally:
        if request.path not in QUIET:
            took = round((time.perf_counter() - started) * 1000, 1)
            log.info("%s %s %s", request.method, request.path, status,
                     extra={"status": status, "duration_ms": took, **upstream_ids(request)})  # fmt: skip
        request_id.reset(token)


def begin_shutdown(app: web.Application) -> None:
    """From now on readiness fails, new messages are refused and the scheduler starts nothing."""
    if app[LIFECYCLE].begin():
        metrics = app.get(METRICS)
        if metrics is not None:
            metrics.shutting_down.set(1)
        for stopping in app.get(ON_STOPPING, []):
            stopping()


async def drain_work(app: web.Application) -> None:
    """Wait for the requests in flight and the app's own work (DRAIN), together, until the deadline less
    the reserve. Safe to call again: what has stopped returns at once."""
    begin_shutdown(app)
    lifecycle = app[LIFECYCLE]
    budget = lifecycle.remaining(RESERVE)
    hooks = [hook() for hook in app.get(DRAIN, [])]
    finished, *rest = await asyncio.gather(lifecycle.idle(budget), *hooks, return_exceptions=True)
    if finished is not True:
        log.warning("shutdown: %d requests still in flight after %.1f s", lifecycle.inflight, budget)
    for failed in rest:
        if isinstance(failed, BaseException):
            log.error("shutdown: a part failed to stop: %s", type(failed).__name__, exc_info=failed)


def watchdog(seconds: float) -> None:
    """Exit the process (status 1) if shutdown has not finished in `seconds`: the deadline is a promise to
    the orchestrator, which would otherwise kill it at a moment of its own choosing. A thread, so that it
    fires even if the event loop is stuck."""

    def fire() -> None:
        log.error("shutdown did not finish within %.0f s: exiting now", seconds)
        logging.shutdown()
        os._exit(1)

    timer = threading.Timer(seconds, fire)
    timer.daemon = True
    timer.start()


async def serve(app: web.Application, *, host: str, port: int, drain: float = 0.0, **options: Any) -> None:
    """Run app on host:port until SIGTERM or SIGINT, then shut it down gracefully (the module docstring).

    Instead of web.run_app, whose signal handler closes the listening socket before anything else runs:
    here readiness fails first, and the work in flight drains under one deadline before aiohttp's own
    cleanup (given a second for stragglers, which it then cancels).
    """
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=1.0, **options)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await stop.wait()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        log.info("signal received: shutting down")
        begin_shutdown(app)
        lifecycle = app[LIFECYCLE]
        watchdog(lifecycle.timeout + RESERVE)
        if drain:
            await asyncio.sleep(min(drain, lifecycle.remaining(RESERVE)))
        await site.stop()  # no new connections; requests in flight keep theirs
        await drain_work(app)
    finally:
        await runner.cleanup()
