"""/room open | list | status | close | reopen | lead."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlmodel import Session

from core import text as safe
from core.errors import Refused
from core.rooms import flows, opening, service
from core.rooms.flows import RoomError, Status
from core.rooms.models import Room, RoomMember
from dialogs.audience import beyond_the_room, view
from dialogs.context import CommandContext, Later, Reply
from dialogs.facts import room_facts, visible
from dialogs.names import Who, of_lead
from dialogs.registry import Router
from dialogs.room_args import CHANNEL_NAME_MAX, CloseArgs, LeadArgs, ListArgs, OpenArgs, RoomArgs
from dialogs.room_cards import close_card, registered, room_card, status_card
from dialogs.text import Markdown, code, for_message, message_markdown
from policies import Resource
from policies.model import RoomRole

__all__ = ["CloseArgs", "LeadArgs", "ListArgs", "OpenArgs", "RoomArgs", "router"]

log = logging.getLogger(__name__)
router = Router()

GRAPH_SETTINGS = "OPSROOM_GRAPH_TENANT_ID, OPSROOM_GRAPH_CLIENT_ID and OPSROOM_GRAPH_CLIENT_SECRET"


def _refuse(ctx: CommandContext, text: str) -> Reply:
    """A refusal: text is shown literally unless it is `Markdown`."""
    ctx.note.outcome = "refused"
    ctx.note.detail = str(text)
    return Reply(text=for_message(text))


def _sentence(exc: Exception) -> str:
    reason = str(exc).rstrip(". ")
    return f"{reason[:1].upper()}{reason[1:]}."


@router.command("room open", action="room.open", args=OpenArgs)
async def room_open(ctx: CommandContext, args: OpenArgs) -> Reply | Later:
    """Open an operation room from this channel: /room open Operation Lantern --template county-lines.

    Options: --template T, --classification OFFICIAL|OFFICIAL-SENSITIVE, --purpose TEXT,
    --digest HH:MM (daily tasking digest, room time), --channel thread|private|shared.
    """
    conversation = ctx.conversation
    if conversation.conversation_type != "channel" or not conversation.channel_id:
        return _refuse(ctx, "Open rooms from a channel of a team: the room gets a thread (or channel) there.")
    if ctx.room is not None:  # typed inside a room's thread or channel
        inside = message_markdown("This is {key}'s space", key=ctx.room.key)
        return _refuse(ctx, Markdown(f"{inside}: open new rooms from a channel outside any room."))
    template = None
    if args.template:
        template = ctx.templates.get(args.template.lower())
        if template is None:
            known = ", ".join(code(key) for key in sorted(ctx.templates)) or "none installed"
            return _refuse(ctx, Markdown(f"There is no template {code(args.template)}. Available: {known}."))
    if args.channel != "thread" and not ctx.teams.graph_configured:
        needs = f"A {args.channel} channel needs Microsoft Graph: set {GRAPH_SETTINGS}"
        return _refuse(ctx, Markdown(f"{needs} (application permission Channel.Create), "
                                     "or open the room as a thread."))  # fmt: skip
    if args.channel != "thread" and len(args.name) > CHANNEL_NAME_MAX:
        size = f"at most {CHANNEL_NAME_MAX} characters (this one is {len(args.name)})"
        return _refuse(ctx, f"Teams channel names are {size}: shorten it, or open the room as a thread.")
    principal, now = ctx.principal, ctx.now()
    assert principal.aad_id is not None and principal.tenant_id is not None
    reservation = opening.Reservation(
        name=args.name, purpose=args.purpose, timezone=ctx.timezone, template=template,
        classification=args.classification or (template.classification if template else "OFFICIAL"),
        digest_time=args.digest or (template.digest if template else "07:00"),
        lead_aad_id=principal.aad_id, lead_name=principal.name, tenant_id=principal.tenant_id,
        team_id=conversation.team_id, opened_in_channel=conversation.channel_id, space_kind=args.channel,
        origin_reference=ctx.teams.channel_reference(), request_key=ctx.request_key,
    )  # fmt: skip
    if ctx.request_key is not None:  # a re-send of this very request: never a second card
        request_key = ctx.request_key
        earlier = await ctx.db.run(lambda s: opening.by_request(s, request_key), readonly=True)
        if earlier is not None and earlier.id is not None:
            return _interrupted(ctx, earlier.id, now)
    # Step 1, committed with its own audit event before anything appears in Teams.
    try:
        room, was_taken = await ctx.step(lambda s: _reserve(s, ctx, reservation, now), outcome="opening")
    except Refused as exc:
        return _refuse(ctx, _sentence(exc))
    assert room.id is not None
    room_id, key = room.id, room.key
    ctx.note.room_key = key
    # Read in the room's new space by the lead alone, for now: whom they may name is whom it names.
    leading = Resource(room_key=key, role=RoomRole.LEAD, in_room_space=True)
    names = of_lead(ctx.decide_many, principal, leading, room.lead_aad_id, room.lead_name)
    card = room_card(room, commands=registered(), names=names, tasks=len(template.tasks) if template else 0,
                     template_name=template.name if template else None)  # fmt: skip
    # Step 2: Teams makes the room's space and shows its card.
    try:
        if args.channel == "thread":
            space = await ctx.teams.create_thread(card)
        else:
            space = await ctx.teams.create_channel(
                name=args.name, description=args.purpose or args.name, kind=args.channel,
                owner_aad_id=principal.aad_id, card=card,
            )  # fmt: skip
    except RoomError as exc:  # Teams cannot give this room a space from here
        ctx.work.stage(lambda s: _cancel(s, room_id, reason="Teams refused its space", now=now, posted=False))
        return _refuse(ctx, _sentence(exc))
    except Exception:  # Teams failed: the room is cancelled in a step of its own, then the request fails
        await ctx.step(lambda s: _cancel(s, room_id, reason="Teams failed to create its space", now=now),
                       outcome="cancelled")  # fmt: skip
        raise
    # Step 3, the request's own unit of work.
    ctx.note.detail = f"{space.kind} {space.conversation_id}"

    def complete(session: Session) -> Reply:
        # A RoomError here (cancelled meanwhile) is a refusal; the cancellation said the card is void.
        opened = opening.complete(session, room_id, template=template, space_kind=space.kind,
                                  conversation_id=space.conversation_id, reference=space.reference,
                                  now=now)  # fmt: skip
        name = safe.clean(args.name, 80) or ""
        opened_text = message_markdown("Opened **{key}**: {name} ({classification}).", key=key, name=name,
                                       classification=opened.room.classification)  # fmt: skip
        lines: list[str] = [opened_text]
        if was_taken:
            lines.append(message_markdown("That name was in use, so this room's key is {key}.", key=key))
        if opened.tasks and template is not None:
            lines.append(message_markdown("{count} tasks from the {name} template are in the room.",
                                          count=str(len(opened.tasks)), name=template.name))  # fmt: skip
        where = "thread below" if space.kind == "thread" else f"new {space.kind} channel"
        lines.append(f"Work in the {where}; commands there act on the room.")
        return Reply(text=" ".join(lines))

    return ctx.work.reply_from(complete)


def _reserve(
    session: Session, ctx: CommandContext, spec: opening.Reservation, now: datetime
) -> tuple[Room, bool]:
    room, taken = opening.reserve(session, spec, now=now)
    ctx.note.room_key = room.key  # the step's audit event names the room it reserved
    return room, taken


def _cancel(session: Session, room_id: int, *, reason: str, now: datetime, posted: bool = True) -> None:
    room = session.get(Room, room_id)
    if room is not None:
        opening.cancel(session, room, reason=reason, now=now, card_posted=posted)


def _interrupted(ctx: CommandContext, room_id: int, now: datetime) -> Later:
    def answer(session: Session) -> Reply:
        message = opening.interrupted(session, room_id, now=now)
        return _refuse(ctx, _sentence(Exception(message)))

    return ctx.work.reply_from(answer)


@router.command("room list", action="room.list", args=ListArgs,
                action_for=lambda a: "room.list_all" if a.all else "room.list")  # fmt: skip
async def room_list(ctx: CommandContext, args: ListArgs) -> Reply:
    """List your rooms (--all: every room, for supervisors).

    In a room's own thread or channel it lists only the rooms everyone there may see.
    """
    aad_id, team, now = ctx.principal.aad_id or "", ctx.conversation.team_id, ctx.now()

    def rooms(session: Session) -> list[tuple[Room, RoomMember | None]]:
        return service.candidates(session=session, aad_id=aad_id, team_id=team, everything=args.all)

    candidates = await ctx.db.run(rooms, readonly=True)
    found = visible(lambda _p, requests: ctx.may_all(requests), ctx.principal, candidates, team_id=team,
                    now=now)  # fmt: skip
    membership = {room.id: member for room, member in candidates}
    leads = {room.lead_aad_id: Who(RoomRole.LEAD.value, None, room.lead_name) for room in found}
    here = await beyond_the_room(ctx, leads)
    if here is not None:  # read by everyone in this room
        found = [room for room in found if room.id in here[0]]
    if not found:
        return Reply(text="No rooms yet. Open one from a team channel: `/room open Operation Lantern`.")
    lines = ["All rooms:" if args.all else "Your rooms:", ""]
    for room in found:
        state = "closed" if room.closed else "open"
        if room.orphaned:
            state += ", orphaned"
        name = safe.clean(room.name, 80) or ""
        facts = room_facts(room, membership.get(room.id), team_id=team, inside=False, now=now)
        names = of_lead(ctx.decide_many, ctx.principal, facts, room.lead_aad_id, room.lead_name)
        names = names if here is None else names & here[1]
        lead = names.person(room.lead_aad_id, room.lead_name or "-", hidden="not shown")
        lines.append(message_markdown("- **{key}** {name} ({state}; lead {lead})", key=room.key, name=name,
                                      state=state, lead=lead))  # fmt: skip
    return Reply(text="\n".join(lines))


@router.command("room status", action="room.status", args=RoomArgs, needs_room=True)
async def room_status(ctx: CommandContext, args: RoomArgs) -> Reply:
    """Show the room: members by agency and role, open and overdue tasks, next digest."""
    room, now = ctx.room, ctx.now()
    assert room is not None
    state = await ctx.states.of(ctx.db, room)  # read at this request's start, or kept since (states.py)
    status = Status(room, list(state.members), len(state.tasks), state.overdue(now))
    # In the room's space, named only as every member may see them.
    seen = view(ctx, status.members, kept=state)
    return Reply(card=status_card(status, now=now, names=seen.names))


@router.command("room close", action="room.close", args=CloseArgs, needs_room=True,
                facts=("justification:reason",))  # fmt: skip
async def room_close(ctx: CommandContext, args: CloseArgs) -> Later:
    """Close the room: it becomes read-only (lead or supervisor)."""
    room_id, now, here = _room_id(ctx), ctx.now(), _typed_in_room(ctx)

    def close(session: Session) -> Reply:
        room = flows.close_room(session, room_id, reason=args.reason, now=now)
        status = flows.status(session, room_id, now=now)
        summary = Reply(card=close_card(room, open_tasks=status.open_tasks, members=len(status.members)))
        if not here:
            flows.notify(session, room, summary.activity(), now=now)
            _told(ctx, room)
        return summary

    return ctx.work.reply_from(close)


@router.command("room reopen", action="room.reopen", args=RoomArgs, needs_room=True)
async def room_reopen(ctx: CommandContext, args: RoomArgs) -> Later:
    """Reopen a closed room (lead or supervisor)."""
    room_id, now, here = _room_id(ctx), ctx.now(), _typed_in_room(ctx)

    def reopen(session: Session) -> Reply:
        room = flows.reopen_room(session, room_id)
        reply = Reply(text=message_markdown("**{key}** is open again.", key=room.key))
        if not here:
            flows.notify(session, room, reply.activity(), now=now)
            _told(ctx, room)
        return reply

    return ctx.work.reply_from(reopen)


@router.command("room lead", action="room.lead", args=LeadArgs, needs_room=True, facts=("person:who",))
async def room_lead(ctx: CommandContext, args: LeadArgs) -> Later:
    """Hand the room to a new lead: /room lead @name (or their email)."""
    room_id, now, here = _room_id(ctx), ctx.now(), _typed_in_room(ctx)
    person = ctx.facts.person
    assert person is not None  # loaded before the policy allowed this
    problem = await _make_channel_owner(ctx, person.aad_id)

    def change(session: Session) -> Reply:
        room = flows.change_lead(session, room_id, aad_id=person.aad_id, name=person.name, now=now)
        who = safe.clean(person.name or person.aad_id, 120) or ""
        text: str = message_markdown("{who} now leads **{key}**.", who=who, key=room.key)
        if not here:
            flows.notify(session, room, Reply(text=text).activity(), now=now)
            _told(ctx, room)
        if problem:
            text += message_markdown(" I could not make them an owner of the room's channel ({problem}); "
                                     "a channel owner can.", problem=problem)  # fmt: skip
        return Reply(text=text)

    return ctx.work.reply_from(change)


async def _make_channel_owner(ctx: CommandContext, aad_id: str) -> str | None:
    """A private or shared channel room's new lead becomes a channel owner. Done before the change
    commits, so that its audit event says how it went; returns what stood in the way, if anything."""
    room = ctx.room
    if room is None or room.space_kind == "thread" or not room.team_id or room.lead_aad_id == aad_id:
        return None
    if room.conversation_id is None:
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


def _told(ctx: CommandContext, room: Room) -> None:
    """The room's own conversation was sent this too: a recipient for the audit event."""
    if room.conversation_id:
        ctx.note.recipients = [*(ctx.note.recipients or []), room.conversation_id]


def _typed_in_room(ctx: CommandContext) -> bool:
    """The command came from the room's own space (so its reply is already seen there)."""
    room, current = ctx.room, ctx.conversation.conversation_id
    return room is not None and current is not None and service.in_space(room, current)
