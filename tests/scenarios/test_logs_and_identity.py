"""Logs are JSON lines tagged with the activity id and free of secrets; identity lookups are cached."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from bot.logs import JsonFormatter
from tests import fixtures
from tests.fakes.openid import FakeOpenId
from tests.scenarios.conftest import Harness


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


async def test_log_lines_are_json_with_the_activity_id_and_no_token(
    secure_harness: Harness, openid: FakeOpenId, json_log: io.StringIO
) -> None:
    token = openid.mint(audience=fixtures.BOT_APP_ID, service_url=secure_harness.connector.url)
    secure_harness.token = token
    activity = secure_harness.activity("personal_message", "/boom")
    await secure_harness.send(activity)
    secure_harness.token = token + "x"
    await secure_harness.say("personal_message", "/help")
    lines = [json.loads(line) for line in json_log.getvalue().splitlines() if line.strip()]
    assert lines, "nothing was logged"
    assert any(line.get("activity_id") == activity["id"] for line in lines)
    everything = json_log.getvalue()
    assert token not in everything
    assert "test-secret" not in everything
    outbound = [r.headers.get("Authorization", "") for r in secure_harness.connector.requests]
    for header in filter(None, outbound):
        assert header.split(" ", 1)[1] not in everything


async def test_member_lookups_are_cached(harness: Harness) -> None:
    for _ in range(3):
        await harness.say("channel_message_mention", "help")
    lookups = [r for r in harness.connector.requests if "/members/" in r.path]
    assert len(lookups) == 1


async def test_an_unknown_member_is_treated_as_a_guest(harness: Harness) -> None:
    stranger = {"id": "29:stranger", "aadObjectId": "eeeeeeee-0000-4000-8000-000000000009", "name": "Who"}
    await harness.say("channel_message_mention", "help", from_=stranger)
    event = harness.audit()[-1]
    assert event["actor_kind"] == "guest"


async def test_a_sender_without_an_aad_id_is_refused(harness: Harness) -> None:
    result = await harness.say("personal_message", "/help", from_={"aadObjectId": None})
    assert result.texts == ["You can't do that here: the sender could not be identified."]
    assert harness.audit()[-1]["rule"] == "anonymous-nothing"


async def test_an_unidentified_sender_asking_about_rooms_learns_nothing(harness: Harness) -> None:
    result = await harness.say("personal_message", "/room status", from_={"aadObjectId": None})
    assert result.texts == ["This command acts on a room: use it inside a room's thread, or add `--room KEY`."]
    assert harness.audit()[-1]["outcome"] == "needs_room"
