"""/room hours: a room's own working hours, for the guest-after-hours misuse rule (core/oversight)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import field_validator
from sqlmodel import Session

from core.oversight import service
from core.oversight.rules import WorkingHours
from dialogs.context import CommandContext, Later, Reply
from dialogs.registry import Router
from dialogs.room_args import RoomArgs
from dialogs.text import code, message_markdown

router = Router()

HOURS_MAX = 32
"""What room.working_hours holds."""
DEFAULT = "default"


class HoursArgs(RoomArgs):
    positional: ClassVar[tuple[str, ...]] = ("hours",)
    labels: ClassVar[dict[str, str]] = {}
    hours: str

    @field_validator("hours")
    @classmethod
    def _hours(cls, value: str) -> str:
        """Normalised: `default`, `always`, or spans as `07:00-19:00 Mon-Fri; 08:00-13:00 Sat`."""
        if value.strip().lower() == DEFAULT:
            return DEFAULT
        try:
            hours = str(WorkingHours.parse(value))
        except ValueError as exc:
            raise ValueError("say HH:MM-HH:MM with days (07:00-19:00 Mon-Fri), always, or default") from exc
        if len(hours) > HOURS_MAX:
            raise ValueError(f"at most {HOURS_MAX} characters once written out ({hours} is {len(hours)})")
        return hours


@router.command("room hours", action="room.hours", args=HoursArgs, needs_room=True)
async def room_hours(ctx: CommandContext, args: HoursArgs) -> Later:
    """Set when the room is worked: /room hours 07:00-19:00 Mon-Fri (or always, or default).

    In the bot's time zone. Guests' requests outside these hours count towards the guest-after-hours
    misuse alert. An end before the start runs past midnight (22:00-06:00); several spans are separated
    by `;`. `default` goes back to the hours the misuse rules give every room.
    """
    assert ctx.room is not None and ctx.room.id is not None  # needs_room: the pipeline found it
    room_id, key = ctx.room.id, ctx.room.key
    hours = None if args.hours == DEFAULT else args.hours

    def write(session: Session) -> Reply:
        before = service.set_working_hours(session, room_id=room_id, hours=hours)
        ctx.note.detail = f"working hours {before or DEFAULT} -> {hours or DEFAULT}"
        if hours is None:
            return Reply(text=message_markdown("**{key}** uses the default working hours again.", key=key))
        worked = message_markdown("**{key}** is worked {hours} ({zone} time).", key=key, hours=code(hours),
                                  zone=ctx.timezone)  # fmt: skip
        return Reply(text=f"{worked} Guests' requests outside them count towards the after-hours alert.")

    return ctx.work.reply_from(write)
