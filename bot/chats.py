"""Personal chats: the bot remembers its 1:1 chat with each person who writes to it or installs it for
themselves (core.outbox.models.PersonalChat), so that their own digest has somewhere to go."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime

from botbuilder.core import TurnContext
from sqlmodel import Session

from bot.turn import Turn
from core.outbox import chats
from core.outbox.models import PersonalChat
from core.outbox.service import target_of


def reference_of(turn: Turn) -> str:
    """A stored reference (JSON) to the conversation of this activity, for posts into it later."""
    reference = TurnContext.get_conversation_reference(turn.activity)
    reference.activity_id = None  # the chat, not this message
    if reference.conversation is not None and turn.conversation.tenant_id:
        reference.conversation.tenant_id = turn.conversation.tenant_id  # the SDK drops it on the way in
    return json.dumps(reference.serialize())


def remember(turn: Turn, stored: PersonalChat | None, now: datetime) -> Callable[[Session], None] | None:
    """The write that records this personal chat, when it is new to the bot or has moved (another
    conversation or service URL); None when the stored one is current, so most messages write nothing."""
    principal, conversation_id = turn.principal, turn.conversation.conversation_id
    if turn.conversation.conversation_type != "personal" or principal is None or not principal.aad_id:
        return None
    if conversation_id is None or not turn.activity.service_url:
        return None
    if stored is not None and target_of(stored.reference)[:2] == (conversation_id, turn.activity.service_url):
        return None
    aad_id, tenant_id, reference = principal.aad_id, turn.conversation.tenant_id, reference_of(turn)

    def write(session: Session) -> None:
        chats.remember(session=session, aad_id=aad_id, tenant_id=tenant_id, conversation_id=conversation_id,
                       reference=reference, now=now)  # fmt: skip

    return write
