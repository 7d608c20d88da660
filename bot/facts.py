"""Loaders for the facts commands declare (dialogs.registry.Command.facts), run before the policy step."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from bot.pipeline import Loader
from bot.turn import Turn
from core import text as safe
from dialogs.text import escape_message


async def person(turn: Turn, field: str) -> None:
    """The person an argument names (an @mention, email or UPN, or an object id), classified by identity;
    the policy sees their kind as `target_kind`."""
    who = getattr(turn.route.args if turn.route else None, field, None)
    if not isinstance(who, str) or not who.strip() or turn.teams is None:
        return
    found = await turn.teams.resolve(who)
    if found is None:  # the policy decides on an unknown person; a refusal says why
        named = escape_message(safe.clean(who, 80) or "")
        turn.facts.notes.append(f"I can't find {named} here: mention them or use their email")
        turn.resource = replace(turn.resource, target_kind="unknown")
        return
    turn.facts.person = found
    turn.resource = replace(turn.resource, target_kind=found.kind)
    if turn.route is not None:  # who was meant, as Entra knows them, not only what was typed
        turn.route.arguments[f"{field}_aad_id"] = found.aad_id


async def justification(turn: Turn, field: str) -> None:
    """The argument justifying the request (a reason): recorded, and `has_justification` for the policy."""
    value = getattr(turn.route.args if turn.route else None, field, None)
    given = isinstance(value, str) and bool(value.strip())
    if given:
        turn.note.justification = str(value).strip()
    turn.resource = replace(turn.resource, has_justification=given)


LOADERS: Mapping[str, Loader] = {"person": person, "justification": justification}
