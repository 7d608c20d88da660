"""The bot's full command set, gathered from every feature module."""

from __future__ import annotations

from dialogs import access, agencies, audit, digest, help, invite, rooms, tasks
from dialogs.registry import Router


def build_router() -> Router:
    """One router with every feature's commands; /help last, since it lists them."""
    root = Router()
    root.include(access.router)
    root.include(agencies.router)
    root.include(audit.router)
    root.include(digest.router)
    root.include(invite.router)
    root.include(rooms.router)
    root.include(tasks.router)
    help.register(root)
    return root
