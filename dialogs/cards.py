"""Adaptive Card building blocks: pure functions returning dicts."""

from __future__ import annotations

from typing import Any

SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
VERSION = "1.5"

_MARKDOWN_SPECIALS = "\\`*_{}[]()#+-.!|<>~"


def escape(text: str) -> str:
    """Make user text show literally in Teams Markdown and card TextBlocks."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return "".join("\\" + ch if ch in _MARKDOWN_SPECIALS and ch not in "<>" else ch for ch in text)


def text_block(text: str, **extra: Any) -> dict[str, Any]:
    """A wrapping TextBlock."""
    return {"type": "TextBlock", "text": text, "wrap": True, **extra}


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
