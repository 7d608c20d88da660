"""A fake Bot Connector service (REST API v3, Teams flavour) on 127.0.0.1.

Runs an aiohttp server on **its own event loop in a background thread** (the
SDK makes some connector calls with blocking ``requests`` from inside
coroutines -- e.g. ``TeamsInfo.get_team_details`` / ``get_team_channels`` use
the synchronous msrest pipeline -- which would deadlock a server sharing the
caller's loop), answers the routes the bot uses, and records every request::

    async with FakeConnector() as connector:
        connector.add_member(conv_id, {...})
        ... drive the bot with service_url=connector.url ...
        sent = await connector.wait_for_activities(1)
        assert sent[0]["text"] == "..."
        assert sent[0].conversation_id == conv_id

Conversation ids (``19:...@thread.tacv2;messageid=...``, ``a:1...``) arrive
percent-encoded in the path; every path segment is decoded individually, so
``RecordedRequest.conversation_id`` is always the plain id.

The service never checks the ``Authorization`` header; tests can read it from
``RecordedRequest.headers``. ``enforce_rate_limits()`` makes it throttle posts per
conversation as Teams does, ``refuse_conversation(id, 404)`` makes a conversation
gone (``tests.fakes.connector_limits``).
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any
from urllib.parse import unquote

from aiohttp import web

from tests.fakes.connector_files import UploadSlots
from tests.fakes.connector_limits import TEAMS_THREAD_LIMITS, ConversationLimits
from tests.fakes.connector_records import FailureRule, PostedActivity, RecordedRequest, error_body
from tests.fakes.connector_routes import ConnectorRoutes, base_conversation_id, classify

__all__ = [
    "FailureRule",
    "FakeConnector",
    "PostedActivity",
    "RecordedRequest",
    "error_body",
]


class FakeConnector(ConnectorRoutes):
    """Fake Bot Connector REST API v3 (see module docstring)."""

    def __init__(self, *, host: str = "127.0.0.1") -> None:
        self.host = host
        self.requests: list[RecordedRequest] = []
        self.conversations: dict[str, dict[str, Any]] = {}
        """Conversations created through ``POST /v3/conversations`` (id -> create body)."""
        self._members: dict[str, list[dict[str, Any]]] = {}
        self._teams: dict[str, dict[str, Any]] = {}
        self._failures: list[FailureRule] = []
        self.limits = ConversationLimits()
        """Teams' per-thread throttling and refused conversations (off until asked for)."""
        self.uploads = UploadSlots()
        """OneDrive upload sessions of the file consent flow (`offer_upload`)."""
        self._ids = itertools.count(1)
        self._lock = threading.RLock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self.port = 0

    # ------------------------------------------------------------------ lifecycle
    @property
    def url(self) -> str:
        """Service URL with a trailing slash, like Teams serviceUrls."""
        if not self.port:
            raise RuntimeError("FakeConnector not started")
        return f"http://{self.host}:{self.port}/"

    def start_sync(self) -> FakeConnector:
        """Start the server thread (blocking until it listens)."""
        if self._thread is not None:
            return self
        ready = threading.Event()
        errors: list[BaseException] = []
        loop = asyncio.new_event_loop()

        async def setup() -> None:
            app = web.Application(client_max_size=16 * 1024 * 1024)
            app.router.add_route("*", "/{tail:.*}", self._dispatch)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            site = web.TCPSite(runner, self.host, 0)
            await site.start()
            self._runner = runner
            self.port = int(runner.addresses[0][1])

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(setup())
            except BaseException as exc:
                errors.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

        self._loop = loop
        self._thread = threading.Thread(target=run, name="FakeConnector", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("FakeConnector did not start")
        if errors:
            self._thread = None
            self._loop = None
            raise errors[0]
        return self

    def stop_sync(self) -> None:
        loop, thread, runner = self._loop, self._thread, self._runner
        if loop is None or thread is None:
            return
        if runner is not None:
            asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        self._loop = None
        self._thread = None
        self._runner = None

    async def start(self) -> FakeConnector:
        return await asyncio.to_thread(self.start_sync)

    async def stop(self) -> None:
        await asyncio.to_thread(self.stop_sync)

    async def __aenter__(self) -> FakeConnector:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def __enter__(self) -> FakeConnector:
        return self.start_sync()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop_sync()

    # ------------------------------------------------------------------ seeding
    def add_member(self, conversation_id: str, member: Mapping[str, Any]) -> None:
        """Add a Teams-style member (``id`` "29:...", name, aadObjectId, ...)."""
        with self._lock:
            members = self._members.setdefault(base_conversation_id(conversation_id), [])
            members[:] = [m for m in members if m.get("id") != member.get("id")]
            members.append(dict(member))

    def remove_member(self, conversation_id: str, member_id: str) -> None:
        key = base_conversation_id(conversation_id)
        with self._lock:
            self._members[key] = [
                m for m in self._members.get(key, []) if member_id not in (m.get("id"), m.get("aadObjectId"))
            ]

    def set_team(
        self,
        team_id: str,
        name: str,
        aad_group_id: str,
        channels: Iterable[tuple[str, str | None] | Mapping[str, Any]] | None = None,
    ) -> None:
        """Seed a team.  ``channels``: ``(id, name)`` pairs or dicts; default: the
        General channel only (id == team id, name ``None`` as Teams reports it)."""
        chans: list[dict[str, Any]] = []
        for ch in channels if channels is not None else [(team_id, None)]:
            if isinstance(ch, Mapping):
                chans.append({"id": ch["id"], "name": ch.get("name")})
            else:
                chans.append({"id": ch[0], "name": ch[1]})
        with self._lock:
            self._teams[team_id] = {
                "id": team_id,
                "name": name,
                "aadGroupId": aad_group_id,
                "channels": chans,
            }

    def members_of(self, conversation_id: str) -> list[dict[str, Any]]:
        """Roster for a conversation: its own members, else the owning team's."""
        key = base_conversation_id(conversation_id)
        with self._lock:
            if key in self._members:
                return list(self._members[key])
            for team_id, team in self._teams.items():
                if any(ch["id"] == key for ch in team["channels"]):
                    return list(self._members.get(team_id, []))
            return []

    # ------------------------------------------------------------------ failures
    def fail_next(
        self,
        n: int,
        status: int,
        retry_after: float | int | str | None = None,
        path_contains: str | None = None,
        *,
        method: str | None = None,
        code: str | None = None,
        delay: float = 0.0,
    ) -> FailureRule:
        """Answer the next ``n`` matching requests with ``status`` and an ErrorResponse.

        ``path_contains`` is matched against the *decoded* path.  ``retry_after``
        becomes a ``Retry-After`` header.  ``delay``: seconds to wait before answering.
        Rules are consumed in the order added.
        """
        rule = FailureRule(n, status, retry_after, path_contains, method, code, delay)
        with self._lock:
            self._failures.append(rule)
        return rule

    def enforce_rate_limits(self, windows: Iterable[tuple[int, float]] = TEAMS_THREAD_LIMITS,
                            app_windows: Iterable[tuple[int, float]] = ()) -> None:  # fmt: skip
        """Throttle posts per conversation as Teams does (and per app, given app_windows, e.g.
        TEAMS_APP_LIMITS): over a limit, 429 with ``Retry-After``."""
        with self._lock:
            self.limits.enforce(tuple(windows), tuple(app_windows))

    def refuse_conversation(self, conversation_id: str, status: int = 404, code: str | None = None) -> None:
        """Answer every post into ``conversation_id`` with ``status`` (404 gone, 403 blocked) until accepted."""
        with self._lock:
            self.limits.refuse(conversation_id, status, code)

    def accept_conversation(self, conversation_id: str) -> None:
        """Undo ``refuse_conversation``."""
        with self._lock:
            self.limits.accept(conversation_id)

    def throttled_requests(self) -> list[RecordedRequest]:
        """Requests answered 429 by the enforced rate limits."""
        with self._lock:
            return [r for r in self.requests if r.throttled]

    # ------------------------------------------------------------------ reading
    def activity_requests(self) -> list[RecordedRequest]:
        """Successful activity-carrying requests (send/reply/update/create-with-activity)."""
        with self._lock:
            return [r for r in self.requests if r.is_activity and not r.failed and 200 <= r.status < 300]

    def activities(self) -> list[PostedActivity]:
        """Activity bodies the bot delivered, in order.

        Includes POST .../activities (``kind="send"``), POST .../activities/{id}
        (``"reply"``), PUT .../activities/{id} (``"update"``) and the ``activity``
        embedded in ``POST /v3/conversations`` (``"create"``, conversation_id =
        the new conversation).  Requests rejected by ``fail_next`` or with a bad
        body are excluded (they are still in ``.requests``).
        """
        out: list[PostedActivity] = []
        for r in self.activity_requests():
            body = r.json if r.kind != "create" else (r.json or {}).get("activity")
            if not isinstance(body, Mapping):
                continue
            assigned = (
                (r.response or {}).get("activityId") if r.kind == "create" else (r.response or {}).get("id")
            )
            out.append(PostedActivity(body, r, assigned))
        return out

    def failed_requests(self) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.failed]

    def clear(self) -> None:
        """Forget recorded requests (seeded members/teams and pending failures stay)."""
        with self._lock:
            self.requests.clear()

    async def wait_for_activities(self, n: int, timeout: float = 5.0) -> list[PostedActivity]:
        """Wait until at least ``n`` activities were delivered; return all of them.

        Raises ``AssertionError`` listing what was received on timeout.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            got = self.activities()
            if len(got) >= n:
                return got
            if loop.time() >= deadline:
                raise AssertionError(self._timeout_message(n, timeout, got))
            await asyncio.sleep(0.01)

    def wait_for_activities_sync(self, n: int, timeout: float = 5.0) -> list[PostedActivity]:
        """Blocking variant of ``wait_for_activities`` for synchronous tests."""
        deadline = time.monotonic() + timeout
        while True:
            got = self.activities()
            if len(got) >= n:
                return got
            if time.monotonic() >= deadline:
                raise AssertionError(self._timeout_message(n, timeout, got))
            time.sleep(0.01)

    def _timeout_message(self, n: int, timeout: float, got: list[PostedActivity]) -> str:
        summary = [
            {
                "kind": a.kind,
                "conversation_id": a.conversation_id,
                "type": a.get("type"),
                "text": a.get("text"),
            }
            for a in got
        ]
        with self._lock:
            others = [
                f"{r.method} {r.path} -> {r.status}{' (injected)' if r.failed else ''}" for r in self.requests
            ]
        return (
            f"expected at least {n} activities within {timeout}s, got {len(got)}: {summary}; "
            f"all requests: {others}"
        )

    # ------------------------------------------------------------------ server
    def offer_upload(self, name: str) -> dict[str, Any]:
        """What Teams does when a FileConsentCard is accepted: an upload session (the invoke's uploadInfo)."""
        with self._lock:
            return self.uploads.offer(self.url, name)

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        raw_path = request.raw_path.split("?", 1)[0]
        segments = [unquote(s) for s in raw_path.split("/") if s]
        if len(segments) == 2 and segments[0] == "upload" and request.method == "PUT":
            body = await request.read()
            with self._lock:
                status, answer = self.uploads.put(segments[1], dict(request.headers.items()), body)
            return web.json_response(answer, status=status)
        decoded_path = "/" + "/".join(segments)
        body_text = await request.text()
        rec = RecordedRequest(
            method=request.method,
            path=decoded_path,
            raw_path=raw_path,
            headers=dict(request.headers.items()),
            json=None,
            query=dict(request.query.items()),
        )
        classify(rec, segments)
        with self._lock:
            try:
                status, payload, headers = self._handle(rec, segments, body_text)
            except Exception as exc:  # pragma: no cover - a bug in the fake itself
                status, payload, headers = 500, error_body("FakeConnectorError", repr(exc)), {}
            rec.status = status
            rec.response = payload
            self.requests.append(rec)
        if rec.delay:
            await asyncio.sleep(rec.delay)
        if status == 204:
            return web.Response(status=204, headers=headers)
        return web.json_response(payload, status=status, headers=headers)
