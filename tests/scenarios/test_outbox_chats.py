"""Personal chats the outbox stopped posting to (Teams answered 403) work again once their person writes."""

from __future__ import annotations

from datetime import UTC, datetime

from core.outbox import service as outbox
from tests import fixtures
from tests.scenarios.conftest import Harness


async def test_a_blocked_personal_chat_is_unblocked_when_its_person_writes(harness: Harness) -> None:
    chat, now = fixtures.PERSONAL_CONVERSATION_ID, datetime.now(UTC)
    harness.db.transaction(lambda s: outbox.block(session=s, conversation_id=chat, reason="HTTP 403", now=now))
    result = await harness.say("personal_message", "/help")
    assert result.texts[0].startswith("Commands you can run here")
    assert harness.db.transaction(lambda s: outbox.blocked(session=s, conversation_id=chat)) is None
    # Others' chats stay as they were: only the person's own message lifts their block.
    other = "a:1SomeoneElse"
    harness.db.transaction(lambda s: outbox.block(session=s, conversation_id=other, reason="HTTP 403", now=now))
    await harness.say("personal_message", "/help")
    assert harness.db.transaction(lambda s: outbox.blocked(session=s, conversation_id=other)) is not None
