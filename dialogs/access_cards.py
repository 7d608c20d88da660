"""The cards of access review: /access, the lead's notice when access ends, the weekly reminder.

Every value a person chose (names, emails, agency keys, ISA references, the basis) is escaped by the card
builders (dialogs/cards.py). Cards stay well under Teams' 40 KB: /access shows at most ROWS_MAX guests
within ROWS_BUDGET bytes and says how many more there are.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from core import text as safe
from core.invitations.cleanup import Ending
from core.invitations.models import Invitation, InvitationStatus, Removal
from core.invitations.reminder import Line, Reminder
from core.invitations.service import Entry
from core.rooms.models import Room
from dialogs.cards import card, command_button, text_block
from dialogs.context import ADAPTIVE_CARD
from dialogs.room_cards import banner
from dialogs.text import Markdown, card_markdown

ROWS_MAX = 40
ROWS_BUDGET = 30_000
REMINDER_MAX = 40
REMINDER_ROOMS = 8
"""Rooms a lead's combined reminder shows in full (40 lines each stays under Teams' 40 KB)."""
ROLE_WORDS = {"guest_viewer": "viewer", "guest_contributor": "contributor"}
REMOVAL_WORDS: dict[str, str] = {
    Removal.PENDING: "being taken out of the room's channel",
    Removal.REMOVED: "taken out of the room's channel",
    Removal.ABSENT: "not in the room's channel",
    Removal.NONE: "still in the team (a thread room): take them out by hand if no other room needs them",
    Removal.MANUAL: "take them out of the room's channel by hand",
}
ENDED_STEPS: dict[str, Markdown] = {
    Removal.PENDING: Markdown("Opsroom is taking them out of the room's channel (`/access` shows how)."),
    Removal.MANUAL: Markdown("**Take them out of the room's channel by hand** (Microsoft Graph is not "
                             "configured): the channel's ⋯ menu > **Manage channel** > **Members**."),
    Removal.NONE: Markdown("This room is a thread, so they stay in the team, which other rooms may use: if "
                           "no room needs them, take them out of the team by hand (the team's ⋯ menu > "
                           "**Manage team**)."),
}  # fmt: skip


def when(moment: datetime | None, tz: ZoneInfo, *, never: str = "never") -> str:
    """A moment in room time, as the cards show it."""
    return never if moment is None else moment.astimezone(tz).strftime("%a %d %b %Y %H:%M")


def state(entry: Entry, *, now: datetime, tz: ZoneInfo) -> str:
    """Whether their access is live, and if it ended, how and what is left to do in Teams."""
    invitation, member = entry.invitation, entry.member
    expires = invitation.expires_at if invitation is not None else member.expires_at if member else None
    if invitation is not None and invitation.status == InvitationStatus.REVOKED:
        words = f"revoked {when(invitation.revoked_at, tz, never='')}".strip()
    elif member is not None and member.revoked_at is not None:
        words = f"revoked {when(member.revoked_at, tz)}"
    elif expires is not None and expires <= now:
        words = "expired"
    elif invitation is not None and invitation.status == InvitationStatus.PENDING:
        return "invited, not yet come in"
    else:
        return "active"
    if invitation is None or invitation.removal is None:
        return words
    words += f"; {REMOVAL_WORDS.get(invitation.removal, invitation.removal)}"
    if invitation.removal == Removal.PENDING and invitation.removal_error:
        words += f" (the last attempt failed: {safe.clean(invitation.removal_error, 200)})"
    return words


def extend_button(room: Room, invitation: Invitation, *, days: int, room_flag: str) -> dict[str, Any]:
    """Extend: invite them again on the same terms, ending `days` from today (its basis is carried as the
    card's own field when it is not the room's default, so that it is kept exactly as it was)."""
    role = ROLE_WORDS.get(invitation.role, "viewer")
    flags = f"--isa {invitation.isa_ref} --role {role} --expires {days}d"
    flags += (" --no-export" if invitation.no_export else "") + room_flag
    command = f"invite {invitation.agency} {invitation.email} {flags}"
    button = command_button("Extend", command)
    if invitation.basis and invitation.basis != default_basis(room):
        field = f"basis-{invitation.id}"
        button["data"].update({"inputs": {"basis": field}, field: invitation.basis})
    return button


def default_basis(room: Room) -> str | None:
    """The basis /invite records when none is given."""
    return f"{room.key}: {room.purpose}" if room.purpose else None


def _terms(entry: Entry) -> tuple[str, str, str | None, bool, datetime | None]:
    """(agency, role, ISA, no export, expiry) of a line: its invitation's, else its membership's."""
    invitation, member = entry.invitation, entry.member
    if invitation is not None:
        i = invitation
        return i.agency, i.role, i.isa_ref, i.no_export, i.expires_at
    assert member is not None
    return member.agency or "no agency", member.role, member.isa_ref, member.no_export, member.expires_at


def _row(room: Room, entry: Entry, *, now: datetime, tz: ZoneInfo, days: int,
         room_flag: str) -> dict[str, Any]:  # fmt: skip
    invitation, member = entry.invitation, entry.member
    name = safe.clean(member.name if member is not None else None, 120)
    email = invitation.email if invitation is not None else None
    heading = card_markdown("**{who}** {email}", who=name, email=email) if name and email else \
        card_markdown("**{who}**", who=name or email or "a guest")  # fmt: skip
    agency, role, isa, no_export, expires = _terms(entry)
    terms = [agency, ROLE_WORDS.get(role, role), f"ISA {isa}" if isa else "no ISA recorded"]
    seen = member.last_seen_at if member is not None else None
    times = f"access ends {when(expires, tz)}; last seen {when(seen, tz)}"
    now_state = state(entry, now=now, tz=tz)
    terms += ["no export"] if no_export else []
    items = [text_block(heading), text_block(", ".join(terms), spacing="None"),
             text_block(times, spacing="None", isSubtle=True),
             text_block(now_state, spacing="None", isSubtle=True)]  # fmt: skip
    actions = []
    if invitation is not None and invitation.status != InvitationStatus.REVOKED:
        actions.append(command_button("Revoke", f"revoke {invitation.email}{room_flag}"))
    if invitation is not None:
        actions.append(extend_button(room, invitation, days=days, room_flag=room_flag))
    if actions:
        items.append({"type": "ActionSet", "actions": actions})
    style = {"style": "attention"} if now_state.startswith(("expired", "revoked")) else {}
    return {"type": "Container", "separator": True, "items": items, **style}


def access_card(room: Room, entries: Sequence[Entry], *, now: datetime, days: int,
                room_flag: str = "") -> dict[str, Any]:  # fmt: skip
    """/access: each guest membership and invitation, with Revoke and Extend (`days` ahead) buttons."""
    tz = ZoneInfo(room.timezone)
    rows: list[dict[str, Any]] = []
    used = 0
    for entry in entries[:ROWS_MAX]:
        row = _row(room, entry, now=now, tz=tz, days=days, room_flag=room_flag)
        used += len(json.dumps(row).encode())
        if used > ROWS_BUDGET and rows:
            break
        rows.append(row)
    count = f"{len(entries)} guest{'s' if len(entries) != 1 else ''}" if entries else "no guests"
    body = [banner(room.classification), text_block(f"Access to {room.key}", weight="Bolder", size="Medium"),
            text_block(f"{count}, as of {when(now, tz)} ({room.timezone})", isSubtle=True, spacing="None"),
            *rows]  # fmt: skip
    more = len(entries) - len(rows)
    if more:
        body.append(text_block(f"{more} more not shown: revoke them by email or agency (/revoke)",
                               isSubtle=True, separator=True))  # fmt: skip
    if not entries:
        body.append(text_block("Nobody from a partner agency is invited to this room: /invite invites them."))
    return card(body)


def _activity(content: dict[str, Any]) -> dict[str, Any]:
    return {"type": "message", "attachments": [{"contentType": ADAPTIVE_CARD, "content": content}]}


def _people(count: int) -> str:
    return f"{count} partner-agency {'guest' if count == 1 else 'guests'}"


def in_chat(key: str) -> Markdown:
    """Where the names are, when a post goes where every member of the room reads it."""
    return card_markdown("Who they are is for the lead alone: send `/access --room {key}` in your chat with "
                         "Opsroom.", key=key)  # fmt: skip


def ended_notice(ending: Ending) -> dict[str, Any]:
    """The lead's notice that guests' access ended (an outbox message): in the lead's own chat it names them;
    in the room's conversation, which every member reads, it only counts them."""
    room, tz = ending.room, ZoneInfo(ending.room.timezone)
    lead = safe.clean(room.lead_name, 120) or "the room's lead"
    body = [banner(room.classification),
            text_block(f"Access ended in {room.key}", weight="Bolder", size="Medium"),
            text_block(f"For {lead}, the room's lead:", spacing="None", isSubtle=True)]  # fmt: skip
    if ending.alone:
        for guest in ending.guests:
            who = f"{guest.email} ({safe.clean(guest.name, 120)}, {guest.agency})" if guest.name else \
                f"{guest.email} ({guest.agency})"  # fmt: skip
            body.append(text_block(f"{who}: {guest.why} {when(guest.at, tz)}"))
    else:
        whys = sorted({g.why for g in ending.guests})
        body += [text_block(f"The access of {_people(len(ending.guests))} ended ({' or '.join(whys)})."),
                 text_block(in_chat(room.key))]  # fmt: skip
    steps = ENDED_STEPS.get(ending.removal)
    if steps:
        body.append(text_block(steps, separator=True))
    return _activity(card(body, [command_button("Review access", f"access --room {room.key}")]))


