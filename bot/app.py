"""The aiohttp application, built by create_app(settings): /api/messages, /healthz, /readyz."""

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
from bot.auth import AuthUnavailable, GuardedAuthentication, build_authentication
from bot.config import Settings
from bot.digests import DigestTick
from bot.facts import loaders
from bot.graph import GraphClient
from bot.handler import OpsroomBot
from bot.identity import Identity
from bot.outbound import Outbound
from bot.outbox_http import ConnectorPost, connector_for
from bot.oversight import OversightTick
from bot.pipeline import Pipeline
from bot.policy_actions import required_actions
from bot.rejections import RejectionLog
from bot.scheduler import build_scheduler
from bot.sender import OutboxSender
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


RUNTIME = web.AppKey("runtime", Runtime)
SCHEDULER = web.AppKey("scheduler", AsyncIOScheduler)
DIGESTS = web.AppKey("digests", DigestTick)
ACCESS = web.AppKey("access", AccessTick)
OVERSIGHT = web.AppKey("oversight", OversightTick)


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
    # The sender reads the same clock the pipeline stamps outbox rows with.
    post = ConnectorPost(outbound, connector_for(auth, settings.app_id or None))
    sender = OutboxSender(database, post, clock=now)
    pipeline = Pipeline(db=database, identity=identity, router=commands, policy=policy,
                        loaders=loaders(database), clock=now, after_commit=sender.wake)  # fmt: skip
    bot = OpsroomBot(pipeline, graph=graph, templates=templates, timezone=settings.timezone,
                     guest_max_days=settings.guest_max_days)
    return Runtime(settings, database, auth, adapter, bot, graph, owns_db=db is None, outbound=outbound,
                   sender=sender, pipeline=pipeline, rejections=RejectionLog(database),
                   rules=rules)  # fmt: skip


def create_app(
    settings: Settings,
    *,
    db: Database | None = None,
    router: Router | None = None,
    clock: Callable[[], datetime] | None = None,
) -> web.Application:
    """The web application; db, router and clock may be supplied (tests, benchmarks)."""
    app = web.Application(client_max_size=MAX_BODY)
    app[RUNTIME] = build_runtime(settings, db, router, clock)
    app.router.add_post("/api/messages", messages)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.on_startup.append(_startup)
    app.on_cleanup.append(_cleanup)
    return app


async def _startup(app: web.Application) -> None:
    runtime = app[RUNTIME]
    await runtime.outbound.start()  # the shared aiohttp session must be made inside the running loop
    await runtime.sender.start()
    await runtime.rejections.start()
    digests = app[DIGESTS] = DigestTick(runtime.db, runtime.pipeline.policy, clock=runtime.pipeline.clock,
                                        grace_until=runtime.settings.digest_grace_until,
                                        wake=runtime.sender.wake)  # fmt: skip
    groups = connector_groups(connector_for(runtime.auth, runtime.settings.app_id or None))
    access = app[ACCESS] = AccessTick(runtime.db, graph=runtime.graph, group_of=groups,
                                      clock=runtime.pipeline.clock, wake=runtime.sender.wake)  # fmt: skip
    scheduler = build_scheduler(runtime.db, keep_days=runtime.settings.dedupe_days,
                                clock=runtime.pipeline.clock, wake=runtime.sender.wake,
                                digests=digests.run, access=access.run)  # fmt: skip
    oversight = app[OVERSIGHT] = OversightTick.build(
        runtime.db, runtime.rules, timezone=runtime.settings.timezone, clock=runtime.pipeline.clock,
        wake=runtime.sender.wake)  # fmt: skip
    every = runtime.settings.oversight_seconds  # the misuse monitor: every few seconds, first after one wait
    scheduler.add_job(oversight.run, "interval", seconds=every, id="oversight", coalesce=True,
                      max_instances=1, misfire_grace_time=every,
                      next_run_time=datetime.now(UTC) + timedelta(seconds=every))  # fmt: skip
    scheduler.start()
    app[SCHEDULER] = scheduler
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
    runtime = app[RUNTIME]
    if SCHEDULER in app:
        app[SCHEDULER].shutdown(wait=False)
    await runtime.pipeline.close()
    await runtime.rejections.stop()
    await runtime.sender.stop()
    await runtime.outbound.close()
    if runtime.graph is not None:
        await runtime.graph.close()
    if runtime.owns_db:
        await asyncio.to_thread(runtime.db.close)


async def healthz(request: web.Request) -> web.Response:
    """The process is alive."""
    return web.json_response({"status": "alive"})


async def readyz(request: web.Request) -> web.Response:
    """The database answers and its schema is at the code's head revision."""
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
        activity = Activity().deserialize(data)
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
    log.info("rejected request: HTTP %s %s", status, reason)
    return web.json_response({"error": reason}, status=status)
