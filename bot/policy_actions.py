"""The policy actions the bot asks about: the router's commands, room visibility and Teams events."""

from __future__ import annotations

from bot.routing import EVENT_ACTIONS
from dialogs.commands import build_router
from dialogs.registry import Router

# Asked by the pipeline rather than by a command: may the caller see this room, join it here.
ROOM_ACTIONS = frozenset({"room.see", "room.join"})
# Actions a command's arguments choose (`action_for`), which its declaration does not name.
VARIANT_ACTIONS = frozenset({"room.list_all", "digest.personal"})
# Asked by the dialogs while they build a reply: whose names it may show (dialogs/names.py); and by
# the digest job, whether a member's own digest may go to their personal chat (dialogs/digest_scope.py).
SHOWN_ACTIONS = frozenset({"member.see", "digest.personal"})


def required_actions(router: Router | None = None) -> frozenset[str]:
    """Every action a policy must declare and speak about for this bot to run under it."""
    commands = (router or build_router()).commands()
    return (frozenset(c.action for c in commands) | VARIANT_ACTIONS | ROOM_ACTIONS | SHOWN_ACTIONS
            | frozenset(EVENT_ACTIONS))  # fmt: skip
