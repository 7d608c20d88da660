"""Replies posted as plain JSON (bot/replies.py) carry what the SDK's TurnContext and connector client would
have sent: the same addressing, the same body, key for key, for every fixture and kind of reply."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from botbuilder.core import TurnContext
from botbuilder.schema import Activity, ActivityTypes
from botframework.connector.aio import ConnectorClient
from msrest.authentication import BasicTokenAuthentication

from bot.replies import addressed, encode, reply_url
from dialogs.context import Reply
from tests import fixtures

CARD = {"type": "AdaptiveCard", "version": "1.5", "body": [{"type": "TextBlock", "text": "OP-LANTERN"}]}
REPLIES = {
    "text": Reply(text="**Commands** you can run here: `/help` — ünïcode ✓"),
    "empty": Reply(text=""),
    "card": Reply(card=CARD),
    "card and text": Reply(text="Room opened.", card=CARD),
    "attachment": Reply(text="Upload?", attachment={"contentType": "application/vnd.microsoft.teams.card.file.consent",
                                                    "name": "audit.csv", "content": {"sizeInBytes": 10}}),
}


def sdk_body(body: dict[str, Any], incoming: Activity) -> dict[str, Any]:
    """What botbuilder would POST for this reply: TurnContext's addressing, then msrest's serialiser."""
    reference = TurnContext.get_conversation_reference(incoming)
    activity = TurnContext.apply_conversation_reference(Activity().deserialize(copy.deepcopy(body)), reference)
    activity.input_hint = activity.input_hint or "acceptingInput"  # TurnContext.send_activities
    activity.id = None
    client = ConnectorClient(BasicTokenAuthentication({"access_token": "x"}), base_url=incoming.service_url)
    serialized: dict[str, Any] = client._serialize.body(activity, "Activity")
    return serialized


@pytest.mark.parametrize("fixture", [n for n in fixtures.FIXTURE_NAMES if not n.startswith("conversation_update")])
@pytest.mark.parametrize("kind", list(REPLIES))
def test_a_reply_is_addressed_and_written_as_the_sdk_writes_it(fixture: str, kind: str) -> None:
    incoming = Activity().deserialize(fixtures.load(fixture, service_url="https://smba.example/emea/"))
    body = REPLIES[kind].activity()
    assert addressed(body, incoming) == sdk_body(body, incoming)


def test_a_reply_to_a_conversation_update_goes_into_the_conversation() -> None:
    incoming = Activity().deserialize(fixtures.load("conversation_update_bot_added",
                                                    service_url="https://smba.example/emea/"))  # fmt: skip
    assert incoming.type == ActivityTypes.conversation_update
    out = addressed(Reply(text="Hello").activity(), incoming)
    assert out == sdk_body(Reply(text="Hello").activity(), incoming) and "replyToId" not in out
    assert reply_url("https://smba.example/emea/", out["conversation"]["id"], None).endswith("/activities")


def test_the_url_quotes_ids_as_msrest_does() -> None:
    url = reply_url("https://smba.example/emea/", "19:abc@thread.tacv2;messageid=17", "1:x/y")
    assert url == ("https://smba.example/emea/v3/conversations/19%3Aabc%40thread.tacv2%3Bmessageid%3D17"
                   "/activities/1%3Ax%2Fy")  # fmt: skip


def test_msrest_drops_teams_tenant_id_of_the_conversation_and_so_does_the_reply() -> None:
    """Teams writes `conversation.tenantId`; the SDK's model maps `tenantID`, so the id never reaches it and
    no reply carries it. The plain-JSON reply is written from the same model: the same body."""
    raw = fixtures.load("channel_message_mention", service_url="https://smba.example/emea/")
    assert raw["conversation"].get("tenantId")
    incoming = Activity().deserialize(raw)
    assert incoming.conversation.tenant_id is None
    assert "tenantId" not in addressed(Reply(text="x").activity(), incoming)["conversation"]


@pytest.mark.parametrize("kind", list(REPLIES))
def test_the_reply_kept_with_the_claim_is_posted_without_encoding_it_again(kind: str) -> None:
    incoming = Activity().deserialize(fixtures.load("channel_message_mention", service_url="https://smba.example/emea/"))
    body = REPLIES[kind].activity()
    out = addressed(body, incoming)
    kept = json.dumps(body)
    assert json.loads(encode(out, body, kept)) == out == json.loads(encode(out, body, None))
    assert encode(out, body, kept).endswith(kept[1:].encode())  # the kept JSON itself, after the addressing


def test_a_kept_reply_that_is_not_the_body_is_encoded_whole() -> None:
    incoming = Activity().deserialize(fixtures.load("personal_message", service_url="https://smba.example/emea/"))
    body = {"type": "message", "text": "now", "id": "old"}  # an id: addressing drops it
    out = addressed(body, incoming)
    assert "id" not in out and json.loads(encode(out, body, json.dumps(body))) == out
