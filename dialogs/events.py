"""What happens on Teams events (the bot installed, removed, members changing)."""

from __future__ import annotations

from sqlmodel import Session

from core.rooms import flows, service
from dialogs.context import CommandContext, Reply
from dialogs.welcome import welcome_card


async def handle(action: str, ctx: CommandContext, *, team_name: str | None) -> Reply | None:
    """The reply to an event, if it has one."""
    if action == "event.installed":
        return Reply(card=welcome_card(team_name))
    if action == "event.uninstalled" and ctx.conversation.team_id:
        team_id = ctx.conversation.team_id

        def orphan_team_rooms(session: Session) -> None:
            ids = [r.id for r in service.rooms_in_team(session=session, team_id=team_id) if r.id is not None]
            flows.orphan(session, ids, reason="Opsroom was removed from the team")

        ctx.work.stage(orphan_team_rooms)
    return None
