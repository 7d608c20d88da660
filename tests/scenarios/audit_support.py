"""Helpers for /audit scenarios: searches in a personal chat, the card's events and buttons, file consent."""

from __future__ import annotations

import re
from typing import Any

from tests import fixtures
from tests.scenarios.access_support import buttons, texts
from tests.scenarios.conftest import Exchange, Harness
from tests.scenarios.rooms_support import SUPERVISOR

_EVENT = re.compile(r"event (\d+)")


async def ask(harness: Harness, text_: str, who: dict[str, Any] | None = None) -> Exchange:
    """A command in a personal chat with Opsroom, by the supervisor unless who says otherwise."""
    return await harness.say("personal_message", text_, from_=who or SUPERVISOR)


async def press(harness: Harness, button: dict[str, Any], who: dict[str, Any] | None = None) -> Exchange:
    """Press a card button in the personal chat."""
    personal = fixtures.load("personal_message", service_url=harness.connector.url)["conversation"]
    activity = harness.activity("card_submit_message", value=button["data"], conversation=personal,
                                from_=who or SUPERVISOR)  # fmt: skip
    return await harness.send(activity)


def the_card(exchange: Exchange) -> dict[str, Any]:
    [reply] = exchange.replies
    content: dict[str, Any] = reply["attachments"][0]["content"]
    return content


def seqs(exchange: Exchange) -> list[int]:
    """The seqs of the events a /audit card shows, in order."""
    return [int(m[1]) for t in texts(the_card(exchange)) if (m := _EVENT.fullmatch(t))]


def button(exchange: Exchange, title: str) -> dict[str, Any] | None:
    return next((b for b in buttons(the_card(exchange)) if b.get("title") == title), None)


def consent_answer(harness: Harness, export_id: int, *, accept: bool, upload: dict[str, Any] | None,
                   who: dict[str, Any] | None = None) -> dict[str, Any]:  # fmt: skip
    """Teams' fileConsent/invoke for an answer to a FileConsentCard, in the personal chat."""
    personal = fixtures.load("personal_message", service_url=harness.connector.url)
    value: dict[str, Any] = {"type": "fileUpload", "action": "accept" if accept else "decline",
                             "context": {"export": export_id}}  # fmt: skip
    if upload is not None:
        value["uploadInfo"] = upload
    activity = harness.activity("card_submit_invoke", value=value, conversation=personal["conversation"],
                                channelData=personal.get("channelData"), from_=who or SUPERVISOR)  # fmt: skip
    activity["name"] = "fileConsent/invoke"
    return activity
