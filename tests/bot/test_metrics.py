"""GET /metrics (opsroom_*, a registry per app, on the main port or a port of its own) and the request id
that a response header, a log line and the request's audit event share."""

from __future__ import annotations

import io
import json
import logging
import socket
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.app import create_app
from bot.logs import JsonFormatter
from bot.metrics import METRICS
from core.db import Database
from core.outbox import service as outbox
from tests.fakes.connector import FakeConnector
from tests.scenarios.conftest import BASE_SETTINGS, connector, serving

__all__ = ["connector"]


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    old = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(old)


async def test_requests_decisions_audit_latency_and_outbox_are_counted(
    db: Database, connector: FakeConnector, json_log: io.StringIO
) -> None:
    async with serving(BASE_SETTINGS, connector, db) as bot:
        reference = json.dumps({"bot": {"id": "28:bot"}, "channelId": "msteams", "serviceUrl": connector.url,
                                "conversation": {"id": "19:later@thread.tacv2", "tenantId": "t1"}})
        created = datetime.now(UTC) - timedelta(minutes=5)
        await db.commit(lambda s: outbox.enqueue(session=s, kind="notice", reference=reference, now=created,
                                                 activity={"type": "message", "text": "x"},
                                                 not_before=created + timedelta(days=1)))  # fmt: skip
        activity = bot.activity("personal_message", "/help")
        async with bot.http.post(bot.url, json=activity) as response:
            assert response.status in (200, 201)
            rid = response.headers["X-Request-Id"]
        await bot.say("personal_message", "/nosuchcommand")
        assert (await bot.post(b"x", content_type="text/plain"))[0] == 415
        async with bot.http.get(str(bot.server.make_url("/metrics"))) as response:
            assert response.status == 200 and response.content_type == "text/plain"
            got = samples(await response.text())

    assert got[("opsroom_requests_total", (("family", "help"), ("outcome", "ok")))] == 1
    assert got[("opsroom_requests_total", (("family", "command"), ("outcome", "unknown_command")))] == 1
    assert got[("opsroom_requests_total", (("family", "http"), ("outcome", "rejected")))] == 1
    assert sum(v for (name, labels), v in got.items() if name == "opsroom_policy_decisions_total"
               and ("decision", "allow") in labels) >= 1  # fmt: skip
    assert got[("opsroom_audit_append_seconds_count", (("path", "request"),))] == 2
    assert got[("opsroom_audit_append_seconds_count", (("path", "rejection"),))] == 1
    assert got[("opsroom_outbox_depth", ())] == 1 and got[("opsroom_outbox_scrape_ok", ())] == 1
    assert 290 < got[("opsroom_outbox_oldest_age_seconds", ())] < 900

    # One request id: the response header, a log line and the request's audit event.
    assert len(rid) == 32 and int(rid, 16) >= 0
    events = [e for e in bot.audit() if e["activity_id"] == activity["id"]]
    assert [e["request_id"] for e in events] == [rid]
    lines = [json.loads(line) for line in json_log.getvalue().splitlines()]
    assert any(line.get("request_id") == rid and line["message"].startswith("POST /api/messages") for line in lines)


async def test_two_apps_in_one_process_keep_their_own_counts(db: Database, connector: FakeConnector) -> None:
    first, second = create_app(BASE_SETTINGS, db=db), create_app(BASE_SETTINGS, db=db)

    first[METRICS].request("ok", "help")
    assert samples((await first[METRICS].exposition()).decode())[
        ("opsroom_requests_total", (("family", "help"), ("outcome", "ok")))] == 1
    assert ("opsroom_requests_total", (("family", "help"), ("outcome", "ok"))) not in samples(
        (await second[METRICS].exposition()).decode())


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_a_metrics_port_of_its_own_takes_metrics_off_the_main_port(
    db: Database, connector: FakeConnector
) -> None:
    port = _free_port()
    settings = replace(BASE_SETTINGS, metrics_port=port, metrics_host="127.0.0.1")
    async with serving(settings, connector, db) as bot, aiohttp.ClientSession() as http:
        async with http.get(str(bot.server.make_url("/metrics"))) as response:
            assert response.status == 404
        async with http.get(f"http://127.0.0.1:{port}/metrics") as response:
            assert response.status == 200
            assert "opsroom_outbox_depth" in await response.text()