def _line(line: Line, tz: ZoneInfo) -> str:
    who = f"{line.email} ({safe.clean(line.name, 120)}, {line.agency})" if line.name else \
        f"{line.email} ({line.agency})"  # fmt: skip
    parts = []
    if line.unseen:
        parts.append(f"last seen {when(line.last_seen, tz)}" if line.last_seen else "never came in")
    if line.ending:
        parts.append(f"access ends {when(line.expires_at, tz)}")
    return f"{who}: {'; '.join(parts)}"


def reminder_card(reminder: Reminder) -> dict[str, Any]:
    """The weekly access reminder to a room's lead (an outbox message): named in the lead's own chat,
    counted in the room's conversation."""
    room = reminder.room
    lead = safe.clean(room.lead_name, 120) or "the room's lead"
    body = [banner(room.classification),
            text_block(f"Weekly access review: {room.key}", weight="Bolder", size="Medium"),
            text_block(f"For {lead}, the room's lead ({reminder.week}):", spacing="None",
                       isSubtle=True)]  # fmt: skip
    body += _reminder_lines(reminder)
    if not reminder.alone:
        body.append(text_block(in_chat(room.key)))
    body.append(text_block("Revoke what is no longer needed, or extend what still is.", separator=True))
    return _activity(card(body, [command_button("Review access", f"access --room {room.key}")]))


