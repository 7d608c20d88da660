"""What a reply may show, given who will read it.

A reply posted in the room's own thread or channel is read by everyone in the room, guests included:
it shows what every current member may see (dialogs/digest_scope.everyone, the room digest's rule)
and the caller may see, counts the rest, and points to the caller's chat with Opsroom for them.
Anywhere else (a personal chat; --room KEY from another place) the caller's own sight applies. In a
room without guests every officer sees everything, so nothing changes there.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from sqlmodel import Session

from core.digest.build import current
from core.rooms import service as rooms
from core.rooms.models import RoomMember
from core.rooms.states import RoomState
from core.tasks.models import Task
from dialogs.context import CommandContext
from dialogs.digest_scope import Sight, everyone, mentioned, principal_of, sight_of
from dialogs.facts import visible
from dialogs.names import Names, Who, people
from dialogs.text import Markdown, code


@dataclass(frozen=True)
class View:
    """The caller's own sight, what this reply may show, and whether the whole room reads it."""

    own: Sight
    shown: Sight
    room_space: bool

    @property
    def held(self) -> frozenset[int]:
        """Tasks the caller may see that this reply does not show (only some of its readers may)."""
        return self.own.tasks - self.shown.tasks

    @property
    def names(self) -> Names:
        """Whom the reply may name."""
        return self.shown.names


def view(ctx: CommandContext, members: Sequence[RoomMember], tasks: Sequence[Task] = (),
         shares: Mapping[int, frozenset[str]] | None = None,
         others: Iterable[tuple[str | None, str | None]] = (), *,
         kept: RoomState | None = None) -> View:  # fmt: skip
    """What a reply about these tasks and people may show (members: everyone recorded in the room;
    others: more people it would name, as (object id, name); kept: the room state members, tasks and
    shares come from, where what every reader may see is remembered)."""
    room, shared, others = ctx.room, shares or {}, tuple(others)
    assert room is not None
    who = people(members, [*mentioned(tasks), *others])
    own = sight_of(ctx.decide_many, ctx.principal, ctx.resource, tasks, shared, who)
    if not ctx.resource.in_room_space:
        return View(own, own, False)
    now = ctx.now()
    readers = current(members, now=now)

    def common_sight() -> Sight | None:
        # The readers' facts read the room's key, state and team, and `now` only through whose access
        # has ended, which `readers` already says (room_facts, digest_scope.member_facts).
        return everyone(ctx.decide_many, room, readers, tasks, shared, who, now=now)

    if kept is None:
        common = common_sight()
    else:
        key = ("everyone", room.key, room.closed, room.team_id, tuple(m.aad_id for m in readers),
               tuple(task.id for task in tasks), others)  # fmt: skip
        common = kept.derive(key, common_sight)
    return View(own, own if common is None else own & common, True)


async def beyond_the_room(ctx: CommandContext, who: Mapping[str, Who]) -> tuple[frozenset[int], Names] | None:
    """For a reply about other rooms (/room list, /agency show) given in a room's own space: the rooms
    every current member of this room may see, and whom they may all name among `who` (on this room's
    facts, so that anyone not in it is named to officers only). None: not in a room's space."""
    room, now, team = ctx.room, ctx.now(), ctx.conversation.team_id
    if not ctx.resource.in_room_space or room is None or room.id is None:
        return None
    room_id = room.id

    def read(session: Session) -> list[tuple[RoomMember, list[int]]]:
        readers = current(rooms.members(session=session, room_id=room_id), now=now)
        return [(m, [r.id for r in visible(ctx.decide_many, principal_of(m),
                                           rooms.candidates(session=session, aad_id=m.aad_id, team_id=team),
                                           team_id=team, now=now) if r.id is not None])
                for m in readers]  # fmt: skip

    readers = await ctx.db.run(read, readonly=True)
    seen = view(ctx, [m for m, _ in readers], others=[(aad_id, w.name) for aad_id, w in who.items()])
    shared: set[int] | None = None
    for _, ids in readers:
        shared = set(ids) if shared is None else shared & set(ids)
    return frozenset(shared or ()), seen.names


def more_tasks(count: int, room_key: str) -> Markdown:
    """What a reply in the room's space says of the tasks only some of its readers may see."""
    what = "1 more task" if count == 1 else f"{count} more tasks"
    return Markdown(f"{what} only some members may see: ask in your chat with Opsroom, "
                    f"{code(f'/task list --room {room_key}')}.")  # fmt: skip


def not_here(number: int, room_key: str) -> Markdown:
    """What a reply in the room's space says instead of a task only some of its readers may see."""
    where = code(f"/task show {number} --room {room_key}")
    return Markdown(f"#{number} is shared with only some members of this room, so it is not shown here: ask "
                    f"in your chat with Opsroom, {where}.")  # fmt: skip
