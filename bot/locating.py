"""The locate step: which room a command is about, and the caller's standing in it.

The room is the one named with --room KEY, or the one whose thread or channel the command was typed
in. The caller's membership gives the policy its facts; an officer working in a room's space joins
it, and a guest's first activity there binds their invitation (bot/binding.py), both written with
the request's own audit event. A room the policy does not let the caller see is no room: the answer
is the same as for a key that does not exist.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from sqlmodel import Session

from bot import binding
from bot.identity import Identity
from bot.turn import Turn
from bot.work import joiner
from core import text as safe
from core.db import Database
from core.rooms import flows as rooms
from core.rooms import service as room_service
from core.rooms.located import Located
from dialogs.context import Reply
from dialogs.facts import room_facts, visible
from dialogs.parsing import Args
from dialogs.text import escape_message
from policies import Policy
from policies.model import PrincipalKind, RoomRole


class Locator:
    """Finds the room of a turn and the caller's facts in it."""

    def __init__(self, *, db: Database, policy: Policy, identity: Identity, clock: Callable[[], datetime],
                 located: Located | None = None) -> None:  # fmt: skip
        self.db, self.policy, self.identity, self.clock = db, policy, identity, clock
        self.located = located

    async def locate(self, turn: Turn) -> bool:
        """Which room the command is about (--room KEY, or the room whose space it was typed in), and the
        facts about it and the caller's membership; a room the policy does not let them see is no room.
        False when the turn has its answer already (no such room, or which room?)."""
        found, principal = turn.route, turn.principal
        if found is None or found.kind != "command" or found.command is None or principal is None:
            return True
        key = found.args.value("room") if isinstance(found.args, Args) else None
        conversation_id = turn.conversation.conversation_id
        located = turn.here if key is None else None
        if located is None:
            aad_id = principal.aad_id
            located = await self.db.look_up(lambda s: rooms.find(s, conversation_id=conversation_id, key=key,
                                                                 aad_id=aad_id, located=self.located))
        room, now = located.room, self.clock()
        if room is not None:
            member = located.member
            if member is not None and member.tenant_id and member.tenant_id != principal.tenant_id:
                member = None  # a membership is an object id in a tenant, not an object id alone
            team = turn.conversation.team_id
            facts = room_facts(room, member, team_id=team, inside=located.inside, now=now)
            if facts.role is None and self.policy.decide(principal, "room.join", facts).allowed:
                facts = replace(facts, role=RoomRole.MEMBER)
                turn.on_commit.append(joiner(room, principal, now))
            elif facts.role is None and principal.kind is PrincipalKind.GUEST and located.inside:
                bound = await binding.invited(turn.context, principal, room, db=self.db,
                                              identity=self.identity, now=now)  # fmt: skip
                if bound is not None:  # the invitation becomes their membership, with this request's event
                    member = bound.member
                    facts = room_facts(room, member, team_id=team, inside=True, now=now)
                    turn.on_commit.append(bound.write)
                    found.arguments["bound_invitation"] = bound.invitation_id
            seeing = self.policy.decide(principal, "room.see", facts)
            if not seeing.allowed:  # recorded: the rule that hid it (an ended access, for the misuse rules)
                turn.decision = seeing
            if seeing.allowed:
                turn.room, turn.resource, turn.member = room, facts, member
                if member is not None and member.id is not None and room_service.stale_seen(member, now):
                    # Last seen, for access review: at most hourly, in this request's own unit of work.
                    turn.on_commit.append(functools.partial(_seen, member_id=member.id, now=now))
                if member is not None and member.agency and principal.agency is None:
                    turn.principal = replace(principal, agency=member.agency)
            else:
                room = None
        if key and room is None:
            turn.outcome = "no_room"  # the same answer whether the room exists or not; the audit tells
            turn.detail = "room not visible to the caller" if located.room is not None else "no such room"
            shown = escape_message(safe.clean(key.upper(), 40) or "")
            turn.reply = Reply(text=f"There is no room {shown} that you can see.")
            return False
        if room is None and found.command.needs_room:
            turn.outcome = "needs_room"
            turn.reply = await self._which_room(turn)
            return False
        return True

    async def _which_room(self, turn: Turn) -> Reply:
        principal = turn.principal
        ask = "This command acts on a room: use it inside a room's thread, or add `--room KEY`."
        if principal is None or principal.aad_id is None:
            return Reply(text=ask)
        aad_id, team, now = principal.aad_id, turn.conversation.team_id, self.clock()

        def mine(session: Session) -> list[str]:
            found = room_service.candidates(session=session, aad_id=aad_id, team_id=team)
            return [r.key for r in visible(self.policy.decide_many, principal, found, team_id=team, now=now)
                    if not r.closed]  # fmt: skip

        keys = await self.db.run(mine, readonly=True)
        if not keys:
            return Reply(text=f"{ask} You are not in any open room.")
        listed = ", ".join(f"`{key}`" for key in keys[:20])
        hint = "Which room? Use it inside the room's thread or add `--room KEY`."
        return Reply(text=f"{hint} Yours: {listed}.")


def _seen(session: Session, *, member_id: int, now: datetime) -> None:
    room_service.seen(session=session, member_id=member_id, now=now)
