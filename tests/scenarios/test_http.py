"""The HTTP surface: bad requests are refused without touching anything but the audit."""

from __future__ import annotations

import json

import aiohttp
from sqlalchemy import text

from core.db import Database
from tests.fakes.connector import FakeConnector
from tests.scenarios.conftest import BASE_SETTINGS, Harness, serving


async def test_health_and_readiness(harness: Harness) -> None:
    async with harness.http.get(harness.server.make_url("/healthz")) as response:
        assert response.status == 200 and (await response.json()) == {"status": "alive"}
    async with harness.http.get(harness.server.make_url("/readyz")) as response:
        assert response.status == 200 and (await response.json())["status"] == "ready"


async def test_not_ready_when_migrations_are_behind(harness: Harness) -> None:
    harness.db.transaction(lambda s: s.execute(text("UPDATE alembic_version SET version_num = 'old'")))
    async with harness.http.get(harness.server.make_url("/readyz")) as response:
        assert response.status == 503
        assert "python -m bot db upgrade" in (await response.json())["reason"]


async def test_not_ready_when_unmigrated_or_unreachable(connector: FakeConnector, fresh_db: Database) -> None:
    unreachable = Database("postgresql://nobody@127.0.0.1:1/none")
    for db in (fresh_db, unreachable):
        async with serving(BASE_SETTINGS, connector, db) as running:
            async with running.http.get(running.server.make_url("/readyz")) as response:
                assert response.status == 503
            async with running.http.get(running.server.make_url("/healthz")) as response:
                assert response.status == 200
    unreachable.close()


async def test_malformed_json_is_400(harness: Harness) -> None:
    status, body = await harness.post(b'{"type": "message", ')
    assert status == 400 and body == {"error": "body is not valid JSON"}
    [event] = harness.audit()
    assert (event["action"], event["outcome"]) == ("http.rejected", "rejected")
    assert event["detail"] == "HTTP 400: body is not valid JSON (from 127.0.0.1)"


async def test_json_that_is_not_an_activity_is_400(harness: Harness) -> None:
    assert (await harness.post(b"[1, 2]"))[0] == 400
    assert (await harness.post({"text": "no type"}))[0] == 400


async def test_wrong_content_type_is_415(harness: Harness) -> None:
    activity = harness.activity("personal_message", "/help")
    status, _ = await harness.post(str(activity), content_type="text/plain")
    assert status == 415
    assert harness.connector.activities() == []
    assert [e["detail"] for e in harness.audit()] == ["HTTP 415: content type must be application/json (from 127.0.0.1)"]


async def test_body_over_256_kib_is_413(harness: Harness) -> None:
    activity = harness.activity("personal_message", "/help " + "x" * (300 * 1024))
    status, _ = await harness.post(activity)
    assert status == 413
    # Without a Content-Length header (chunked), the limit still holds.
    async def chunks() -> object:
        yield b'{"type": "message", "text": "'
        for _ in range(300):
            yield b"x" * 1024
        yield b'"}'

    async with harness.http.post(harness.url, data=chunks(), headers={"Content-Type": "application/json"}) as r:
        assert r.status == 413
    assert harness.connector.activities() == []
    assert [e["outcome"] for e in harness.audit()] == ["rejected", "rejected"]


async def test_get_on_the_messaging_endpoint_is_refused(harness: Harness) -> None:
    async with harness.http.get(harness.url) as response:
        assert response.status == 405


async def test_text_that_is_not_a_command_is_not_kept_in_the_audit(harness: Harness) -> None:
    # The append-only log cannot be corrected or erased: chat text is not stored, only its kind and length.
    await harness.say("personal_message", "/nonsense\x1b[31mred\u202eevil about 12 Acacia Avenue")
    stored = harness.audit()[0]["arguments"]
    assert json.loads(stored) == {"kind": "not a command", "length": 44}
    await harness.say("personal_message", "/room open")  # a known command that did not parse
    assert json.loads(harness.audit()[-1]["arguments"]) == {"command": "room open", "length": 9}


async def test_server_rejects_oversized_body_before_reading_it(harness: Harness) -> None:
    big = b"{" + b" " * (1024 * 1024) + b"}"
    try:
        async with harness.http.post(harness.url, data=big, headers={"Content-Type": "application/json"}) as r:
            assert r.status == 413
    except aiohttp.ClientError:
        pass  # the server may close the connection once it has answered
