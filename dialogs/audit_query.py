"""/audit: the audit trail, searched by supervisors (any room) and a room's lead (their room), page by page.

The results name people, so they are shown only in the caller's personal chat with Opsroom. A page is
anchored at the head when the search began (`--upto`, carried by the card's buttons): events written
meanwhile, this search's own included, never shift the pages. Next and Previous are keyset steps
(`--before` / `--after` a seq), as fast on page 500 as on page 1. Each page asked for is an audited
consultation; a search that names the caller themselves, or a room they belong to, says so in its
event (`own`), for the misuse rules.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session, select

from core.audit import filters, service
from core.audit.filters import AuditFilter
from core.audit.when import period
from core.invitations.models import Invitation
from dialogs import audit_words as words
from dialogs.audit_args import AuditArgs, AuditFilterArgs
from dialogs.cards import card, command_button, text_block
from dialogs.context import CommandContext, Reply
from dialogs.registry import Router
from dialogs.text import escape_message

router = Router()

PAGE = 12
_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
PERSONAL_ONLY = "The audit trail names people, so it is shown only in your personal chat with Opsroom"


@dataclass(frozen=True)
class Search:
    """A search as resolved: the filter, and the name of the person it is about (when it names one)."""

    filter: AuditFilter
    user_name: str | None = None


class Unresolved(Exception):
    """A filter names something that cannot be found (the message says what, in Markdown)."""


async def resolve(ctx: CommandContext, args: AuditFilterArgs) -> Search:
    """The filter the arguments ask for, in the room the request is about (a lead's is theirs)."""
    now, tz = ctx.now(), ctx.timezone
    try:
        since, until = period(args.since, args.until, now=now, timezone=tz)
    except ValueError as exc:
        raise Unresolved(escape_message(str(exc))) from exc
    user, name = await _user(ctx, args.user) if args.user else (None, None)
    room_key = ctx.room.key if ctx.room is not None else None
    found = AuditFilter(user=user, room_key=room_key, since=since, until=until, denied=args.denied,
                        action=args.action, agency=args.agency)  # fmt: skip
    return Search(found, name)


async def _user(ctx: CommandContext, who: str) -> tuple[str, str | None]:
    """An object id as given; else a person Teams finds here (an @mention, email or UPN); else a guest
    invited under that email, once their invitation is bound to an account."""
    wanted = who.strip().lstrip("@").strip()
    if _GUID.fullmatch(wanted):
        return wanted.lower(), None
    person = await ctx.teams.resolve(wanted)
    if person is not None:
        return person.aad_id.lower(), person.name
    if "@" in wanted:
        email = wanted.lower()

        def bound(session: Session) -> str | None:
            stmt = select(Invitation.bound_aad_id).where(Invitation.email == email,
                                                         Invitation.bound_aad_id.isnot(None))  # type: ignore[union-attr]  # fmt: skip
            return session.exec(stmt).first()

        aad_id = await ctx.db.run(bound, readonly=True)
        if aad_id:
            return aad_id.lower(), wanted
    shown = escape_message(wanted[:80])
    raise Unresolved(f"I can't find {shown}: @mention them, use their email, or their Entra object id.")


def owned(ctx: CommandContext, f: AuditFilter) -> str | None:
    """Whether the search is about the caller's own activity ("self") or a room they are in ("room")."""
    if f.user is not None and ctx.principal.aad_id and f.user == ctx.principal.aad_id.lower():
        return "self"
    if f.room_key is not None and ctx.resource.role is not None:
        return "room"
    return None


@router.command("audit", action="audit.query", args=AuditArgs)
async def audit_query(ctx: CommandContext, args: AuditArgs) -> Reply:
    """Search the audit trail: who did what, where, what was decided, newest first.

    Supervisors search every room; a room's lead searches their room (`--room KEY`). Shown in your
    personal chat only. `--since`/`--until` take 30m, 24h, 7d, 2w or a date; `--action` takes an
    action (task.show) or a family (task.*).
    """
    if ctx.conversation.conversation_type != "personal":
        ctx.note.outcome = "refused"
        where = f" `/audit --room {ctx.room.key}`" if ctx.room is not None else " `/audit`"
        return Reply(text=f"{PERSONAL_ONLY}: ask there,{where}.")
    try:
        search = await resolve(ctx, args)
    except Unresolved as exc:
        ctx.note.outcome, ctx.note.detail = "refused", "a filter names nothing found"
        return Reply(text=str(exc))
    f = search.filter
    own = owned(ctx, f)
    if own is not None:
        ctx.note.arguments["own"] = own
    if f.user is not None:
        ctx.note.arguments["user_aad_id"] = f.user

    def read(session: Session) -> filters.Page:
        head = service.head(session).seq
        upto = head if args.upto is None else min(args.upto, head)
        return filters.page(session, f, upto=upto, before=args.before, after=args.after, limit=PAGE)

    page = await ctx.db.run(read, readonly=True)
    shown = [row.seq for row in page.events]
    ctx.note.detail = (f"{len(shown)} events shown (seq {shown[-1]}..{shown[0]}), as of seq {page.upto}"
                       if shown else f"no events, as of seq {page.upto}")  # fmt: skip
    return Reply(card=page_card(page, search, ZoneInfo(ctx.timezone)))


def _again(f: AuditFilter, **at: int) -> str:
    """The command a paging button runs: the same resolved filter (absolute times), from another seq."""
    parts = ["audit"]
    if f.user:
        parts.append(f"--user {f.user}")
    if f.room_key:
        parts.append(f"--room {f.room_key}")
    for flag, moment in (("since", f.since), ("until", f.until)):
        if moment is not None:
            parts.append(f"--{flag} {_iso(moment)}")
    if f.denied:
        parts.append("--denied")
    if f.action:
        parts.append(f"--action {f.action}")
    if f.agency:
        parts.append(f"--agency {f.agency}")
    parts += [f"--{name} {value}" for name, value in at.items()]
    return " ".join(parts)


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def page_card(page: filters.Page, search: Search, tz: ZoneInfo) -> dict[str, Any]:
    """The page as an Adaptive Card: the search in words, each event in two lines, Previous/Next."""
    f = search.filter
    body = [
        text_block("Audit trail", weight="Bolder", size="Medium"),
        text_block(words.described(f, tz, user_name=search.user_name), isSubtle=True),
    ]
    if not page.events:
        body.append(text_block("No events match." if not (page.newer or page.older) else "No more events."))
    for row in page.events:
        body.append({"type": "Container", "separator": True, "spacing": "Small", "items": [
            text_block(f"{words.when(row, tz)} · {words.who(row)}", weight="Bolder", size="Small"),
            text_block(f"{words.what(row)}: {words.decided(row)}", size="Small", spacing="None"),
            text_block(f"event {row.seq}", isSubtle=True, size="Small", spacing="None"),
        ]})  # fmt: skip
    body.append(text_block(f"As of event {page.upto}: run the search again for newer events.",
                           isSubtle=True, size="Small", separator=True))  # fmt: skip
    actions = []
    if page.newer and page.events:
        actions.append(command_button("Previous", _again(f, after=page.events[0].seq, upto=page.upto)))
    if page.older and page.events:
        actions.append(command_button("Next", _again(f, before=page.events[-1].seq, upto=page.upto)))
    return card(body, actions)

