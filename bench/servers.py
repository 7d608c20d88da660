"""Subprocess entry points: the two reference bots and the Bot Connector stand-ins.

    python -m bench.servers echo --port PORT
    python -m bench.servers raw --port PORT
    python -m bench.servers connector --impl fake|fast

The echo bot is built the way Microsoft's Python samples build theirs: a
`CloudAdapter` over `ConfigurationBotFrameworkAuthentication(config)`, an
`ActivityHandler` echoing the text, and `adapter.process(req, bot)` behind
`POST /api/messages` (plus `/healthz` so start-up can be timed the same way).

The raw bot is the least a bot can do, with aiohttp alone: `POST /api/messages`
reads the JSON body and POSTs the echo reply to the connector's reply route
(`{serviceUrl}/v3/conversations/{id}/activities/{id}`, ids quoted as botbuilder
quotes them) on one keep-alive `ClientSession` made at start-up, then answers
201. No botbuilder, no auth (local mode, like the others), and `/healthz`.

A connector prints `{"port": N}` on stdout once it listens, then answers
commands read from stdin, one per line, with one JSON line: `count` prints how many
activities (sends and replies) it has received, `requests` how many requests of any
kind, `created` the id of the newest conversation the bot created (null if none),
`last` the newest activity it received as `{"conversation": ID, "activity": {...}}`
(null if none); end of input stops it.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import sys
import threading
from collections.abc import AsyncIterator, Callable
from types import SimpleNamespace
from typing import Any
from urllib.parse import quote, unquote

import aiohttp
from aiohttp import web
from yarl import URL

from tests import fixtures

# -- the echo bot ----------------------------------------------------------------------------


def run_echo(port: int) -> None:
    """Serve the sample-style echo bot until killed."""
    from botbuilder.core import ActivityHandler, MessageFactory, TurnContext
    from botbuilder.integration.aiohttp import CloudAdapter, ConfigurationBotFrameworkAuthentication

    # The samples' DefaultConfig: the four Microsoft* settings (empty here: local mode).
    names = {"APP_ID": "MicrosoftAppId", "APP_PASSWORD": "MicrosoftAppPassword",
             "APP_TYPE": "MicrosoftAppType", "APP_TENANTID": "MicrosoftAppTenantId"}  # fmt: skip
    config = SimpleNamespace(PORT=port, **{key: os.environ.get(env, "") for key, env in names.items()})
    config.APP_TYPE = config.APP_TYPE or "MultiTenant"

    class EchoBot(ActivityHandler):  # type: ignore[misc]
        async def on_message_activity(self, turn_context: TurnContext) -> None:
            text = turn_context.activity.text
            await turn_context.send_activity(MessageFactory.text(f"Echo: {text}"))

    adapter = CloudAdapter(ConfigurationBotFrameworkAuthentication(config))

    async def on_error(context: TurnContext, error: Exception) -> None:
        print(f"[on_turn_error] {error!r}", file=sys.stderr)
        await context.send_activity("The bot encountered an error or bug.")

    adapter.on_turn_error = on_error
    bot = EchoBot()

    async def messages(req: web.Request) -> web.StreamResponse:
        response: web.StreamResponse = await adapter.process(req, bot)
        return response

    async def healthz(_req: web.Request) -> web.Response:
        return web.json_response({"status": "alive"})

    app = web.Application()
    app.router.add_post("/api/messages", messages)
    app.router.add_get("/healthz", healthz)
    web.run_app(app, host="127.0.0.1", port=config.PORT, print=None)


# -- the raw aiohttp bot ---------------------------------------------------------------------

HTTP = web.AppKey("http", aiohttp.ClientSession)


def raw_reply(activity: dict[str, Any]) -> tuple[URL, dict[str, Any]]:
    """(URL, body) of the echo reply to a message activity, as botbuilder would post it."""
    conversation = activity["conversation"]
    base = str(activity["serviceUrl"]).rstrip("/")
    path = f"v3/conversations/{quote(str(conversation['id']), safe='')}/activities/"
    url = URL(f"{base}/{path}{quote(str(activity['id']), safe='')}", encoded=True)
    body = {"type": "message", "text": f"Echo: {activity.get('text') or ''}", "textFormat": "markdown",
            "from": activity.get("recipient"), "recipient": activity.get("from"),
            "conversation": conversation, "replyToId": activity["id"]}  # fmt: skip
    return url, body


def run_raw(port: int) -> None:
    """Serve the raw aiohttp bot until killed."""

    async def session(app: web.Application) -> AsyncIterator[None]:
        app[HTTP] = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        yield
        await app[HTTP].close()

    async def messages(req: web.Request) -> web.Response:
        try:
            activity = await req.json()
        except ValueError:
            return web.Response(status=400)
        if not isinstance(activity, dict):
            return web.Response(status=400)
        if activity.get("type") == "message":
            url, body = raw_reply(activity)
            async with req.app[HTTP].post(url, json=body) as answer:
                await answer.read()
                if answer.status >= 300:
                    print(f"[raw] connector answered {answer.status}", file=sys.stderr)
                    return web.Response(status=502)
        return web.Response(status=201)

    async def healthz(_req: web.Request) -> web.Response:
        return web.json_response({"status": "alive"})

    app = web.Application()
    app.cleanup_ctx.append(session)
    app.router.add_post("/api/messages", messages)
    app.router.add_get("/healthz", healthz)
    web.run_app(app, host="127.0.0.1", port=port, print=None)


# -- connectors ------------------------------------------------------------------------------


def seed_people(add_member: Callable[[str, dict[str, object]], None]) -> None:
    """The fixture's four people, in the team and in both chats."""
    for person in fixtures.team_members():
        for conversation in (fixtures.TEAM_ID, fixtures.PERSONAL_CONVERSATION_ID,
                             fixtures.GROUP_CHAT_CONVERSATION_ID):  # fmt: skip
            add_member(conversation, person)


