"""What happens on Teams events (the bot installed, removed, members changing)."""

from __future__ import annotations

from dialogs.context import CommandContext, Reply
from dialogs.welcome import welcome_card


async def handle(action: str, ctx: CommandContext, *, team_name: str | None) -> Reply | None:
    """The reply to an event, if it has one."""
    if action == "event.installed":
        return Reply(card=welcome_card(team_name))
    return None
