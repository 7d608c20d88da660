"""/digest now | at | off | me: the room's daily digest (posted by bot/digests.py, claimed in core/digest)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import ClassVar, Literal

from pydantic import field_validator
from sqlmodel import Session

from core.audit import service as audit
from core.digest import build, timing
from core.digest.claim import claim, claimed, next_run
from core.digest.models import DigestOutcome
from core.outbox import chats
from core.rooms import service as rooms
from core.rooms.models import Room
from core.tasks.when import local_today
from dialogs.audience import view
from dialogs.context import CommandContext, Later, Reply
from dialogs.digest_cards import digest_card
from dialogs.parsing import Args
from dialogs.registry import Router
from dialogs.text import Markdown, code, for_message, message_markdown

router = Router()

_HHMM = re.compile(r"([01]\d|2[0-3]):[0-5]\d")
NOT_INSTALLED = (
    "Opsroom has no personal chat with you yet, so it cannot send you your own digest. In Teams: "
    "Apps > Opsroom > Add (for yourself), or open a chat with Opsroom and say hi, then /digest me on again."
)


class RoomArgs(Args):
    """Every digest command may name its room with --room KEY."""

    room: str | None = None


class AtArgs(RoomArgs):
    positional: ClassVar[tuple[str, ...]] = ("time",)
    time: str

    @field_validator("time")
    @classmethod
    def _time(cls, value: str) -> str:
        value = value.strip()
        if not _HHMM.fullmatch(value):
            raise ValueError("must be a 24-hour time HH:MM, from 00:00 to 23:59, e.g. 07:00")
        return value


class MeArgs(RoomArgs):
    positional: ClassVar[tuple[str, ...]] = ("state",)
    state: Literal["on", "off"]


def _room(ctx: CommandContext) -> Room:
    assert ctx.room is not None and ctx.room.id is not None  # needs_room: the pipeline found it
    return ctx.room


def _refuse(ctx: CommandContext, text: str) -> Reply:
    """A refusal: text is shown literally unless it is `Markdown`."""
    ctx.note.outcome, ctx.note.detail = "refused", str(text)
    return Reply(text=for_message(text))


def _when(moment: datetime | None, room: Room) -> str:
    if moment is None:
        return "none"
    return moment.astimezone(build.zone(room.timezone)).strftime("%a %d %b %H:%M")


@router.command("digest now", action="digest.now", args=RoomArgs, needs_room=True)
async def digest_now(ctx: CommandContext, args: RoomArgs) -> Reply:
    """Show the room's digest here now, cut to what you may see (a preview: nothing is posted).

    In the room's own thread or channel it shows what every member may see, as the daily post does.
    """
    room_id, now = _room(ctx).id, ctx.now()
    assert room_id is not None

    def read(session: Session) -> build.Snapshot | None:
        room = session.get(Room, room_id)
        if room is None:
            return None
        today = local_today(now, build.zone(room.timezone))
        return build.load(session, room, now=now, local_date=today, head=audit.head(session), preview=True)

    snapshot = await ctx.db.run(read, readonly=True)
    if snapshot is None:
        return _refuse(ctx, "That room no longer exists.")
    seen = view(ctx, snapshot.members, snapshot.tasks, snapshot.shares)
    if seen.room_space:  # read by the whole room: as its daily post, the rest counted
        digest = build.compose(snapshot, seen.shown.tasks, hidden=seen.held, named=seen.names.allowed)
    else:
        digest = build.compose(snapshot, seen.own.tasks, reader="you", named=seen.names.allowed)
    content, shown = digest_card(digest)
    numbers = ", ".join(f"#{n}" for n in shown) or "none"
    ctx.note.detail = f"digest preview for {snapshot.local_date.isoformat()}: tasks shown {numbers}"
    return Reply(card=content)


@router.command("digest at", action="digest.at", args=AtArgs, needs_room=True)
async def digest_at(ctx: CommandContext, args: AtArgs) -> Later:
    """Post the room's daily digest at this time (room time), e.g. /digest at 07:30 (lead or supervisor)."""
    room_id, now = _room(ctx).id, ctx.now()
    assert room_id is not None

    def change(session: Session) -> Reply:
        room = session.get(Room, room_id)
        assert room is not None
        room.digest_time = args.time
        session.add(room)
        session.flush()
        tz = build.zone(room.timezone)
        today = local_today(now, tz)
        passed = ""
        # Changing the time never posts at once: a time already past today starts tomorrow.
        if timing.local_due(today, args.time, tz) <= now and not claimed(session, room_id=room_id,
                                                                         local_date=today):  # fmt: skip
            claim(session, room_id=room_id, local_date=today, outcome=DigestOutcome.SKIPPED, now=now)
            passed = " That time has passed today, so the first one is tomorrow."
            ctx.note.detail = f"today's digest ({today.isoformat()}) skipped: its new time has passed"
        upcoming = _when(next_run(session, room, now=now), room)
        text = message_markdown("**{key}**'s daily digest is now at {time} ({zone}). Next: {next}.",
                                key=room.key, time=args.time, zone=room.timezone, next=upcoming)  # fmt: skip
        return Reply(text=text + passed)

    return ctx.work.reply_from(change)