class FastConnector:
    """The smallest Bot Connector that answers what the two bots call, on a thread's own loop."""

    def __init__(self) -> None:
        self.activities = 0
        self.requests = 0
        self.port = 0
        self._members: dict[str, dict[str, dict[str, object]]] = {}
        self._ids = itertools.count(1)
        self.created: list[str] = []
        self.last: tuple[str, bytes] | None = None

    def add_member(self, conversation_id: str, member: dict[str, object]) -> None:
        """Answer member lookups for this person by Teams id or AAD object id."""
        known = self._members.setdefault(conversation_id.split(";", 1)[0], {})
        known[str(member["id"])] = member
        known[str(member["aadObjectId"])] = member

    async def _dispatch(self, request: web.Request) -> web.Response:
        self.requests += 1
        seg = [unquote(s) for s in request.raw_path.split("?", 1)[0].split("/") if s]
        if seg == ["v3", "conversations"] and request.method == "POST":
            return await self._create(request)
        conversations = len(seg) >= 4 and seg[:2] == ["v3", "conversations"]
        if conversations and seg[3] == "activities" and request.method == "POST" and len(seg) in (4, 5):
            self.last = (seg[2], await request.read())  # kept as bytes: parsed only when asked for
            self.activities += 1
            return web.json_response({"id": str(next(self._ids))}, status=201)
        if conversations and len(seg) == 5 and seg[3] == "members":
            member = self._members.get(seg[2].split(";", 1)[0], {}).get(seg[4])
            if member is not None:
                return web.json_response(member)
        body = {"error": {"code": "NotFound", "message": f"no route for {request.method}"}}
        return web.json_response(body, status=404)

    async def _create(self, request: web.Request) -> web.Response:
        """A new thread in a channel, started with the activity (what `/room open` asks for)."""
        body = await request.json()
        channel = ((body.get("channelData") or {}).get("channel") or {}).get("id")
        if not channel:
            return web.json_response({"error": {"code": "BadArgument", "message": "no channel"}}, status=400)
        activity_id = str(next(self._ids))
        conversation = f"{channel};messageid={activity_id}" if body.get("activity") else str(channel)
        self.created.append(conversation)
        if body.get("activity"):
            self.activities += 1
            self.last = (conversation, json.dumps(body["activity"]).encode())
        return web.json_response({"id": conversation, "activityId": activity_id,
                                  "serviceUrl": f"http://127.0.0.1:{self.port}/"}, status=201)  # fmt: skip

    def last_activity(self) -> dict[str, Any] | None:
        """The newest activity received, with the conversation it went to."""
        if self.last is None:
            return None
        return {"conversation": self.last[0], "activity": json.loads(self.last[1])}

    def start_sync(self) -> FastConnector:
        """Listen on an ephemeral port, serving from a daemon thread."""
        ready = threading.Event()
        loop = asyncio.new_event_loop()

        async def setup() -> None:
            app = web.Application(client_max_size=16 * 1024 * 1024)
            app.router.add_route("*", "/{tail:.*}", self._dispatch)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            self.port = int(runner.addresses[0][1])

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.run_until_complete(setup())
            ready.set()
            loop.run_forever()

        threading.Thread(target=run, name="FastConnector", daemon=True).start()
        if not ready.wait(10):
            raise RuntimeError("fast connector did not start")
        return self


