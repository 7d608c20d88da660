"""The card posted when Opsroom is added to a team."""

from __future__ import annotations

from typing import Any

from dialogs.cards import card, command_button, text_block


def welcome_card(team_name: str | None) -> dict[str, Any]:
    """A short welcome: what Opsroom is for and where to start."""
    where = f" to **{team_name}**" if team_name else ""
    return card(
        [
            text_block(f"Opsroom has been added{where}.", weight="Bolder", size="Medium"),
            text_block(
                "Open an operation room from any channel, invite partner agencies with "
                "scoped, time-limited access, and keep the tasking in one place. "
                "Every request is recorded in a tamper-evident audit trail."
            ),
            text_block("Start with `/help`, or mention **@Opsroom** followed by a command."),
        ],
        [command_button("Show commands", "help")],
    )
