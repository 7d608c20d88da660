"""The card posted when Opsroom is added to a team."""

from __future__ import annotations

from typing import Any

from dialogs.cards import card, command_button, text_block
from dialogs.text import Markdown, card_markdown


def welcome_card(team_name: str | None) -> dict[str, Any]:
    """A short welcome: what Opsroom is for and where to start."""
    added = "Opsroom has been added."
    if team_name:
        added = card_markdown("Opsroom has been added to **{team}**.", team=team_name)
    return card(
        [
            text_block(added, weight="Bolder", size="Medium"),
            text_block(
                "Open an operation room from any channel, invite partner agencies with "
                "scoped, time-limited access, and keep the tasking in one place. "
                "Every request is recorded in a tamper-evident audit trail."
            ),
            text_block(Markdown("Start with `/help`, or mention **@Opsroom** followed by a command.")),
        ],
        [command_button("Show commands", "help")],
    )
