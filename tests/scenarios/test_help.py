"""Help, unknown commands and malformed commands, in every kind of conversation."""

from __future__ import annotations

import json

from tests import fixtures
from tests.scenarios.conftest import Harness


async def test_help_after_a_mention_in_a_channel_replies_in_the_thread(harness: Harness) -> None:
    result = await harness.say("channel_message_mention", "help")
    assert result.status in (200, 201)
    [reply] = result.replies
    assert reply.conversation_id == fixtures.THREAD_CONVERSATION_ID
    assert reply["replyToId"] == result.sent["id"]
    assert "Commands you can run here" in reply["text"]
    assert "`/help`" in reply["text"]
    assert "/audit verify" not in reply["text"]  # officers may not verify the audit trail
    [event] = harness.audit()
    assert event["action"] == "help" and event["outcome"] == "ok"
    assert event["decision"] == "allow" and event["rule"] == "help-anyone"
    assert event["actor_aad_id"] == fixtures.OFFICER_AAD and event["actor_kind"] == "officer"
    assert event["actor_tenant_id"] == fixtures.HOME_TENANT
    assert event["conversation_id"] == fixtures.THREAD_CONVERSATION_ID
    assert event["team_id"] == fixtures.TEAM_ID and event["activity_id"] == result.sent["id"]


async def test_slash_help_in_a_one_to_one_chat(harness: Harness) -> None:
    result = await harness.say("personal_message", "/help")
    [reply] = result.replies
    assert reply.conversation_id == fixtures.PERSONAL_CONVERSATION_ID
    assert "Commands you can run here" in reply["text"]


async def test_help_in_a_group_chat(harness: Harness) -> None:
    result = await harness.say("group_chat_message", "/help")
    assert "Commands you can run here" in result.texts[0]


async def test_supervisor_and_guest_see_different_help(harness: Harness) -> None:
    supervisor = await harness.say(
        "personal_message", "/help",
        from_={"id": fixtures.SUPERVISOR_ID, "aadObjectId": fixtures.SUPERVISOR_AAD, "name": fixtures.SUPERVISOR_NAME},
    )  # fmt: skip
    guest = await harness.say("guest_message", "/help")
    assert "`/audit verify`" in supervisor.texts[0]
    assert "`/audit verify`" not in guest.texts[0]
    assert "`/help`" in guest.texts[0]
    kinds = [e["actor_kind"] for e in harness.audit()]
    assert kinds == ["supervisor", "guest"]


async def test_b2b_guest_in_the_home_tenant_is_a_guest(harness: Harness) -> None:
    # Teams reports userRole "guest" for a B2B guest, whose activities carry our tenant id.
    result = await harness.say(
        "channel_message_mention", "help",
        from_={"id": fixtures.GUEST_ID, "aadObjectId": fixtures.GUEST_AAD, "name": fixtures.GUEST_NAME},
    )  # fmt: skip
    assert "`/audit verify`" not in result.texts[0]
    assert harness.audit()[-1]["actor_kind"] == "guest"


async def test_help_for_one_command_shows_its_usage(harness: Harness) -> None:
    supervisor = {"id": fixtures.SUPERVISOR_ID, "aadObjectId": fixtures.SUPERVISOR_AAD}
    result = await harness.say("personal_message", "/help audit verify", from_=supervisor)
    assert result.texts[0].startswith("**/audit verify")
    hidden = await harness.say("personal_message", "/help audit verify")
    assert "no command `/audit verify` you can run" in hidden.texts[0]


async def test_unknown_command_suggests_the_closest(harness: Harness) -> None:
    result = await harness.say("personal_message", "/hepl")
    assert result.texts == ["I don't know that command. Did you mean `/help`? Type `/help` for the list."]
    [event] = harness.audit()
    assert event["outcome"] == "unknown_command" and event["action"] == "command.unknown"
    assert json.loads(event["arguments"]) == {"kind": "not a command", "length": 4}  # never the text


async def test_malformed_command_gets_its_usage(harness: Harness) -> None:
    result = await harness.say("personal_message", "/help --colour red")
    assert result.texts == ["unknown option `--colour`\n\nUsage: **/help \\[command\\]**"]
    [event] = harness.audit()
    assert event["outcome"] == "parse_error" and event["action"] == "help"
    assert event["decision"] is None


async def test_denied_command_is_refused_plainly_and_audited(harness: Harness) -> None:
    result = await harness.say("personal_message", "/audit verify")
    assert result.texts == ["You can't do that here: no rule allows this."]
    [event] = harness.audit()
    assert (event["action"], event["outcome"], event["decision"], event["rule"]) == (
        "audit.verify", "denied", "deny", "default-deny"
    )


async def test_supervisor_verifies_the_audit_trail_from_teams(harness: Harness) -> None:
    await harness.say("personal_message", "/help")
    supervisor = {"id": fixtures.SUPERVISOR_ID, "aadObjectId": fixtures.SUPERVISOR_AAD}
    result = await harness.say("personal_message", "/audit verify", from_=supervisor)
    assert result.texts[0].startswith("Audit trail verified: 1 events, head hash `")
    assert harness.audit()[-1]["action"] == "audit.verify"
