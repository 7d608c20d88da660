"""The aiohttp application, built by create_app(settings): /api/messages, /healthz, /readyz, /metrics."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp import web
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from botbuilder.core import TurnContext
from botbuilder.integration.aiohttp import CloudAdapter
from botbuilder.schema import Activity

from bot import intake
from bot.access import AccessTick, connector_groups
from bot.activity_json import activity_from_json
from bot.auth import AuthUnavailable, GuardedAuthentication, build_authentication
from bot.config import Settings
from bot.digests import DigestTick
from bot.facts import loaders
from bot.graph import GraphClient
from bot.handler import OpsroomBot
from bot.identity import Identity
from bot.metrics import METRICS, Listener, Metrics, serve_metrics
from bot.outbound import Outbound
from bot.outbox_http import ConnectorPost, connector_for
from bot.oversight import OversightTick
from bot.pipeline import Pipeline
from bot.policy_actions import required_actions
from bot.rejections import RejectionLog
from bot.replies import Replies
from bot.scheduler import Jobs, build_scheduler
from bot.sender import OutboxSender
from bot.serving import DRAIN, LIFECYCLE, ON_STOPPING, RESERVE, Hook, Lifecycle, drain_work, request_context
from core import schema
from core.db import Database
from core.oversight.rules import Rules
from core.rooms.templates import load_templates
from dialogs.commands import build_router
from dialogs.registry import Router
from policies import Policy

log = logging.getLogger(__name__)

MAX_BODY = 256 * 1024
BODY_TIMEOUT = 10.0
"""Seconds a request body may take to arrive (a slow sender must not hold a connection forever)."""
HEADER_TIMEOUT = 15.0
"""Seconds a connection may stay open without a complete request: aiohttp's keep-alive timer also
runs from the moment a connection opens until its request's headers have all arrived, so it is the
header timeout too (aiohttp's default, 75 s, lets a slow sender hold a connection far longer)."""
SERVER_OPTIONS: dict[str, Any] = {"keepalive_timeout": HEADER_TIMEOUT}
"""How the HTTP server is run (python -m bot serve, and the tests' server)."""


@dataclass
class Runtime:
    """Everything built once per process: the one place that creates adapter and clients."""

    settings: Settings
    db: Database
    auth: GuardedAuthentication
    adapter: CloudAdapter
    bot: OpsroomBot
    graph: GraphClient | None
    owns_db: bool
    outbound: Outbound
    """Pooled connector/user-token clients, credentials and tokens, and the one outbound HTTP session."""
    sender: OutboxSender
    """Delivers the outbox after commit: every post that is not a direct reply."""
    pipeline: Pipeline
    rejections: RejectionLog
    """Requests refused before the bot: audited per source and minute."""
    rules: Rules
    """The misuse rules the monitor runs (OPSROOM_OVERSIGHT_FILE)."""
    metrics: Metrics
    """This app's Prometheus registry and metrics (bot/metrics.py)."""


RUNTIME = web.AppKey("runtime", Runtime)
SCHEDULER = web.AppKey("scheduler", AsyncIOScheduler)
DIGESTS = web.AppKey("digests", DigestTick)
ACCESS = web.AppKey("access", AccessTick)
OVERSIGHT = web.AppKey("oversight", OversightTick)
JOBS = web.AppKey("jobs", Jobs)
METRICS_LISTENER = web.AppKey("metrics_listener", Listener)


def build_runtime(
    settings: Settings,
    db: Database | None = None,
    router: Router | None = None,
    clock: Callable[[], datetime] | None = None,
) -> Runtime:
    """Database, authentication, adapter, pipeline and bot, wired together.

    Raises TemplateError (naming file and field) when a room template is invalid, PolicyError
    (naming file and line) when the policy is malformed or leaves one of the bot's actions unmentioned,
    and RulesError (naming file, rule and key) when the misuse rules are.
    """
    templates = load_templates(*settings.template_dirs())
    rules = settings.oversight_rules()
    database = db or Database(settings.database_url)
    outbound = Outbound()
    auth = build_authentication(settings, outbound)
    adapter = CloudAdapter(auth)

    async def on_turn_error(context: TurnContext, error: Exception) -> None:
        # The pipeline records and answers handler errors itself; reaching here means
        # the audit store could not be written, so the request must fail (Teams retries).
        log.error("turn failed outside the pipeline: %s", type(error).__name__, exc_info=error)
        raise error

    adapter.on_turn_error = on_turn_error
    graph = GraphClient(settings.graph) if settings.graph.configured else None
    identity = Identity(settings, graph)
    commands = router or build_router(rules)
    policy = Policy.load(Path(settings.policy_file) if settings.policy_file else None)
    policy.check_actions(required_actions(commands))
    now = clock or (lambda: datetime.now(UTC))
    metrics = Metrics(database, clock=now)
    # The sender reads the same clock the pipeline stamps outbox rows with.
    post = ConnectorPost(outbound, connector_for(auth, settings.app_id or None))
    sender = OutboxSender(database, post, clock=now, metrics=metrics)
    pipeline = Pipeline(db=database, identity=identity, router=commands, policy=policy,
                        loaders=loaders(database), clock=now, after_commit=sender.wake,
                        metrics=metrics, replies=Replies(outbound))  # fmt: skip
    bot = OpsroomBot(pipeline, graph=graph, templates=templates, timezone=settings.timezone,
                     guest_max_days=settings.guest_max_days)
    return Runtime(settings, database, auth, adapter, bot, graph, owns_db=db is None, outbound=outbound,
                   sender=sender, pipeline=pipeline, rejections=RejectionLog(database, metrics=metrics),
                   rules=rules, metrics=metrics)  # fmt: skip


def create_app(
    settings: Settings,
    *,
    db: Database | None = None,
    router: Router | None = None,
    clock: Callable[[], datetime] | None = None,
) -> web.Application:
    """The web application; db, router and clock may be supplied (tests, benchmarks)."""
    app = web.Application(client_max_size=MAX_BODY, middlewares=[request_context])
    runtime = app[RUNTIME] = build_runtime(settings, db, router, clock)
    app[LIFECYCLE] = Lifecycle(settings.shutdown_timeout)
    app[METRICS] = runtime.metrics
    app.router.add_post("/api/messages", messages)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    if not settings.metrics_port:  # else a listener of its own, started with the app
        app.router.add_get("/metrics", metrics_endpoint)
    app.on_startup.append(_startup)
    app.on_cleanup.append(_cleanup)
    return app


async def _startup(app: web.Application) -> None:
    runtime = app[RUNTIME]
    await runtime.outbound.start()  # the shared aiohttp session must be made inside the running loop
    await runtime.sender.start()
    await runtime.rejections.start()
    settings, lifecycle = runtime.settings, app[LIFECYCLE]
    if settings.metrics_port:
        listener = Listener(runtime.metrics, settings.metrics_host or settings.host, settings.metrics_port)
        await listener.start()
        app[METRICS_LISTENER] = listener
    digests = app[DIGESTS] = DigestTick(runtime.db, runtime.pipeline.policy, clock=runtime.pipeline.clock,
                                        grace_until=runtime.settings.digest_grace_until,
                                        wake=runtime.sender.wake, metrics=runtime.metrics)  # fmt: skip
    groups = connector_groups(connector_for(runtime.auth, runtime.settings.app_id or None))
    access = app[ACCESS] = AccessTick(runtime.db, graph=runtime.graph, group_of=groups,
                                      clock=runtime.pipeline.clock, wake=runtime.sender.wake)  # fmt: skip
    jobs = app[JOBS] = Jobs(runtime.metrics)
    scheduler = build_scheduler(runtime.db, keep_days=runtime.settings.dedupe_days,
                                clock=runtime.pipeline.clock, wake=runtime.sender.wake,
                                digests=digests.run, access=access.run, jobs=jobs)  # fmt: skip
    oversight = app[OVERSIGHT] = OversightTick.build(
        runtime.db, runtime.rules, timezone=runtime.settings.timezone, clock=runtime.pipeline.clock,
        wake=runtime.sender.wake, metrics=runtime.metrics)  # fmt: skip
    every = runtime.settings.oversight_seconds  # the misuse monitor: every few seconds, first after one wait
    scheduler.add_job(jobs.wrap("oversight", oversight.run), "interval", seconds=every, id="oversight",
                      coalesce=True, max_instances=1, misfire_grace_time=every,
                      next_run_time=datetime.now(UTC) + timedelta(seconds=every))  # fmt: skip
    scheduler.start()
    app[SCHEDULER] = scheduler

    def stop_scheduling() -> None:
        jobs.closed = True  # a run the scheduler starts from now on returns at once
        if scheduler.running:
            scheduler.shutdown(wait=False)

    app[ON_STOPPING] = [stop_scheduling]
    # Scheduler runs and the sender drain beside the requests in flight; the sender gets a second less, to
    # give back what it holds before the deadline.
    async def runs() -> bool:
        return await jobs.wait(lifecycle.remaining(RESERVE))

    async def sender() -> None:
        await runtime.sender.stop(timeout=lifecycle.remaining(RESERVE + 1))

    drains: list[Hook] = [runs, sender]
    app[DRAIN] = drains
    if not runtime.settings.home_domains and runtime.graph is None:
        log.warning("neither OPSROOM_HOME_DOMAINS nor Microsoft Graph is configured: nobody can be confirmed "
                    "an officer, so everyone is treated as a guest")  # fmt: skip
    if runtime.settings.local_mode:
        log.warning(
            "LOCAL MODE: MicrosoftAppId is not set, so requests to /api/messages are NOT "
            "authenticated. Never expose this instance; set MicrosoftAppId and "
            "MicrosoftAppPassword to connect it to Teams."
        )
    else:
        await runtime.auth.prefetch()


async def _cleanup(app: web.Application) -> None:
    """Stop in order (bot/serving.py): the work in flight drains, the last writes are made, clients close,
    and the database last."""
    runtime = app[RUNTIME]
    await drain_work(app)  # at once when serving.serve already drained
    if SCHEDULER in app and app[SCHEDULER].running:
        app[SCHEDULER].shutdown(wait=False)
    await runtime.pipeline.close()
    await runtime.rejections.stop()
    await runtime.sender.stop(timeout=app[LIFECYCLE].remaining())
    if METRICS_LISTENER in app:
        await app[METRICS_LISTENER].stop()
    await runtime.outbound.close()
    if runtime.graph is not None:
        await runtime.graph.close()
    if runtime.owns_db:
        await asyncio.to_thread(runtime.db.close)


async def healthz(request: web.Request) -> web.Response:
    """The process is alive."""
    return web.json_response({"status": "alive"})


async def readyz(request: web.Request) -> web.Response:
    """The database answers and its schema is at the code's head revision; 503 once shutdown has begun."""
    if request.app[LIFECYCLE].stopping:
        return web.json_response({"status": "unavailable", "reason": "shutting down"}, status=503)
    db = request.app[RUNTIME].db
    try:
        await db.ping()
        current = await asyncio.to_thread(schema.current_revision, db)
    except Exception as exc:
        return web.json_response({"status": "unavailable", "reason": type(exc).__name__}, status=503)
    head = schema.head_revision()
    if current != head:
        reason = f"database at revision {current}, code expects {head}: run `python -m bot db upgrade`"
        return web.json_response({"status": "unavailable", "reason": reason}, status=503)
    return web.json_response({"status": "ready", "revision": current})


async def metrics_endpoint(request: web.Request) -> web.Response:
    """Prometheus metrics, text format (when OPSROOM_METRICS_PORT is 0)."""
    return await serve_metrics(request.app[METRICS])


async def messages(request: web.Request) -> web.StreamResponse:
    """The Bot Framework messaging endpoint."""
    runtime = request.app[RUNTIME]
    if request.content_type != "application/json":
        return await _reject(request, 415, "content type must be application/json")
    if request.content_length is not None and request.content_length > MAX_BODY:
        return await _reject(request, 413, "body over 256 KiB")
    try:
        async with asyncio.timeout(BODY_TIMEOUT):
            body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        return await _reject(request, 413, "body over 256 KiB")
    except TimeoutError:
        return await _reject(request, 408, f"body not received within {BODY_TIMEOUT:g} s")
    try:
        data = intake.parse(body)
        activity = activity_from_json(data)  # the SDK's Activity without msrest's walk
    except intake.Malformed as exc:
        return await _reject(request, 400, str(exc))
    except Exception:
        return await _reject(request, 400, "body is not an activity")
    if not activity.type:
        return await _reject(request, 400, "activity has no type", activity)
    if runtime.settings.production and activity.channel_id != "msteams":
        return await _reject(request, 400, "only Microsoft Teams activities are accepted", activity)
    if runtime.settings.production and not activity.service_url:
        return await _reject(request, 400, "activity has no serviceUrl", activity)
    header = request.headers.get("Authorization") or None
    try:
        result = await runtime.auth.authenticate_request(activity, header)
    except PermissionError as exc:
        return await _reject(request, 401, str(exc), activity, action="http.unauthorized")
    except AuthUnavailable as exc:
        log.error("cannot validate tokens: %s", exc)
        runtime.metrics.request("unavailable", "http")
        return web.json_response({"error": "authentication temporarily unavailable"}, status=503)
    invoke_response = await runtime.adapter.process_activity(result, activity, runtime.bot.on_turn)
    if invoke_response:
        return web.json_response(invoke_response.body, status=invoke_response.status)
    return web.Response(status=201)


async def _reject(
    request: web.Request, status: int, reason: str, activity: Activity | None = None,
    *, action: str = "http.rejected",
) -> web.Response:
    """Answer a request that never reaches the bot, and audit it (per source, without its claims)."""
    await request.app[RUNTIME].rejections.record(
        source=request.remote or "unknown", status=status, reason=reason, action=action,
        activity_id=activity.id if activity else None, activity_type=activity.type if activity else None,
    )  # fmt: skip
    request.app[RUNTIME].metrics.request("unauthorized" if status == 401 else "rejected", "http")
    log.info("rejected request: HTTP %s %s", status, reason)
    return web.json_response({"error": reason}, status=status)
