"""The access tick: when guest access ends, and the weekly access reminder; one in-memory APScheduler job per
process, every two minutes and once soon after start.

As with the digest tick, nothing is stored in APScheduler: every process ticks on its own and the database
decides (core/invitations/cleanup.py, core/invitations/reminder.py). One tick:

1. Ends: each room with access that ended (expired or revoked) and is not yet claimed is handed to
   `cleanup.end` in the group writer: the claim, the lead's notice (outbox) and the `access.ended` event
   commit together, and whatever another process claimed first is left alone.
2. Removals (Microsoft Graph configured): each due removal is claimed with a lease, then the person is
   taken out of the room's private or shared channel through Graph (not out of the team: other rooms
   may use it). The team's group id comes from the Bot Connector (GET /v3/teams/{id}), once per team and
   process. How it went is recorded and audited; a failure is kept with its reason and tried again
   after a backoff. The claim comes first, Graph after: a crash in between leaves an audited end whose
   removal is pending, which a later tick takes up once the lease has run out.
3. Reminders: each open room whose weekly reminder is due and unclaimed gets `reminder.remind`.

The outbox sender is woken after writes that queued messages.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar

from bot import graph_guests
from bot.graph import GraphClient
from bot.outbox_http import ConnectorFor
from bot.teams import team_group_id
from core.db import Database
from core.errors import Refused
from core.invitations import cleanup, reminder
from core.invitations.cleanup import Ending, Removing
from core.invitations.reminder import Reminder
from core.outbox.service import target_of
from core.rooms.models import Room
from dialogs.access_cards import ended_notice, lead_reminder_card, reminder_card

log = logging.getLogger(__name__)

T = TypeVar("T")

GroupOf = Callable[[Room], Awaitable[str]]
"""A room's team as Graph names it (its Microsoft 365 group id); Refused with the reason if unknown."""


def connector_groups(connectors: ConnectorFor) -> GroupOf:
    """Group ids through the Bot Connector of each room's service URL, remembered per team."""
    known: dict[str, str] = {}

    async def group_of(room: Room) -> str:
        team = room.team_id
        if not team:
            raise Refused("the room is not in a team")
        if team not in known:
            service_url = target_of(room.reference)[1]
            known[team] = await team_group_id(await connectors(service_url), team)
        return known[team]

    return group_of


@dataclass
class Ticked:
    """What one tick did."""

    ended: list[Ending] = field(default_factory=list)
    removals: list[tuple[str, str]] = field(default_factory=list)  # (email, removed | absent | failed)
    reminders: list[Reminder] = field(default_factory=list)


class AccessTick:
    """This process's access tick (see the module docstring)."""

    def __init__(
        self, db: Database, *, graph: GraphClient | None, group_of: GroupOf | None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC), wake: Callable[[], None] = lambda: None,
    ) -> None:  # fmt: skip
        self.db, self.graph, self.group_of, self.clock, self.wake = db, graph, group_of, clock, wake

    async def run(self) -> Ticked:
        """One tick; a failure is logged, and the next tick tries again."""
        done = Ticked()
        for part in (self._end, self._remove, self._remind):
            try:
                await part(done)
            except Exception:
                log.exception("access tick: %s failed", part.__name__.strip("_"))
        return done

    @staticmethod
    async def _each(what: str, work: Awaitable[T]) -> T | None:
        """One room's or one person's part of a tick: a failure is logged and leaves the others to go on."""
        try:
            return await work
        except Exception:
            log.exception("access tick: %s failed", what)
            return None

    async def _end(self, done: Ticked) -> None:
        now = self.clock()
        for room_id in await self.db.run(lambda s: cleanup.ending(s, now=now), readonly=True):
            end = functools.partial(cleanup.end, room_id=room_id, now=now, render=ended_notice,
                                    graph=self.graph is not None)  # fmt: skip
            what = f"ending access in room {room_id}"
            while (ending := await self._each(what, self.db.commit(end))) is not None:
                done.ended.append(ending)  # a room may have more than one batch to end
                self.wake()
                log.info("access ended in %s for %d guests", ending.room.key, len(ending.guests))

    async def _remove(self, done: Ticked) -> None:
        if self.graph is None or self.group_of is None:
            return
        now = self.clock()
        for invitation_id in await self.db.run(lambda s: cleanup.removals_due(s, now=now), readonly=True):
            claim = functools.partial(cleanup.claim_removal, invitation_id=invitation_id, now=now)
            removing = await self._each(f"claiming removal {invitation_id}", self.db.commit(claim))
            if removing is not None:
                what = f"removal {invitation_id}"  # a crash here: the lease runs out and a later tick retries
                outcome = await self._each(what, self._take_out(removing, self.graph, self.group_of))
                done.removals.append((removing.email, outcome or "failed"))

    async def _take_out(self, removing: Removing, graph: GraphClient, group_of: GroupOf) -> str:
        """Take one person out of their room's channel; record and audit how it went."""
        room, now = removing.room, self.clock()
        channel = (room.conversation_id or "").split(";", 1)[0]
        if not channel or room.space_kind == "thread":
            await self.db.commit(functools.partial(cleanup.removed, removing=removing, outcome="absent",
                                                   detail="the room has no channel of its own"))  # fmt: skip
            return "absent"
        try:
            group = await group_of(room)
        except Refused as exc:
            problem = f"the room's team could not be found: {exc}"
        except Exception as exc:  # the Bot Connector could not be reached: tried again later, like Graph
            problem = f"the room's team could not be looked up just now ({type(exc).__name__})"
        else:
            result = await graph_guests.remove_guest(
                graph, group_id=group, channel_id=channel, user_ids=removing.accounts, email=removing.email)
            if result.outcome is not None:
                record = functools.partial(cleanup.removed, removing=removing, outcome=result.outcome,
                                           detail=result.detail)  # fmt: skip
                await self.db.commit(record)
                return result.outcome
            problem = result.detail
        log.warning("could not take a guest out of %s's channel: %s", room.key, problem)
        await self.db.commit(functools.partial(cleanup.failed, removing=removing, reason=problem, now=now))
        return "failed"

    async def _remind(self, done: Ticked) -> None:
        now = self.clock()
        for lead, week in await self.db.run(lambda s: reminder.due(s, now=now), readonly=True):
            remind = functools.partial(reminder.remind, lead=lead, week=week, now=now, render=reminder_card,
                                       render_all=lead_reminder_card)  # fmt: skip
            sent = await self._each(f"the reminder of lead {lead}", self.db.commit(remind))
            if sent:
                done.reminders.extend(sent)
                self.wake()
