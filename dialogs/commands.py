"""The bot's full command set, gathered from every feature module."""

from __future__ import annotations

from core.oversight import rules as oversight_rules
from core.oversight.rules import Rules
from dialogs import access, agencies, audit, digest, help, invite, oversight, room_hours, rooms, tasks
from dialogs.registry import Router


def build_router(rules: Rules | None = None) -> Router:
    """One router with every feature's commands; /help last, since it lists them.

    rules: the misuse rules the bot runs (/oversight lists and mutes them); default, the shipped ones."""
    root = Router()
    root.include(access.router)
    root.include(agencies.router)
    root.include(audit.router)
    root.include(digest.router)
    root.include(invite.router)
    root.include(oversight.router(rules or oversight_rules.load()))
    root.include(room_hours.router)
    root.include(rooms.router)
    root.include(tasks.router)
    help.register(root)
    return root
