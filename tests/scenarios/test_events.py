"""Teams events and card submits: welcome card, membership changes, buttons routed like typed commands."""

from __future__ import annotations

from tests import fixtures
from tests.scenarios.conftest import Harness


async def test_installing_the_bot_in_a_team_posts_a_welcome_card(harness: Harness) -> None:
    result = await harness.say("conversation_update_bot_added")
    assert result.status == 201
    [card] = result.replies
    attachment = card["attachments"][0]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    body = attachment["content"]["body"]
    assert body[0]["text"] == f"Opsroom has been added to **{fixtures.TEAM_NAME}**."
    assert attachment["content"]["actions"][0]["data"] == {"command": "help"}
    [event] = harness.audit()
    assert (event["action"], event["outcome"], event["activity_type"]) == (
        "event.installed", "ok", "conversationUpdate"
    )


async def test_members_added_is_audited_without_a_reply(harness: Harness) -> None:
    result = await harness.say("conversation_update_members_added")
    assert result.status == 201 and result.replies == []
    [event] = harness.audit()
    assert event["action"] == "event.members_changed" and event["outcome"] == "ok"


async def test_bot_removed_is_audited(harness: Harness) -> None:
    result = await harness.say("conversation_update_bot_removed")
    assert result.status == 201 and result.replies == []
    assert harness.audit()[0]["action"] == "event.uninstalled"


async def test_card_button_as_a_message_runs_the_command(harness: Harness) -> None:
    result = await harness.say("card_submit_message")
    assert "Commands you can run here" in result.texts[0]
    assert harness.audit()[0]["action"] == "help"


async def test_adaptive_card_execute_runs_the_command_and_answers_the_invoke(harness: Harness) -> None:
    result = await harness.say("card_submit_invoke")
    assert result.status == 200
    assert result.body["statusCode"] == 200
    assert result.body["type"] == "application/vnd.microsoft.activity.message"
    assert "Commands you can run here" in result.body["value"]
    assert "Commands you can run here" in result.texts[0]
    [event] = harness.audit()
    assert (event["action"], event["activity_type"]) == ("help", "invoke/adaptiveCard/action")


async def test_a_denied_card_execute_still_gets_an_invoke_answer(harness: Harness) -> None:
    activity = harness.activity("card_submit_invoke")
    activity["value"]["action"]["data"] = {"command": "audit verify"}
    result = await harness.send(activity)
    assert result.status == 200
    assert result.body["value"] == "You can't do that here: no rule allows this."
    assert harness.audit()[0]["outcome"] == "denied"


async def test_other_activity_types_are_acknowledged_and_audited(harness: Harness) -> None:
    typing = harness.activity("personal_message", type="typing", text=None)
    result = await harness.send(typing)
    assert result.status == 201 and result.replies == []
    [event] = harness.audit()
    assert (event["action"], event["outcome"]) == ("activity.typing", "ignored")


async def test_a_bare_mention_shows_help(harness: Harness) -> None:
    result = await harness.say("channel_message_mention", "<at>Opsroom</at>")
    assert "Commands you can run here" in result.texts[0]
