"""The running bot over HTTP, with a fake Bot Connector to read what it sends."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from sqlalchemy import text

from bot.app import SERVER_OPTIONS, create_app
from bot.config import Settings
from core.db import Database
from dialogs.registry import Router
from tests import fixtures
from tests.fakes.connector import FakeConnector, PostedActivity
from tests.fakes.graph import FakeGraph
from tests.fakes.openid import FakeOpenId

BASE_SETTINGS = Settings(
    home_tenant_id=fixtures.HOME_TENANT,
    home_domains=frozenset({"opsroom.example"}),
    supervisors=frozenset({fixtures.SUPERVISOR_AAD}),
)


def with_graph_settings(base: Settings, graph: FakeGraph, **more: Any) -> Settings:
    """base, with Microsoft Graph configured against the fake Graph (and any other settings given)."""
    return replace(base, graph_tenant_id=graph.tenant_id, graph_client_id=graph.client_id,
                   graph_client_secret=graph.client_secret, graph_url=graph.graph_url,
                   graph_login_url=graph.login_url, **more)  # fmt: skip


@dataclass
class Exchange:
    """One request to the bot and what came of it."""

    status: int
    body: Any
    sent: dict[str, Any]
    replies: list[PostedActivity] = field(default_factory=list)

    @property
    def texts(self) -> list[str]:
        """The text of every reply."""
        return [str(r.get("text") or "") for r in self.replies]


class Harness:
    """Drives the bot the way Teams does, and reads the store."""

    def __init__(self, server: TestServer, connector: FakeConnector, db: Database) -> None:
        self.server = server
        self.connector = connector
        self.db = db
        self.http = aiohttp.ClientSession()
        self.token: str | None = None

    @property
    def url(self) -> str:
        """The messaging endpoint."""
        return str(self.server.make_url("/api/messages"))

    async def post(self, payload: bytes | str | dict[str, Any], *, headers: dict[str, str] | None = None,
                   content_type: str = "application/json") -> tuple[int, Any]:  # fmt: skip
        """POST anything to /api/messages."""
        data = json.dumps(payload) if isinstance(payload, dict) else payload
        sent = {"Content-Type": content_type}
        if self.token:
            sent["Authorization"] = f"Bearer {self.token}"
        sent.update(headers or {})
        async with self.http.post(self.url, data=data, headers=sent) as response:
            raw = await response.read()
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = raw.decode(errors="replace")
            return response.status, body

    def activity(self, fixture: str, text: str | None = None, **overrides: Any) -> dict[str, Any]:
        """A fixture activity addressed to our fake connector."""
        return fixtures.load(fixture, service_url=self.connector.url, text=text, **overrides)

    async def send(self, activity: dict[str, Any], **kwargs: Any) -> Exchange:
        """POST an activity and collect what the bot sent back during it."""
        before = len(self.connector.activities())
        status, body = await self.post(activity, **kwargs)
        # New threads the bot started are not replies: read them from connector.requests.
        sent = [a for a in self.connector.activities()[before:] if a.kind != "create"]
        return Exchange(status, body, activity, sent)

    async def say(self, fixture: str, text: str | None = None, **overrides: Any) -> Exchange:
        """Send a fixture activity, optionally with other text."""
        return await self.send(self.activity(fixture, text, **overrides))

    async def posted_to(self, conversation_id: str, count: int = 1, timeout: float = 5.0) -> list[PostedActivity]:
        """New posts (not replies) into a conversation: the outbox sender makes them after the commit,
        so wait until `count` have arrived (or the timeout), then return them all."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            found = [a for a in self.connector.activities() if a.conversation_id == conversation_id
                     and a.kind == "send"]  # fmt: skip
            if len(found) >= count or loop.time() > deadline:
                return found
            await asyncio.sleep(0.01)

    def audit(self) -> list[dict[str, Any]]:
        """Every audit event, in order."""

        def read(session: Any) -> list[dict[str, Any]]:
            rows = session.execute(text("SELECT * FROM audit_event ORDER BY seq"))
            return [dict(row._mapping) for row in rows]

        return self.db.transaction(read, readonly=True)

    async def close(self) -> None:
        """Release the client session."""
        await self.http.close()


@pytest.fixture
async def connector() -> AsyncIterator[FakeConnector]:
    """A fake Bot Connector with the team's and the 1:1 chat's members."""
    async with FakeConnector() as fake:
        fake.set_team(fixtures.TEAM_ID, fixtures.TEAM_NAME, fixtures.TEAM_AAD_GROUP_ID)
        for person in fixtures.team_members():
            fake.add_member(fixtures.TEAM_ID, person)
            fake.add_member(fixtures.PERSONAL_CONVERSATION_ID, person)
            fake.add_member(fixtures.GROUP_CHAT_CONVERSATION_ID, person)
        yield fake


@contextlib.asynccontextmanager
async def serving(
    settings: Settings,
    connector: FakeConnector,
    db: Database,
    router: Router | None = None,
    clock: Callable[[], datetime] | None = None,
    **server_options: Any,
) -> AsyncIterator[Harness]:
    """The app built exactly as production builds it, served on an ephemeral port until the block ends."""
    app = create_app(settings, db=db, router=router, clock=clock)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server(**{**SERVER_OPTIONS, **server_options})  # handler options go here, not to __init__
    running = Harness(server, connector, db)
    try:
        yield running
    finally:
        await running.close()
        await server.close()


@pytest.fixture
async def other_connector() -> AsyncIterator[FakeConnector]:
    """A second Bot Connector, as a different region's service URL would be."""
    async with FakeConnector() as fake:
        for person in fixtures.team_members():
            fake.add_member(fixtures.PERSONAL_CONVERSATION_ID, person)
        yield fake


@pytest.fixture
async def harness(db: Database, connector: FakeConnector) -> AsyncIterator[Harness]:
    """The bot in local mode (no app id), on SQLite and on PostgreSQL."""
    async with serving(BASE_SETTINGS, connector, db) as running:
        yield running


@pytest.fixture
def openid() -> Iterator[FakeOpenId]:
    """Local OpenID metadata, signing keys and token endpoint (served from a thread)."""
    with FakeOpenId() as fake:
        yield fake


@pytest.fixture
async def secure_harness(
    db: Database, connector: FakeConnector, openid: FakeOpenId, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Harness]:
    """The bot with an app id: every inbound token is validated against the local key."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", openid.ca_bundle_path)
    settings = replace(
        BASE_SETTINGS,
        app_id=fixtures.BOT_APP_ID,
        app_password="test-secret",
        openid_metadata_url=openid.metadata_url,
        token_issuer=openid.issuer,
        login_url=openid.login_url,
        oauth_scope="https://api.botframework.com",
    )
    async with serving(settings, connector, db) as running:
        yield running


@dataclass
class Clock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2026, 11, 30, 9, 0, tzinfo=UTC))


@pytest.fixture
async def rooms(db: Database, connector: FakeConnector, clock: Clock) -> AsyncIterator[Harness]:
    async with serving(BASE_SETTINGS, connector, db, clock=clock) as running:
        yield running


