"""Who may see which of a room's tasks and people: the policy asked for each current member.

The room's digest post, and every reply given in the room's own thread or channel, is read by
everyone in the room, so it shows what every current member may see (`everyone`); each person's own
digest shows what they may see. Nothing here decides: for every member it asks `task.show` (with
the facts a `/task show` by that member would carry), `member.see` (dialogs/names.py) and
`digest.personal` (may their own digest go to their personal chat). A task's facts differ from the
room's only in whether it is shared with the reader, so each member costs two questions about tasks,
and the policy remembers its answers by their facts: a room of 20 members and 50 tasks is a handful
of Cedar evaluations, not a thousand.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from core.digest.build import Snapshot
from core.digest.scheduled import Scope, Scopes
from core.rooms.models import Room, RoomMember
from core.tasks.models import Task
from core.tasks.service import shared_with
from dialogs.facts import DecideMany, room_facts
from dialogs.names import Names, Who, nameable, people
from policies import Principal, Resource

PERSONAL = "digest.personal"


@dataclass(frozen=True)
class Sight:
    """What a reader (or every reader of one reply) may see of a room: task ids, and whom to name."""

    tasks: frozenset[int]
    names: Names

    def __and__(self, other: Sight) -> Sight:
        return Sight(self.tasks & other.tasks, self.names & other.names)


def principal_of(member: RoomMember) -> Principal:
    """A room member as the policy knows them when they are not the one asking."""
    return Principal.of_member(member.aad_id, member.tenant_id, member.role, name=member.name,
                               agency=member.agency)  # fmt: skip


def member_facts(room: Room, member: RoomMember, *, now: datetime) -> Resource:
    """The room facts of a member, as if they asked in the room's own space."""
    return room_facts(room, member, team_id=room.team_id, inside=True, now=now)


def visible_to(decide_many: DecideMany, principal: Principal, base: Resource, tasks: Sequence[Task],
               shares: Mapping[int, frozenset[str]], ids: frozenset[int] | None = None,
               ) -> set[int]:  # fmt: skip
    """The ids of these tasks this principal may see, with these room facts.

    A task's facts differ from the room's only in whether it is shared with the reader, so the policy
    is asked about both cases once; only when its answers differ is each task's sharing looked at.
    """
    if not tasks:  # a reply about people only (/room status): nothing to ask
        return set()
    shared, unshared = replace(base, shared_with_caller=True), replace(base, shared_with_caller=False)
    if_shared, if_not = (d.allowed for d in decide_many(principal, [("task.show", shared),
                                                                    ("task.show", unshared)]))  # fmt: skip
    if if_shared == if_not:
        if ids is None:
            ids = frozenset(task.id for task in tasks if task.id is not None)
        return set(ids) if if_shared else set()
    wanted = if_shared  # the tasks whose sharing makes them visible (or, oddly, hides them)
    return {task.id for task in tasks if task.id is not None
            and shared_with(task, shares.get(task.id, frozenset()), aad_id=principal.aad_id,
                            agency=principal.agency) is wanted}  # fmt: skip


def sight_of(decide_many: DecideMany, principal: Principal, base: Resource, tasks: Sequence[Task],
             shares: Mapping[int, frozenset[str]], who: Mapping[str, Who],
             ids: frozenset[int] | None = None) -> Sight:  # fmt: skip
    """What this principal may see, with these room facts: which tasks, and whom they may name."""
    seen = visible_to(decide_many, principal, base, tasks, shares, ids)
    return Sight(frozenset(seen), nameable(decide_many, principal, base, who))


def mentioned(tasks: Iterable[Task]) -> list[tuple[str | None, str | None]]:
    """The people tasks name (their assignees), as (object id, name)."""
    return [(task.assignee_aad_id, task.assignee_name) for task in tasks]


def members_sights(decide_many: DecideMany, room: Room, members: Sequence[RoomMember], tasks: Sequence[Task],
                   shares: Mapping[int, frozenset[str]], who: Mapping[str, Who], *,
                   now: datetime) -> list[tuple[RoomMember, Resource, Sight]]:  # fmt: skip
    """Each current member's sight of the room (members: those whose access has not ended)."""
    ids = frozenset(task.id for task in tasks if task.id is not None)
    out = []
    for member in members:
        base = member_facts(room, member, now=now)
        out.append((member, base, sight_of(decide_many, principal_of(member), base, tasks, shares, who, ids)))
    return out


def everyone(decide_many: DecideMany, room: Room, members: Sequence[RoomMember], tasks: Sequence[Task],
             shares: Mapping[int, frozenset[str]], who: Mapping[str, Who], *,
             now: datetime) -> Sight | None:  # fmt: skip
    """What every one of these members may see (None: there are none): what a reply read by the whole
    room may show."""
    common: Sight | None = None
    for _, _, seen in members_sights(decide_many, room, members, tasks, shares, who, now=now):
        common = seen if common is None else common & seen
    return common


def scope_by(decide_many: DecideMany) -> Scope:
    """The digest scope under a policy: what the room post shows in full, counts, and each member's own."""

    def scope(snapshot: Snapshot) -> Scopes:
        common: Sight | None = None
        anyone: set[int] = set()
        own: dict[str, frozenset[int]] = {}
        named: dict[str, frozenset[str]] = {}
        who = people(snapshot.members, mentioned(snapshot.tasks))
        for member, base, seen in members_sights(decide_many, snapshot.room, snapshot.members, snapshot.tasks,
                                                 snapshot.shares, who, now=snapshot.now):  # fmt: skip
            common = seen if common is None else common & seen
            anyone |= seen.tasks
            if decide_many(principal_of(member), [(PERSONAL, base)])[0].allowed:
                own[member.aad_id], named[member.aad_id] = seen.tasks, seen.names.allowed
        shown = common.tasks if common is not None else frozenset()
        return Scopes(room=shown, some=frozenset(anyone - shown), people=own,
                      room_named=common.names.allowed if common is not None else frozenset(),
                      named=named)  # fmt: skip

    return scope