@router.command("digest off", action="digest.off", args=RoomArgs, needs_room=True)
async def digest_off(ctx: CommandContext, args: RoomArgs) -> Later:
    """Stop the room's daily digest (lead or supervisor); /digest at HH:MM starts it again."""
    room_id = _room(ctx).id
    assert room_id is not None

    def change(session: Session) -> Reply:
        room = session.get(Room, room_id)
        assert room is not None
        was = room.digest_time
        room.digest_time = None
        session.add(room)
        session.flush()
        again = Markdown(f"{code('/digest at HH:MM')} starts it again.")
        if was is None:
            return Reply(text=message_markdown("**{key}** had no daily digest. ", key=room.key) + again)
        return Reply(text=message_markdown("**{key}** has no daily digest now. ", key=room.key) + again)

    return ctx.work.reply_from(change)


@router.command("digest me", action="digest.now", args=MeArgs, needs_room=True,
                action_for=lambda a: "digest.personal" if a.state == "on" else "digest.now")  # fmt: skip
async def digest_me(ctx: CommandContext, args: MeArgs) -> Later:
    """Get your own daily digest of the room in your chat with Opsroom, with what you may see: on or off.

    Turning it on is a full-detail card out of the room's space each day: a sharing agreement that
    forbids exports forbids it.
    """
    room_id, aad_id, on = _room(ctx).id, ctx.principal.aad_id, args.state == "on"
    assert room_id is not None and aad_id is not None

    def change(session: Session) -> Reply:
        room = session.get(Room, room_id)
        member = rooms.member(session=session, room_id=room_id, aad_id=aad_id)
        assert room is not None
        if member is None:
            return _refuse(ctx, f"Your own digest is for members of {room.key}.")
        if on and chats.get(session=session, aad_id=aad_id) is None:
            return _refuse(ctx, NOT_INSTALLED)
        member.digest_personal = on
        session.add(member)
        session.flush()
        if not on:
            stopped = message_markdown("You will no longer get your own digest of **{key}**.", key=room.key)
            return Reply(text=stopped)
        if room.digest_time is None:
            off = message_markdown("**{key}** has no daily digest just now: yours comes when a lead sets one "
                                   "(", key=room.key)  # fmt: skip
            return Reply(text=off + code("/digest at HH:MM") + ").")
        return Reply(text=message_markdown(
            "Your own digest of **{key}**, with what you may see, will come to your chat with Opsroom "
            "each day at {time} ({zone}).", key=room.key, time=room.digest_time, zone=room.timezone,
        ))  # fmt: skip

    return ctx.work.reply_from(change)
