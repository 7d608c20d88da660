"""/access and /revoke: a room lead's review of partner-agency access, and ending it at once.

Access ends the moment `/revoke` commits: the policy refuses a revoked membership (access_revoked)
from then on. What Teams still shows (the guest in the room's channel) is the clean-up job's part
(core/invitations/cleanup.py, bot/access.py), which also tells the lead how it went.
"""

from __future__ import annotations

import re
from typing import ClassVar

from pydantic import field_validator
from sqlmodel import Session

from core.errors import Refused
from core.invitations import service as invitations
from core.invitations.models import Invitation, InvitationStatus
from core.outbox import chats
from core.outbox import service as outbox
from core.outbox.models import PersonalChat
from dialogs.access_cards import access_card
from dialogs.context import CommandContext, Later, Reply
from dialogs.invite import _EMAIL, DEFAULT_DAYS
from dialogs.parsing import Args
from dialogs.registry import Router
from dialogs.text import Markdown, for_message, message_markdown

router = Router()

_AGENCY = re.compile(r"[a-z][a-z0-9-]{1,31}")
BY_HAND = Markdown("Take them out of the room's channel by hand (Microsoft Graph is not configured): the "
                   "channel's ⋯ menu > **Manage channel** > **Members**.")  # fmt: skip
THREAD = Markdown("This room is a thread, so they stay in the team, which other rooms may use: if no room "
                  "needs them, take them out of the team by hand (the team's ⋯ menu > **Manage team**).")
BY_JOB = Markdown("Opsroom takes them out of the room's channel within a few minutes and tells the lead.")
SHARED_SPACE = "The access review names every guest, so it is not shown where others read it."


class AccessArgs(Args):
    rest: ClassVar[bool] = False
    room: str | None = None


class RevokeArgs(Args):
    positional: ClassVar[tuple[str, ...]] = ("target",)
    rest: ClassVar[bool] = False
    labels: ClassVar[dict[str, str]] = {"target": "email|agency"}
    target: str
    room: str | None = None

    @field_validator("target")
    @classmethod
    def _target(cls, value: str) -> str:
        target = value.strip().lower()
        if not (_EMAIL.fullmatch(target) or _AGENCY.fullmatch(target)):
            raise ValueError("name one email address, or an agency key (everyone of that agency)")
        return target


@router.command("access", action="access", args=AccessArgs, needs_room=True)
async def access(ctx: CommandContext, args: AccessArgs) -> Reply:
    """Review partner-agency access to this room: each guest and invitation, with Revoke and Extend.

    Shows each person's agency, role, flags, ISA, when their access ends (room time) and when they were
    last seen. Extend invites them again on the same terms for 30 days from today. The review names every
    guest, so it is shown in your chat with Opsroom: asked anywhere else, it is sent there.
    """
    room, now, caller = ctx.room, ctx.now(), ctx.principal.aad_id
    assert room is not None and room.id is not None
    room_id, days = room.id, min(DEFAULT_DAYS, ctx.guest_max_days)
    personal = ctx.conversation.conversation_type == "personal"

    def read(session: Session) -> tuple[list[invitations.Entry], PersonalChat | None]:
        chat = chats.get(session=session, aad_id=caller) if caller and not personal else None
        return invitations.review(session, room_id), chat

    entries, chat = await ctx.db.run(read, readonly=True)
    ctx.note.detail = f"{len(entries)} guest lines"
    # Only ever shown in a personal chat, outside the room's space: its buttons name the room.
    review = access_card(room, entries, now=now, days=days, room_flag=f" --room {room.key}")
    if personal:
        return Reply(card=review)
    if chat is None or caller is None:  # nowhere for them alone: the names stay out of a shared space
        ctx.note.detail += "; not shown: no personal chat"
        return Reply(text=message_markdown(SHARED_SPACE + " Send `/access --room {key}` in your chat with "
                                           "Opsroom.", key=room.key))  # fmt: skip
    ctx.note.recipients = [caller]
    reference, tenant = chat.reference, chat.tenant_id or room.tenant_id
    ctx.work.stage(lambda s: outbox.enqueue(session=s, kind="access", reference=reference, now=now,
                                            activity=Reply(card=review).activity(), room_id=room_id,
                                            tenant_id=tenant))  # fmt: skip
    return Reply(text=for_message(Markdown(SHARED_SPACE + " It is on its way to your chat with Opsroom.")))


@router.command("revoke", action="revoke", args=RevokeArgs, needs_room=True)
async def revoke(ctx: CommandContext, args: RevokeArgs) -> Later:
    """End access to this room at once: /revoke nia@nhs.net, or /revoke health for everyone of an agency.

    They are refused from that moment. Opsroom then takes them out of the room's channel (with Microsoft
    Graph) and tells the lead. Inviting them again gives access back.
    """
    room, now = ctx.room, ctx.now()
    assert room is not None and room.id is not None
    room_id, key, by = room.id, room.key, ctx.principal.aad_id or ""
    email = args.target if "@" in args.target else None
    agency = None if email is not None else args.target
    after = THREAD if room.space_kind == "thread" else BY_JOB if ctx.teams.graph_configured else BY_HAND
    named = email is not None or ctx.conversation.conversation_type == "personal"

    def write(session: Session) -> Reply:
        revoked = sorted(invitations.revoke(session, room_id, email=email, agency=agency, by=by, now=now),
                         key=lambda i: i.email)  # fmt: skip
        if not revoked:
            raise Refused(_nobody(invitations.in_room(session, room_id), key, email=email, agency=agency))
        ctx.note.detail = "revoked: " + "; ".join(
            f"{i.email} ({i.bound_aad_id or 'never came in'})" for i in revoked)  # fmt: skip
        # An agency's people are named only in a personal chat: elsewhere every member of the room reads it.
        who = ", ".join(i.email for i in revoked) if named else f"{len(revoked)} of agency {agency}"
        told = message_markdown("Access to **{key}** revoked, from now: {who}.", key=key, who=who)
        return Reply(text=f"{told}\n\n{for_message(after)}")

    return ctx.work.reply_from(write)


def _nobody(invited: list[Invitation], key: str, *, email: str | None, agency: str | None) -> str:
    """Why nothing was revoked: nobody invited as that, or their access is revoked already."""
    if email is not None:
        known = [i for i in invited if i.email == email]
        what = f"{email} is not invited to {key}"
        done = f"{email}'s access to {key} is revoked already"
    else:
        known = [i for i in invited if i.agency == agency]
        what = f"nobody from agency {agency} is invited to {key}"
        done = f"everyone from agency {agency} in {key} is revoked already"
    return done if known and all(i.status == InvitationStatus.REVOKED for i in known) else what
