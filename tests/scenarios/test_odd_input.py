"""Odd input gets a 400 (audited), never a 500; a flood of rejections does not fill the audit store."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from bot.app import RUNTIME, SERVER_OPTIONS
from core.db import Database
from tests import fixtures
from tests.fakes.connector import FakeConnector
from tests.scenarios.conftest import BASE_SETTINGS, Harness, serving


def _without(data: dict[str, Any], key: str) -> dict[str, Any]:
    data.pop(key, None)
    return data


def _set(path: tuple[str, ...], value: Any) -> Any:
    def change(data: dict[str, Any]) -> dict[str, Any]:
        target = data
        for part in path[:-1]:
            target = target.setdefault(part, {})
        target[path[-1]] = value
        return data

    return change


ODD: dict[str, Any] = {
    "tenant-not-an-object": _set(("channelData", "tenant"), "11111111-1111-4111-8111-111111111111"),
    "team-a-list": _set(("channelData", "team"), ["x"]),
    "channel-a-number": _set(("channelData", "channel"), 7),
    "channel-data-a-string": _set(("channelData",), "x"),
    "mention-without-mentioned": lambda d: {**d, "entities": [{"type": "mention", "text": "<at>x</at>"}]},
    "entities-not-a-list": _set(("entities",), {"type": "mention"}),
    "no-conversation": lambda d: _without(d, "conversation"),
    "conversation-a-string": _set(("conversation",), "19:x"),
    "from-a-string": _set(("from",), "29:x"),
    "text-a-number": _set(("text",), 12),
}


@pytest.mark.parametrize("case", list(ODD), ids=list(ODD))
async def test_odd_shapes_are_400_and_audited(harness: Harness, case: str) -> None:
    activity = ODD[case](harness.activity("channel_message_mention", "help"))
    status, body = await harness.post(activity)
    assert status == 400 and isinstance(body, dict) and body["error"], (status, body)
    [event] = harness.audit()
    assert (event["action"], event["outcome"], event["actor_kind"]) == ("http.rejected", "rejected", "unverified")
    assert event["actor_aad_id"] is None and event["conversation_id"] is None  # claims are not stored
    assert harness.connector.activities() == []


async def test_a_lone_surrogate_is_400(harness: Harness) -> None:
    raw = json.dumps(harness.activity("personal_message", "/help")).replace('"/help"', '"/help \\ud800"')
    status, body = await harness.post(raw)
    assert (status, body) == (400, {"error": "body holds a string that is not valid Unicode"})


async def test_a_lone_surrogate_in_raw_bytes_or_in_utf16_is_400_too(harness: Harness) -> None:
    """Intake only looks at every string when the body could hold a lone surrogate: these could."""
    raw = json.dumps(harness.activity("personal_message", "/help")).encode()
    as_bytes = raw.replace(b'"/help"', b'"/help \xed\xa0\x80"')
    in_utf16 = json.dumps(harness.activity("personal_message", "/help \ud800")).encode("utf-16-le", "surrogatepass")
    for body in (as_bytes, in_utf16):
        status, answer = await harness.post(body)
        assert (status, answer) == (400, {"error": "body holds a string that is not valid Unicode"}), body[:40]


async def test_json_nested_a_thousand_deep_is_400(harness: Harness) -> None:
    activity = harness.activity("personal_message", "/help")
    deep = json.dumps(activity)[:-1] + ', "value": ' + "[" * 1000 + "]" * 1000 + "}"
    status, body = await harness.post(deep)
    assert (status == 400 and "deeper" in body["error"]) or body["error"] == "body is not valid JSON"
    deeper = json.dumps(activity)[:-1] + ', "value": ' + "[" * 100_000 + "]" * 100_000 + "}"
    assert (await harness.post(deeper))[0] in (400, 413)


async def test_a_message_of_256k_angle_brackets_is_answered_quickly_enough_not_to_stall(harness: Harness) -> None:
    # Mention stripping must be linear: this once froze the server for 38 s.
    for text in ("<" * 200_000, "<at>" * 50_000, "<a" * 100_000):
        activity = harness.activity("channel_message_mention", "help", attachments=[])  # no HTML copy
        activity["text"] = text
        status, _ = await harness.post(activity)
        assert status == 201
    crafted = harness.activity("channel_message_mention", "<at>(a+)+$</at> help")
    crafted["entities"][0]["text"] = "<at>(a+)+$</at>"  # a mention whose text is a hostile pattern
    crafted["text"] = "<at>(a+)+$</at> " + "a" * 40 + "! help"
    assert (await harness.post(crafted))[0] == 201
    assert (await harness.post(harness.activity("personal_message", "/help")))[0] == 201


async def test_a_slow_body_times_out(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("bot.app.BODY_TIMEOUT", 0.3)

    async def trickle() -> Any:
        yield b'{"type": "message", '
        await asyncio.sleep(2)
        yield b'"text": "late"}'

    async with harness.http.post(harness.url, data=trickle(), headers={"Content-Type": "application/json"}) as r:
        assert r.status == 408
    assert harness.audit()[-1]["detail"].startswith("HTTP 408: body not received within 0.3 s")


async def test_a_flood_of_rejections_is_summarised_per_source_and_minute(harness: Harness) -> None:
    for _ in range(25):
        assert (await harness.post(b"not json"))[0] == 400
    events = harness.audit()
    assert len(events) == 5  # the first few one by one...
    await harness.server.app[RUNTIME].rejections.flush(everything=True)
    summary = harness.audit()[-1]
    assert summary["action"] == "http.rejected.summary"  # ...then one event with the count
    assert summary["detail"].startswith("20 more rejected requests from 127.0.0.1 in the minute from ")
    assert len(harness.audit()) == 6


async def test_an_unauthenticated_body_never_becomes_the_actor(secure_harness: Harness) -> None:
    claimed = {"id": fixtures.SUPERVISOR_ID, "aadObjectId": fixtures.SUPERVISOR_AAD, "name": "Sgt Sue Supervisor"}
    result = await secure_harness.say("personal_message", "/help", from_=claimed)
    assert result.status == 401
    [event] = secure_harness.audit()
    assert (event["actor_aad_id"], event["actor_name"], event["actor_tenant_id"]) == (None, None, None)


async def test_slow_headers_are_cut_off(db: Database, connector: FakeConnector) -> None:
    async with serving(BASE_SETTINGS, connector, db, keepalive_timeout=0.5) as running:
        reader, writer = await asyncio.open_connection(running.server.host, running.server.port)
        writer.write(b"POST /api/messages HTTP/1.1\r\nHost: x\r\n")  # and never the rest
        await writer.drain()
        closed = await asyncio.wait_for(reader.read(), timeout=5)  # the server hangs up
        writer.close()
    assert closed == b""
    assert SERVER_OPTIONS["keepalive_timeout"] == 15.0  # what production runs with