def run_connector(impl: str, limits: bool = False) -> None:
    """Start a connector, seed the fixture's people, answer stdin commands until EOF (`throttled`: how many
    posts the enforced Teams limits answered 429, with --limits on the fake)."""
    count: Callable[[], int]
    total: Callable[[], int]
    created: Callable[[], str | None]
    last: Callable[[], dict[str, Any] | None]
    if impl == "fake":
        from tests.fakes.connector import FakeConnector
        from tests.fakes.connector_limits import TEAMS_APP_LIMITS, TEAMS_THREAD_LIMITS

        fake = FakeConnector().start_sync()
        if limits:
            fake.enforce_rate_limits(TEAMS_THREAD_LIMITS, app_windows=TEAMS_APP_LIMITS)
        fake.set_team(fixtures.TEAM_ID, fixtures.TEAM_NAME, fixtures.TEAM_AAD_GROUP_ID)
        seed_people(fake.add_member)
        port = fake.port

        def count() -> int:
            return len(fake.activities())

        def total() -> int:
            return len(fake.requests)

        def throttled() -> int:
            return len(fake.throttled_requests())

        def created() -> str | None:
            return next(reversed(list(fake.conversations)), None)

        def last() -> dict[str, Any] | None:
            posted = fake.activities()
            if not posted:
                return None
            return {"conversation": posted[-1].conversation_id, "activity": dict(posted[-1])}
    else:
        fast = FastConnector().start_sync()
        seed_people(fast.add_member)
        port = fast.port

        def count() -> int:
            return fast.activities

        def total() -> int:
            return fast.requests

        def throttled() -> int:
            return 0

        def created() -> str | None:
            return fast.created[-1] if fast.created else None

        last = fast.last_activity

    print(json.dumps({"port": port}), flush=True)
    answers: dict[str, Callable[[], object]] = {"count": count, "requests": total, "throttled": throttled,
                                                "created": created, "last": last}  # fmt: skip
    for line in sys.stdin:
        command = line.strip()
        answer = answers[command]() if command in answers else -1
        print(json.dumps(answer), flush=True)


def main(argv: list[str] | None = None) -> None:
    """Dispatch to one server."""
    parser = argparse.ArgumentParser(prog="python -m bench.servers")
    sub = parser.add_subparsers(dest="server", required=True)
    echo = sub.add_parser("echo")
    echo.add_argument("--port", type=int, required=True)
    raw = sub.add_parser("raw")
    raw.add_argument("--port", type=int, required=True)
    connector = sub.add_parser("connector")
    connector.add_argument("--impl", choices=("fake", "fast"), default="fast")
    connector.add_argument("--limits", action="store_true", help="enforce Teams' limits (fake)")
    args = parser.parse_args(argv)
    if args.server == "echo":
        run_echo(args.port)
    elif args.server == "raw":
        run_raw(args.port)
    else:
        run_connector(args.impl, args.limits)


if __name__ == "__main__":
    main()
