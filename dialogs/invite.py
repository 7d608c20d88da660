"""/invite: partner-agency guests into a room, under an information-sharing agreement (ISA)."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from typing import ClassVar, Literal
from zoneinfo import ZoneInfo

from pydantic import field_validator
from sqlmodel import Session

from core.agencies import service as agencies
from core.errors import Refused
from core.invitations import service as invitations
from core.invitations.service import Change, Terms
from core.tasks.when import END_OF_DAY, WhenError, local_instant, local_today, parse_when
from dialogs.cards import card, facts, text_block
from dialogs.context import CommandContext, GuestAccess, Reply
from dialogs.parsing import Args
from dialogs.registry import Router
from dialogs.room_cards import banner
from dialogs.text import Markdown, for_message

router = Router()

MAX_EMAILS = 50
DEFAULT_DAYS = 30
_EMAIL = re.compile(r"[a-z0-9._%+'-]{1,64}@[a-z0-9.-]{1,253}\.[a-z]{2,63}")
_ISA = re.compile(r"[A-Za-z0-9][A-Za-z0-9/._-]{0,63}")
_DAYS = re.compile(r"([0-9]{1,3})d")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
ROLES = {"viewer": "guest_viewer", "contributor": "guest_contributor"}
THREAD_WARNING = Markdown("A thread lives in a standard channel, which everyone in the team sees: for "
                          "partner agencies, a room in a **private channel** is advised.")
MANUAL_STEPS = Markdown(
    "**Let them in (Microsoft Graph is not configured):** 1. In Teams, the team's ⋯ menu > **Add member** > "
    "their email (they join as a guest). 2. In the room's channel, ⋯ > **Add members**. 3. They open the "
    "room and mention Opsroom once (for example `@Opsroom task list`): that ties this invitation to their "
    "account."
)


class InviteArgs(Args):
    positional: ClassVar[tuple[str, ...]] = ("agency", "emails")
    labels: ClassVar[dict[str, str]] = {"emails": "email[,email...]", "isa": "REF",
                                        "expires": "30d|YYYY-MM-DD", "basis": "TEXT"}  # fmt: skip
    agency: str
    emails: str
    isa: str
    role: Literal["viewer", "contributor"] = "viewer"
    expires: str | None = None
    no_export: bool = False
    basis: str | None = None
    room: str | None = None

    @field_validator("emails")
    @classmethod
    def _emails(cls, value: str) -> str:
        found = [e for e in re.split(r"[,;\s]+", value.lower()) if e]
        bad = [e for e in found if not _EMAIL.fullmatch(e)]
        if bad:
            raise ValueError(f"not an email address: {', '.join(bad[:5])}")
        if not found or len(set(found)) > MAX_EMAILS:
            raise ValueError(f"name 1 to {MAX_EMAILS} email addresses, separated by commas")
        return ",".join(dict.fromkeys(found))

    @field_validator("isa")
    @classmethod
    def _isa(cls, value: str) -> str:
        if not _ISA.fullmatch(value.strip()):
            raise ValueError("the ISA reference is up to 64 letters, digits and / . _ - (e.g. ISA-2026-014)")
        return value.strip()

    @field_validator("basis")
    @classmethod
    def _basis(cls, value: str | None) -> str | None:
        if value is not None and len(value) > 1000:
            raise ValueError("at most 1,000 characters")
        return value

    @property
    def addresses(self) -> list[str]:
        return self.emails.split(",")


def expiry(text: str | None, *, now: datetime, tz: ZoneInfo, max_days: int) -> datetime:
    """When access ends: `Nd` (the end of the local day N days ahead) or `YYYY-MM-DD` (the end of that
    local day); 30 days by default; never past max_days, never in the past."""
    text = (text or f"{DEFAULT_DAYS}d").strip().lower()
    days = _DAYS.fullmatch(text)
    if days is not None:
        ends = local_instant(local_today(now, tz) + timedelta(days=int(days.group(1))), END_OF_DAY, tz)
    elif _DATE.fullmatch(text):
        try:
            ends = parse_when(text, now=now, tz=tz)
        except WhenError as exc:
            raise Refused(str(exc)) from exc
    else:
        raise Refused("--expires takes a number of days (30d) or a date (YYYY-MM-DD)")
    if ends <= now:
        raise Refused("that expiry is in the past")
    if ends > local_instant(local_today(now, tz) + timedelta(days=max_days), END_OF_DAY, tz):
        raise Refused(f"guest access can last at most {max_days} days")
    return ends


@router.command("invite", action="invite", args=InviteArgs, needs_room=True)
async def invite(ctx: CommandContext, args: InviteArgs) -> Reply:
    """Invite partner-agency people into this room: /invite health nia@nhs.net --isa ISA-2026-014.

    Options: --role viewer|contributor (viewer: reads what is shared; contributor: also marks it done
    and adds notes), --expires 30d|YYYY-MM-DD (at most the force's maximum), --no-export, --basis TEXT
    (the legal basis; the room's purpose by default). Several emails, comma-separated, are one action.
    Inviting someone again changes their role, flags or expiry.
    """
    room, now = ctx.room, ctx.now()
    assert room is not None and room.id is not None
    room_id, tz = room.id, ZoneInfo(room.timezone)
    try:
        ends = expiry(args.expires, now=now, tz=tz, max_days=ctx.guest_max_days)
    except Refused as exc:
        return _refused(ctx, str(exc))
    basis = args.basis or (f"{room.key}: {room.purpose}" if room.purpose else None)
    terms = Terms(role=ROLES[args.role], isa_ref=args.isa, basis=basis, no_export=args.no_export,
                  expires_at=ends)
    ctx.note.justification = f"ISA {args.isa}" + (f"; {basis}" if basis else "")
    by = ctx.principal.aad_id or ""

    def write(session: Session) -> tuple[list[Change], tuple[str, ...]]:
        found = agencies.registry(session, args.agency.strip().lower())
        if not found:
            raise Refused(f"there is no agency {args.agency.strip().lower()}: a supervisor registers it with "
                          "/agency add")  # fmt: skip
        entry = found[0]
        changes = invitations.invite(session, room_id=room_id, agency=entry.agency.key, domains=entry.domains,
                                     emails=args.addresses, terms=terms, by=by, now=now)  # fmt: skip
        return changes, entry.tenants

    try:
        changes, tenants = await ctx.step(write, outcome="invited")
    except Refused as exc:
        return _refused(ctx, str(exc))
    ctx.note.detail = "; ".join(f"{c.email} {c.kind}" for c in changes)
    admitted: dict[str, GuestAccess] = {}
    if ctx.teams.graph_configured and room.team_id:
        for change in changes:
            if change.kind != "same" or change.invitation.graph_user_id is None:
                admitted[change.email] = await ctx.teams.admit_guest(
                    email=change.email, agency_tenants=tenants, team_id=room.team_id,
                    channel_id=_channel_of(room.reference) if room.space_kind != "thread" else None,
                    space_kind=room.space_kind)  # fmt: skip
        ids = {email: access.user_id for email, access in admitted.items() if access.user_id}
        if ids:
            ctx.work.stage(lambda s: invitations.record_accounts(s, room_id, ids))
    return Reply(card=_card(room.key, room.classification, room.space_kind, changes, admitted,
                            graph=ctx.teams.graph_configured, tz=tz))  # fmt: skip


def _refused(ctx: CommandContext, reason: str) -> Reply:
    ctx.note.outcome, ctx.note.detail = "refused", reason
    return Reply(text=for_message(f"{reason[:1].upper()}{reason[1:].rstrip('.')}."))


def _channel_of(reference: str) -> str | None:
    """The channel id of a room whose space is a channel (its conversation id, before any ;messageid=)."""
    try:
        conversation = json.loads(reference).get("conversation") or {}
    except ValueError:
        return None
    found = str(conversation.get("id") or "")
    return found.split(";", 1)[0] or None


def _card(key: str, classification: str, space_kind: str, changes: list[Change],
          admitted: dict[str, GuestAccess], *, graph: bool, tz: ZoneInfo) -> dict[str, object]:  # fmt: skip
    first = changes[0].invitation
    ends = first.expires_at.astimezone(tz).strftime("%a %d %b %Y %H:%M")
    terms = [("Agency", first.agency), ("Role", first.role.replace("guest_", "")), ("ISA", first.isa_ref),
             ("Access ends", ends), ("Export", "not allowed" if first.no_export else "allowed")]
    body = [banner(classification), text_block(f"Invitations to {key}", weight="Bolder", size="Medium"),
            facts(terms)]
    words = {"new": "invited", "changed": "terms changed", "same": "already invited on these terms"}
    for change in changes:
        line = f"{change.email}: {words[change.kind]}"
        access = admitted.get(change.email)
        if access is not None:
            line += "; " + ", ".join(access.done) if access.done else ""
            if access.problem:
                line += f". Still to do by hand: {access.problem}"
        body.append(text_block(line))
    if space_kind == "thread" and not graph:  # with Graph, admitting them says so
        body.append(text_block(THREAD_WARNING))
    if not graph:
        body.append(text_block(MANUAL_STEPS))
    return card(body)
