"""/room open | list | status | close | reopen | lead."""

from __future__ import annotations

import logging
import re
from typing import ClassVar, Literal

from pydantic import field_validator
from sqlmodel import Session

from core import text as safe
from core.rooms import flows, service
from core.rooms.flows import OpenSpec, RoomError, Status
from core.rooms.models import CLASSIFICATIONS, Room
from dialogs.context import CommandContext, Reply, Space
from dialogs.parsing import Args
from dialogs.registry import Router
from dialogs.room_cards import close_card, room_card, status_card

log = logging.getLogger(__name__)
router = Router()

_HHMM = re.compile(r"([01]\d|2[0-3]):[0-5]\d")
GRAPH_SETTINGS = "OPSROOM_GRAPH_TENANT_ID, OPSROOM_GRAPH_CLIENT_ID and OPSROOM_GRAPH_CLIENT_SECRET"


class RoomArgs(Args):
    """Every room command may name its room with --room KEY."""

    room: str | None = None


CHANNEL_NAME_MAX = 50
"""Teams refuses a longer channel display name."""


class OpenArgs(Args):
    positional: ClassVar[tuple[str, ...]] = ("name",)
    name: str
    template: str | None = None
    classification: str | None = None
    purpose: str | None = None
    digest: str | None = None
    channel: Literal["thread", "private", "shared"] = "thread"

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("a room needs a name")
        if safe.has_control_chars(value):
            raise ValueError("names cannot contain control characters")
        if len(value) > 80:
            raise ValueError(f"names are at most 80 characters (this one is {len(value)})")
        return value

    @field_validator("classification")
    @classmethod
    def _classification(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip().upper()
        if "SECRET" in value and value != "OFFICIAL-SENSITIVE":
            raise ValueError("SECRET material does not belong in Teams; use OFFICIAL or OFFICIAL-SENSITIVE")
        if value not in CLASSIFICATIONS:
            raise ValueError("must be OFFICIAL or OFFICIAL-SENSITIVE")
        return value

    @field_validator("digest")
    @classmethod
    def _digest(cls, value: str | None) -> str | None:
        if value is not None and not _HHMM.fullmatch(value):
            raise ValueError("must be a 24-hour time HH:MM, from 00:00 to 23:59, e.g. 07:00")
        return value

    @field_validator("purpose")
    @classmethod
    def _purpose(cls, value: str | None) -> str | None:
        if value is not None and len(value) > 1000:
            raise ValueError("at most 1,000 characters")
        return value


class ListArgs(Args):
    all: bool = False


class CloseArgs(RoomArgs):
    reason: str | None = None


class LeadArgs(RoomArgs):
    positional: ClassVar[tuple[str, ...]] = ("who",)
    who: str


def _refuse(ctx: CommandContext, text: str) -> Reply:
    ctx.note.outcome = "refused"
    ctx.note.detail = text
    return Reply(text=text)


@router.command("room open", action="room.open", args=OpenArgs)
async def room_open(ctx: CommandContext, args: OpenArgs) -> Reply:
    """Open an operation room from this channel: /room open Operation Lantern --template county-lines.

    Options: --template T, --classification OFFICIAL|OFFICIAL-SENSITIVE, --purpose TEXT,
    --digest HH:MM (daily tasking digest, room time), --channel thread|private|shared.
    """
    conversation = ctx.conversation
    if conversation.conversation_type != "channel" or not conversation.channel_id:
        return _refuse(ctx, "Open rooms from a channel of a team: the room gets a thread (or channel) there.")
    if ctx.room is not None:  # typed inside a room's thread or channel
        inside = f"This is {ctx.room.key}'s space"
        return _refuse(ctx, f"{inside}: open new rooms from a channel outside any room.")
    template = None
    if args.template:
        template = ctx.templates.get(args.template.lower())
        if template is None:
            known = ", ".join(f"`{key}`" for key in sorted(ctx.templates)) or "none installed"
            return _refuse(ctx, f"There is no template `{args.template}`. Available: {known}.")
    if args.channel != "thread" and not ctx.teams.graph_configured:
        needs = f"A {args.channel} channel needs Microsoft Graph: set {GRAPH_SETTINGS}"
        return _refuse(ctx, f"{needs} (application permission Channel.Create), or open the room as a thread.")
    if args.channel != "thread" and len(args.name) > CHANNEL_NAME_MAX:
        size = f"at most {CHANNEL_NAME_MAX} characters (this one is {len(args.name)})"
        return _refuse(ctx, f"Teams channel names are {size}: shorten it, or open the room as a thread.")
    key, was_taken = await ctx.db.run(lambda s: flows.key_for(s, args.name), readonly=True)
    principal, now = ctx.principal, ctx.now()
    assert principal.aad_id is not None and principal.tenant_id is not None
    classification = args.classification or (template.classification if template else "OFFICIAL")
    digest = args.digest or (template.digest if template else "07:00")
    preview = Room(key=key, name=args.name, purpose=args.purpose, classification=classification,
                   timezone=ctx.timezone, digest_time=digest, lead_aad_id=principal.aad_id,
                   lead_name=principal.name, tenant_id=principal.tenant_id, space_kind=args.channel,
                   conversation_id="", reference="", opened_at=now)  # fmt: skip
    card = room_card(preview, tasks=len(template.tasks) if template else 0,
                     template_name=template.name if template else None)  # fmt: skip
    try:
        if args.channel == "thread":
            space = await ctx.teams.create_thread(card)
        else:
            space = await ctx.teams.create_channel(
                name=args.name, description=args.purpose or args.name, kind=args.channel,
                owner_aad_id=principal.aad_id, card=card,
            )  # fmt: skip
    except RoomError as exc:  # Teams cannot give this room a space from here
        reason = str(exc).rstrip(". ")
        return _refuse(ctx, f"{reason[:1].upper()}{reason[1:]}.")
    spec = OpenSpec(key=key, name=args.name, purpose=args.purpose, classification=classification,
                    timezone=ctx.timezone, digest_time=digest, template=template,
                    lead_aad_id=principal.aad_id, lead_name=principal.name, tenant_id=principal.tenant_id,
                    team_id=conversation.team_id, opened_in_channel=conversation.channel_id,
                    space_kind=space.kind, conversation_id=space.conversation_id,
                    reference=space.reference)  # fmt: skip
    ctx.note.room_key = key
    try:
        opened = await ctx.transact(lambda s: flows.open_room(s, spec, now=now))
    except RoomError as exc:  # another open took the key between our look and our write
        await _withdraw(ctx, space, key)
        return _refuse(ctx, f"{exc}.")
    except Exception:
        await _withdraw(ctx, space, key)
        raise
    lines = [f"Opened **{key}**: {args.name} ({classification})."]
    if was_taken:
        lines.append(f"That name was in use, so this room's key is {key}.")
    if opened.tasks and template is not None:
        lines.append(f"{len(opened.tasks)} tasks from the {template.name} template are in the room.")
    where = "thread below" if space.kind == "thread" else f"new {space.kind} channel"
    lines.append(f"Work in the {where}; commands there act on the room.")
    return Reply(text=" ".join(lines))


async def _withdraw(ctx: CommandContext, space: Space, key: str) -> None:
    """The room was not recorded: say so on the card already posted, so nobody works in it."""
    if space.activity_id is None:
        return
    try:
        notice = {"type": "AdaptiveCard", "version": "1.5", "body": [
            {"type": "TextBlock", "wrap": True, "text": f"{key} could not be opened. Nothing was recorded; "
             "please run /room open again."}]}  # fmt: skip
        await ctx.teams.update(space, space.activity_id, notice)
    except Exception:
        log.exception("could not withdraw the card of a room that failed to open")


@router.command("room list", action="room.list", args=ListArgs,
                action_for=lambda a: "room.list_all" if a.all else "room.list")  # fmt: skip
async def room_list(ctx: CommandContext, args: ListArgs) -> Reply:
    """List your rooms (--all: every room, for supervisors)."""
    aad_id, team = ctx.principal.aad_id or "", ctx.conversation.team_id

    def rooms(session: Session) -> list[Room]:
        found = service.all_rooms(session=session) if args.all else service.rooms_of(
            session=session, aad_id=aad_id, team_id=team)  # fmt: skip
        return list(found)

    found = await ctx.db.run(rooms, readonly=True)
    if not found:
        return Reply(text="No rooms yet. Open one from a team channel with `/room open <name>`.")
    lines = ["All rooms:" if args.all else "Your rooms:", ""]
    for room in found:
        state = "closed" if room.closed else "open"
        if room.orphaned:
            state += ", orphaned"
        lines.append(f"- **{room.key}** {safe.clean(room.name, 80)} ({state}; lead {room.lead_name or '-'})")
    return Reply(text="\n".join(lines))


@router.command("room status", action="room.status", args=RoomArgs, needs_room=True)
async def room_status(ctx: CommandContext, args: RoomArgs) -> Reply:
    """Show the room: members by agency and role, open and overdue tasks, next digest."""
    room_id, now = _room_id(ctx), ctx.now()
    status: Status = await ctx.db.run(lambda s: flows.status(s, room_id, now=now), readonly=True)
    return Reply(card=status_card(status, now=now))


@router.command("room close", action="room.close", args=CloseArgs, needs_room=True)
async def room_close(ctx: CommandContext, args: CloseArgs) -> Reply:
    """Close the room: it becomes read-only (lead or supervisor)."""
    room_id, now = _room_id(ctx), ctx.now()
    ctx.note.justification = args.reason

    def close(session: Session) -> tuple[Room, Status]:
        room = flows.close_room(session, room_id, reason=args.reason, now=now)
        return room, flows.status(session, room_id, now=now)

    try:
        room, status = await ctx.transact(close)
    except RoomError as exc:
        return _refuse(ctx, str(exc))
    summary = close_card(room, open_tasks=status.open_tasks, members=len(status.members))
    await _tell_room(ctx, room, Reply(card=summary))
    return Reply(card=summary)


@router.command("room reopen", action="room.reopen", args=RoomArgs, needs_room=True)
async def room_reopen(ctx: CommandContext, args: RoomArgs) -> Reply:
    """Reopen a closed room (lead or supervisor)."""
    room_id = _room_id(ctx)
    try:
        room = await ctx.transact(lambda s: flows.reopen_room(s, room_id))
    except RoomError as exc:
        return _refuse(ctx, str(exc))
    text = f"**{room.key}** is open again."
    await _tell_room(ctx, room, Reply(text=text))
    return Reply(text=text)


@router.command("room lead", action="room.lead", args=LeadArgs, needs_room=True)
async def room_lead(ctx: CommandContext, args: LeadArgs) -> Reply:
    """Hand the room to a new lead: /room lead @name (or their email)."""
    room_id, now = _room_id(ctx), ctx.now()
    person = await ctx.teams.resolve(args.who)
    if person is None:
        return _refuse(ctx, f"I can't find {safe.clean(args.who, 80)} here. Mention them or use their email.")
    tenant = ctx.principal.tenant_id
    if person.guest or (person.tenant_id and tenant and person.tenant_id != tenant):
        return _refuse(ctx, "A room's lead must be an officer of this force.")
    problem = await _make_channel_owner(ctx, person.aad_id)
    try:
        room = await ctx.transact(lambda s: flows.change_lead(s, room_id, aad_id=person.aad_id,
                                                              name=person.name, now=now))  # fmt: skip
    except RoomError as exc:
        return _refuse(ctx, str(exc))
    who = person.name or person.aad_id
    text = f"{who} now leads **{room.key}**."
    await _tell_room(ctx, room, Reply(text=text))
    if problem:
        text += f" I could not make them an owner of the room's channel ({problem}); a channel owner can."
    return Reply(text=text)


async def _make_channel_owner(ctx: CommandContext, aad_id: str) -> str | None:
    """A private or shared channel room's new lead becomes a channel owner. Done before the change
    commits, so that its audit event says how it went; returns what stood in the way, if anything."""
    room = ctx.room
    if room is None or room.space_kind == "thread" or not room.team_id or room.lead_aad_id == aad_id:
        return None
    problem = None
    if not ctx.teams.graph_configured:
        problem = "Microsoft Graph is not configured"
    else:
        try:
            done = await ctx.teams.make_channel_owner(
                team_id=room.team_id, channel_id=room.conversation_id, aad_id=aad_id
            )
        except RoomError as exc:
            problem = str(exc)
    ctx.note.detail = f"channel owner not set: {problem}" if problem else f"channel owner {done}"
    return problem


def _room_id(ctx: CommandContext) -> int:
    assert ctx.room is not None and ctx.room.id is not None
    return ctx.room.id


async def _tell_room(ctx: CommandContext, room: Room, reply: Reply) -> None:
    """When the command came from elsewhere (--room), also post in the room's own space."""
    current = ctx.conversation.conversation_id or ""
    if current == room.conversation_id or current.split(";", 1)[0] == room.conversation_id:
        return
    if await ctx.teams.post(room.reference, reply):
        return
    assert room.id is not None
    room_id = room.id
    reason = "its Teams conversation no longer exists"
    await ctx.db.commit(lambda s: flows.orphan(s, [room_id], reason=reason))
