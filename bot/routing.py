"""From an activity to a Route: which command or event it is, parsed."""

from __future__ import annotations

import html
import re
from typing import Any

from botbuilder.core import TurnContext
from botbuilder.schema import Activity, ActivityTypes

from bot.turn import Route
from core import text as safe
from dialogs.registry import CommandParseError, Router, UnknownCommand

_TAGS = re.compile(r"<[^>]+>")

EVENT_ACTIONS = ("event.installed", "event.uninstalled", "event.members_changed", "event.installation_add",
                 "event.installation_remove", "event.installation_update")  # fmt: skip
"""The actions Teams events are decided as (the policy must mention each)."""


def command_text(activity: Activity) -> str:
    """The message text with the bot's mention, markup and a leading slash removed."""
    raw = activity.text or ""
    if activity.recipient and activity.recipient.id:
        raw = TurnContext.remove_mention_text(activity, activity.recipient.id) or ""
    raw = html.unescape(_TAGS.sub(" ", raw)).replace("\xa0", " ")
    text = " ".join(raw.split())
    return text[1:].lstrip() if text.startswith("/") else text


def _submitted_command(value: Any) -> str | None:
    """The command carried by a card button (Action.Submit / messageBack / Action.Execute)."""
    if not isinstance(value, dict):
        return None
    action = value.get("action")
    data = action.get("data") if isinstance(action, dict) else value
    command = data.get("command") if isinstance(data, dict) else None
    return command if isinstance(command, str) else None


def route_command(router: Router, text: str) -> Route:
    """Parse command text (empty means help)."""
    text = text.strip().lstrip("/").strip() or "help"
    try:
        parsed = router.parse(text)
    except CommandParseError as exc:
        return Route("parse_error", exc.command.action, exc.command, message=exc.message,
                     arguments={"text": safe.clean(text, 500)})  # fmt: skip
    except UnknownCommand as exc:
        return Route("unknown", "command.unknown", message=exc.suggestion,
                     arguments={"text": safe.clean(text, 500)})  # fmt: skip
    arguments = parsed.args.model_dump(exclude_none=True)
    return Route("command", parsed.command.action_of(parsed.args), parsed.command, parsed.args, arguments)


def route(router: Router, activity: Activity) -> Route:
    """Decide what an inbound activity is."""
    kind = activity.type
    if kind == ActivityTypes.message:
        submitted = _submitted_command(activity.value)
        return route_command(router, submitted if submitted is not None else command_text(activity))
    if kind == ActivityTypes.invoke and activity.name == "adaptiveCard/action":
        submitted = _submitted_command(activity.value)
        if submitted is None:
            return Route("unknown", "command.unknown", arguments={"card": "no command"})
        return route_command(router, submitted)
    if kind == ActivityTypes.conversation_update:
        bot_id = activity.recipient.id if activity.recipient else None
        added = [m.id for m in activity.members_added or []]
        removed = [m.id for m in activity.members_removed or []]
        if bot_id and bot_id in added:
            return Route("event", "event.installed")
        if bot_id and bot_id in removed:
            return Route("event", "event.uninstalled")
        return Route("event", "event.members_changed",
                     arguments={"added": len(added), "removed": len(removed)})  # fmt: skip
    if kind == ActivityTypes.installation_update:
        action = activity.action if activity.action in ("add", "remove") else "update"
        return Route("event", f"event.installation_{action}")
    return Route("ignored", f"activity.{kind or 'unknown'}")