def lead_reminder_card(reminders: list[Reminder]) -> dict[str, Any]:
    """The weekly access reminder in a lead's own chat: every room they lead that has something to list,
    one section each (at most REMINDER_ROOMS, the rest named), each with its own Review button."""
    if len(reminders) == 1:
        return reminder_card(reminders[0])
    first = reminders[0].room
    lead = safe.clean(first.lead_name, 120) or "the rooms' lead"
    strictest = max((r.room.classification for r in reminders), key=lambda c: c == "OFFICIAL-SENSITIVE")
    body = [banner(strictest),
            text_block(f"Weekly access review: {len(reminders)} rooms", weight="Bolder", size="Medium"),
            text_block(f"For {lead} ({reminders[0].week}):", spacing="None", isSubtle=True)]  # fmt: skip
    for reminder in reminders[:REMINDER_ROOMS]:
        body.append(text_block(reminder.room.key, weight="Bolder", size="Medium", separator=True))
        body += _reminder_lines(reminder)
        body.append({"type": "ActionSet", "actions": [
            command_button("Review access", f"access --room {reminder.room.key}")]})  # fmt: skip
    rest = [r.room.key for r in reminders[REMINDER_ROOMS:]]
    if rest:
        body.append(text_block(f"Also to review: {', '.join(rest)} (`/access --room KEY`).", separator=True))
    body.append(text_block("Revoke what is no longer needed, or extend what still is.", separator=True))
    return _activity(card(body))


def _reminder_lines(reminder: Reminder) -> list[dict[str, Any]]:
    tz = ZoneInfo(reminder.room.timezone)
    body: list[dict[str, Any]] = []
    unseen = [line for line in reminder.lines if line.unseen]
    ending = [line for line in reminder.lines if line.ending]
    for title, lines in (("Not seen for 14 days", unseen), ("Access ending within 7 days", ending)):
        if lines and not reminder.alone:
            body.append(text_block(f"{title}: {_people(len(lines))}", separator=True))
        elif lines:
            body.append(text_block(title, weight="Bolder", separator=True))
            body += [text_block(_line(line, tz), spacing="Small") for line in lines[:REMINDER_MAX]]
            if len(lines) > REMINDER_MAX:
                body.append(text_block(f"{len(lines) - REMINDER_MAX} more: see /access", isSubtle=True))
    return body
