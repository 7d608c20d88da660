"""Adaptive Card building blocks: pure functions returning dicts.

Text is escaped by default (dialogs/text.py, card rules): pass `Markdown` (our own constants, or
`card_markdown(template, **people's_text)`) for text that is Markdown on purpose.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from dialogs.text import for_card

SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
VERSION = "1.5"


def text_block(text: str, **extra: Any) -> dict[str, Any]:
    """A wrapping TextBlock showing text literally (or as Markdown, if it is `Markdown`)."""
    return {"type": "TextBlock", "text": for_card(text), "wrap": True, **extra}


def facts(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """A FactSet; titles and values shown literally unless they are `Markdown`."""
    return {"type": "FactSet", "facts": [{"title": for_card(k), "value": for_card(v)} for k, v in pairs]}


def command_button(title: str, command: str) -> dict[str, Any]:
    """A button that runs a command, as if typed (Action.Submit, routed like a message)."""
    return {"type": "Action.Submit", "title": title, "data": {"command": command}}


def card(body: list[dict[str, Any]], actions: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """An Adaptive Card."""
    out: dict[str, Any] = {"type": "AdaptiveCard", "$schema": SCHEMA, "version": VERSION,
                           "body": body}  # fmt: skip
    if actions:
        out["actions"] = actions
    return out
