"""From an activity to a Route: which command or event it is, parsed."""

from __future__ import annotations

import html
import re
from typing import Any

from botbuilder.schema import Activity, ActivityTypes

from bot.turn import Route
from dialogs.audit_export import CONSENT, ConsentArgs
from dialogs.registry import CommandParseError, Router, UnknownCommand

# Only mention markup: any other <...> in the text is what the person typed (Agents Playground sends it as
# typed; Teams sends it as &lt;...&gt;). [^<>]: linear on a run of "<" (a 256 KB one once took 38 s).
_TAGS = re.compile(r"</?at(?:\s[^<>]*)?>", re.IGNORECASE)

EVENT_ACTIONS = ("event.installed", "event.uninstalled", "event.members_changed", "event.installation_add",
                 "event.installation_remove", "event.installation_update")  # fmt: skip
"""The actions Teams events are decided as (the policy must mention each)."""


def _without_mentions_of(activity: Activity, bot_id: str | None) -> str:
    """The text with the bot's @mentions removed, literally.

    Workaround: TurnContext.remove_mention_text uses the mention's text, which the sender
    controls, as a regular expression (a crafted name backtracks for minutes, and regex
    characters in a name break the removal); here it is removed as plain text.
    """
    text = activity.text or ""
    if not bot_id:
        return text
    for entity in activity.entities or []:
        if entity.type != "mention":
            continue
        properties = entity.additional_properties or {}
        mentioned = properties.get("mentioned")
        said = properties.get("text")
        if isinstance(mentioned, dict) and mentioned.get("id") == bot_id and isinstance(said, str) and said:
            text = text.replace(said, " ")
    return text


def command_text(activity: Activity) -> str:
    """The message text with the bot's mention, mention markup (`<at>Ben</at>` is `Ben`), entities and a
    leading slash removed; `<`, `>` and everything else typed are kept."""
    raw = _without_mentions_of(activity, activity.recipient.id if activity.recipient else None)
    raw = html.unescape(_TAGS.sub(" ", raw)).replace("\xa0", " ")
    text = " ".join(raw.split())
    return text[1:].lstrip() if text.startswith("/") else text


def _submitted_command(value: Any) -> tuple[str, dict[str, str]] | None:
    """The command carried by a card button (Action.Submit / messageBack / Action.Execute), and the fields
    its card's inputs fill: `"inputs": {"text": "note-12"}` in the button's data means the input with id
    `note-12` (submitted beside it) fills the command's `text`."""
    if not isinstance(value, dict):
        return None
    action = value.get("action")
    data = action.get("data") if isinstance(action, dict) else value
    command = data.get("command") if isinstance(data, dict) else None
    if not isinstance(command, str):
        return None
    assert isinstance(data, dict)
    wanted = data.get("inputs")
    inputs = {}
    for field, input_id in (wanted.items() if isinstance(wanted, dict) else ()):
        typed = data.get(input_id) if isinstance(input_id, str) else None
        if isinstance(field, str) and isinstance(typed, str):
            inputs[field] = typed
    return command, inputs


def route_command(router: Router, text: str, given: dict[str, str] | None = None) -> Route:
    """Parse command text (empty means help); given: fields a card's inputs filled."""
    text = text.strip().lstrip("/").strip() or "help"
    try:
        parsed = router.parse(text, given)
    except CommandParseError as exc:
        # The append-only audit cannot be corrected or erased: what was typed is not kept when it did
        # not parse, only which command it was and how long (DPA 2018 s62 asks no more).
        length = len(text) + sum(len(value) for value in (given or {}).values())
        return Route("parse_error", exc.command.action, exc.command, message=exc.message,
                     arguments={"command": exc.command.words, "length": length})  # fmt: skip
    except UnknownCommand as exc:  # free text, or a typo: its kind and length only
        return Route("unknown", "command.unknown", message=exc.suggestion,
                     arguments={"kind": "not a command", "length": len(text)})  # fmt: skip
    arguments = parsed.args.audited()
    return Route("command", parsed.command.action_of(parsed.args), parsed.command, parsed.args, arguments)


def _file_consent(value: Any) -> Route:
    """A person's answer to a FileConsentCard: the export its context names, and where Teams says to upload
    it. Only this path fills the upload fields: no typed command or card button can."""
    value = value if isinstance(value, dict) else {}
    context = value.get("context") if isinstance(value.get("context"), dict) else {}
    info = value.get("uploadInfo") if isinstance(value.get("uploadInfo"), dict) else {}
    number = context.get("export") if isinstance(context, dict) else None
    if not isinstance(number, int) or isinstance(number, bool):
        return Route("unknown", "command.unknown", arguments={"file_consent": "no export named"})
    accept = value.get("action") == "accept"

    def text(key: str) -> str | None:
        found = info.get(key) if isinstance(info, dict) else None
        return found if isinstance(found, str) and found else None

    args = ConsentArgs(export=number, accept=accept, upload_url=text("uploadUrl"),
                       content_url=text("contentUrl"), name=text("name"), unique_id=text("uniqueId"),
                       file_type=text("fileType"))  # fmt: skip
    return Route("command", CONSENT.action, CONSENT, args,
                 arguments={"export": number, "answer": "accept" if accept else "decline"})  # fmt: skip


def route(router: Router, activity: Activity) -> Route:
    """Decide what an inbound activity is."""
    kind = activity.type
    if kind == ActivityTypes.message:
        submitted = _submitted_command(activity.value)
        if submitted is not None:
            return route_command(router, *submitted)
        return route_command(router, command_text(activity))
    if kind == ActivityTypes.invoke and activity.name == "adaptiveCard/action":
        submitted = _submitted_command(activity.value)
        if submitted is None:
            return Route("unknown", "command.unknown", arguments={"card": "no command"})
        return route_command(router, *submitted)
    if kind == ActivityTypes.invoke and activity.name == "fileConsent/invoke":
        return _file_consent(activity.value)
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
