"""The bot remembers its personal chat with each person who writes to it, for their own digest."""

from __future__ import annotations

import json
from datetime import timedelta

from core.db import Database
from tests import fixtures
from tests.scenarios.conftest import Clock, Harness
from tests.scenarios.rooms_support import rows


async def test_a_personal_chat_is_recorded_once_and_follows_its_person(
    rooms: Harness, db: Database, clock: Clock
) -> None:
    await rooms.say("personal_message", "hi")
    [(aad_id, conversation_id, reference, first)] = rows(db, "SELECT aad_id, conversation_id, reference, updated_at "
                                                            "FROM personal_chat")  # fmt: skip
    assert (aad_id, conversation_id) == (fixtures.OFFICER_AAD, fixtures.PERSONAL_CONVERSATION_ID)
    stored = json.loads(reference)
    assert stored["serviceUrl"] == rooms.connector.url and stored["conversation"]["id"] == conversation_id
    assert stored["conversation"]["tenantID"] == fixtures.HOME_TENANT and "activityId" not in stored

    clock.now += timedelta(hours=1)
    await rooms.say("personal_message", "/help")  # the same chat: nothing is written
    assert rows(db, "SELECT updated_at FROM personal_chat") == [(first,)]

    moved = {**rooms.activity("personal_message", "hi")["conversation"], "id": "a:1AdaNewChat"}
    await rooms.say("personal_message", "hi", conversation=moved)
    assert rows(db, "SELECT conversation_id FROM personal_chat") == [("a:1AdaNewChat",)]
    # A channel message records no personal chat.
    await rooms.say("channel_message_mention", "help", from_={"id": fixtures.OFFICER2_ID,
                                                              "aadObjectId": fixtures.OFFICER2_AAD})
    assert rows(db, "SELECT count(*) FROM personal_chat") == [(1,)]
