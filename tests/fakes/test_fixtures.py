"""Self-tests for the Teams activity fixtures (``tests.fixtures``)."""

from __future__ import annotations

import time

import pytest
from botbuilder.schema import Activity
from botbuilder.schema.teams import TeamsChannelData

from tests.fixtures import (
    BOT_ID,
    FIXTURE_NAMES,
    GUEST_AAD,
    GUEST_TENANT,
    HOME_TENANT,
    OFFICER_AAD,
    OFFICER_ID,
    TEAM_AAD_GROUP_ID,
    TEAM_ID,
    TEAM_NAME,
    THREAD_CONVERSATION_ID,
    load,
    load_activity,
)

THREAD = THREAD_CONVERSATION_ID
SERVICE_URL = "https://smba.trafficmanager.net/uk/"

EXPECTED: dict[str, tuple[str, str, str | None]] = {
    # name: (type, tenant, conversationType)
    "channel_message_mention": ("message", HOME_TENANT, "channel"),
    "personal_message": ("message", HOME_TENANT, "personal"),
    "guest_message": ("message", GUEST_TENANT, "channel"),
    "group_chat_message": ("message", HOME_TENANT, "groupChat"),
    "conversation_update_bot_added": ("conversationUpdate", HOME_TENANT, "channel"),
    "conversation_update_members_added": ("conversationUpdate", HOME_TENANT, "channel"),
    "conversation_update_bot_removed": ("conversationUpdate", HOME_TENANT, "channel"),
    "card_submit_invoke": ("invoke", HOME_TENANT, "channel"),
    "card_submit_message": ("message", HOME_TENANT, "channel"),
}


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_fixture_loads_and_deserialises(name: str) -> None:
    expected_type, tenant, conv_type = EXPECTED[name]
    data = load(name, service_url="http://127.0.0.1:1/")
    act = Activity().deserialize(data)
    assert act.type == expected_type
    assert act.channel_id == "msteams"
    assert act.service_url == "http://127.0.0.1:1/"
    assert act.recipient.id == BOT_ID
    # SDK quirk: ConversationAccount.tenant_id maps to JSON "tenantID", Teams sends
    # "tenantId" -> it lands in additional_properties.  Read channelData.tenant.id.
    assert act.conversation.tenant_id is None
    assert act.conversation.additional_properties["tenantId"] == tenant
    assert TeamsChannelData().deserialize(act.channel_data).tenant.id == tenant
    assert act.conversation.conversation_type == conv_type
    assert act.channel_data["tenant"]["id"] == tenant
    assert act.from_property.id.startswith("29:")
    assert act.from_property.aad_object_id
    assert act.timestamp is not None and act.timestamp.tzinfo is not None
    assert abs(time.time() - act.timestamp.timestamp()) < 60
    other = load(name, service_url="http://127.0.0.1:1/")
    assert other["id"] != data["id"]


def test_fixture_specifics() -> None:
    mention = load_activity("channel_message_mention", service_url=SERVICE_URL)
    assert mention.text == "<at>Opsroom</at> help"
    assert mention.conversation.id == THREAD
    assert mention.channel_data["team"] == {"id": TEAM_ID, "name": TEAM_NAME, "aadGroupId": TEAM_AAD_GROUP_ID}
    ments = [e for e in mention.entities if e.type == "mention"]
    assert ments[0].additional_properties["mentioned"]["id"] == BOT_ID

    guest = load("guest_message", service_url=SERVICE_URL)
    assert guest["from"]["aadObjectId"] == GUEST_AAD

    bot_added = load_activity("conversation_update_bot_added", service_url=SERVICE_URL)
    assert [m.id for m in bot_added.members_added] == [BOT_ID]
    assert bot_added.channel_data["eventType"] == "teamMemberAdded"
    removed = load_activity("conversation_update_bot_removed", service_url=SERVICE_URL)
    assert [m.id for m in removed.members_removed] == [BOT_ID]
    assert removed.channel_data["eventType"] == "teamMemberRemoved"
    users = load_activity("conversation_update_members_added", service_url=SERVICE_URL)
    assert all(m.id.startswith("29:") for m in users.members_added)

    invoke = load_activity("card_submit_invoke", service_url=SERVICE_URL)
    assert invoke.name == "adaptiveCard/action"
    assert invoke.value["action"] == {
        "type": "Action.Execute",
        "title": "Help",
        "verb": "command",
        "data": {"command": "help"},
    }
    assert invoke.value["trigger"] == "manual"

    submit = load("card_submit_message", service_url=SERVICE_URL)
    assert "text" not in submit and submit["value"] == {"command": "help"} and submit["replyToId"]

    assert load("personal_message", service_url=SERVICE_URL)["text"] == "/help"
    assert load("personal_message", service_url=SERVICE_URL)["conversation"]["id"].startswith("a:")
    assert load("group_chat_message", service_url=SERVICE_URL)["text"] == "/help"


def test_load_overrides() -> None:
    d = load("channel_message_mention", service_url=SERVICE_URL, text="status 42")
    assert d["text"] == "<at>Opsroom</at> status 42"
    assert "status 42" in d["attachments"][0]["content"]
    d = load("channel_message_mention", service_url=SERVICE_URL, text="<at>Opsroom</at> x")
    assert d["text"] == "<at>Opsroom</at> x"
    d = load("personal_message", service_url=SERVICE_URL, text="/status")
    assert d["text"] == "/status"
    d = load(
        "personal_message",
        service_url=SERVICE_URL,
        id="fixed-id",
        from_={"aadObjectId": OFFICER_AAD, "name": "Renamed"},
        tenant=GUEST_TENANT,
        locale="fr-FR",
        replyToId="123",
    )
    assert d["id"] == "fixed-id"
    assert d["from"]["name"] == "Renamed" and d["from"]["id"] == OFFICER_ID
    assert d["channelData"]["tenant"]["id"] == GUEST_TENANT == d["conversation"]["tenantId"]
    assert d["locale"] == "fr-FR" and d["replyToId"] == "123"
    assert d["timestamp"].endswith("Z")
    assert "locale" not in load("personal_message", service_url=SERVICE_URL, locale=None)
