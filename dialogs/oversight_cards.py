"""The cards of misuse monitoring: an alert as supervisors see it, and /oversight rules.

An alert names a person and what they did, so it carries the OFFICIAL-SENSITIVE banner and goes only to
the supervisors' conversation. Everything that came from people (names, room keys, reasons) is escaped
by the card builders (dialogs/cards.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from core.oversight.engine import Alert
from core.oversight.models import OversightMute, OversightTarget
from core.oversight.rules import RULE_IDS, Rule, Rules
from dialogs.cards import card, command_button, facts, text_block
from dialogs.context import ADAPTIVE_CARD
from dialogs.room_cards import banner
from dialogs.text import Markdown, card_markdown, code

SENSITIVE = "OFFICIAL-SENSITIVE"
PROMPT = Markdown("An alert is a prompt to look, never a finding: the audit trail holds every event "
                  "behind it.")  # fmt: skip


def when(moment: datetime, tz: ZoneInfo) -> str:
    """A moment in the bot's time zone, as the cards show it."""
    return moment.astimezone(tz).strftime("%a %d %b %Y %H:%M")


def _activity(content: dict[str, Any]) -> dict[str, Any]:
    return {"type": "message", "attachments": [{"contentType": ADAPTIVE_CARD, "content": content}]}


def alert_activity(alert: Alert, rule: Rule | None, rooms: Sequence[str], *,
                   timezone: str = "Europe/London") -> dict[str, Any]:  # fmt: skip
    """The post of one alert into the supervisors' conversation: rule, who, what, when, rooms, how to mute."""
    tz = ZoneInfo(timezone)
    title = rule.title if rule is not None else alert.rule
    period = when(alert.at, tz)
    if alert.first_at != alert.at:
        period = f"{when(alert.first_at, tz)} to {period}"
    who = f"Entra id {alert.subject}"
    if alert.subject_name:
        who = f"{alert.subject_name} ({who})"
    events = f"{alert.count} matching, audit events {alert.first_seq} to {alert.last_seq}"
    shown = [("Who", who), ("What", alert.summary), ("When", period),
             ("Rooms", ", ".join(rooms) or "none named"), ("Events", events)]  # fmt: skip
    look = Markdown(f"Look at what they did: {code(f'/audit --user {alert.subject} --since 7d')}")
    mute = code(f"/oversight mute {alert.rule} 2h --reason ...")
    heading = card_markdown("Misuse alert: **{title}**", title=title)
    body = [banner(SENSITIVE), text_block(heading, size="Medium"), facts(shown), text_block(look),
            text_block(Markdown(f"Silence this rule for a while: {mute}")),
            text_block(PROMPT, isSubtle=True)]  # fmt: skip
    return _activity(card(body, [command_button("Rules", "oversight rules")]))


def _state(rule: Rule, mute: OversightMute | None, tz: ZoneInfo) -> str:
    if not rule.enabled:
        return "off (enabled = false in the rules file)"
    if mute is None:
        return "on"
    by = mute.by_name or mute.by_aad_id
    return f"muted until {when(mute.until, tz)} by {by}: {mute.reason}"


def rules_card(rules: Rules, mutes: Mapping[str, OversightMute], target: OversightTarget | None, *,
               timezone: str = "Europe/London") -> dict[str, Any]:  # fmt: skip
    """/oversight rules: each rule, what it looks for and its figures, whether it is on or muted, and where
    alerts go."""
    tz = ZoneInfo(timezone)
    body: list[dict[str, Any]] = [banner(SENSITIVE), text_block("Misuse monitoring rules", weight="Bolder",
                                                                  size="Medium")]  # fmt: skip
    if target is None:
        body.append(text_block(Markdown("**Alerts go nowhere yet**: a supervisor runs `/oversight here` in "
                                        "the conversation supervisors read.")))  # fmt: skip
    else:
        registered = when(target.registered_at, tz)
        body.append(text_block(f"Alerts go to the conversation registered on {registered} (by Entra id "
                               f"{target.registered_by})."))  # fmt: skip
    for rule in rules.rules:
        state = _state(rule, mutes.get(rule.id), tz)
        shown = [("Rule", rule.id), ("Alerts", rule.describe()), ("State", state)]
        body.append({"type": "Container", "separator": True, "items": [
            text_block(card_markdown("**{title}**", title=rule.title)), facts(shown)]})  # fmt: skip
    missing = [rule_id for rule_id in RULE_IDS if rules.get(rule_id) is None]
    if missing:
        body.append(text_block(f"Not run (left out of the rules file): {', '.join(missing)}.", isSubtle=True))
    body.append(text_block(Markdown("Mute one: `/oversight mute RULE 2h --reason TEXT` (at most 30 days); "
                                    "end it: `/oversight unmute RULE --reason TEXT`.")))  # fmt: skip
    return card(body)
