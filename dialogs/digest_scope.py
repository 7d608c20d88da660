"""Who may see which of a room's tasks in its digest: the policy asked for each current member.

The digest code never decides: for every member it asks `task.show` (with the facts a `/task show`
by that member would carry) and `digest.now` (may they have a digest of their own). A task's facts
differ from the room's only in whether it is shared with the reader, so each member costs two
questions about tasks, and the policy remembers its answers by their facts: a room of 20 members and
50 tasks is a handful of Cedar evaluations, not a thousand.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from core.digest.build import Snapshot
from core.digest.scheduled import Scope, Scopes
from core.rooms.models import Room, RoomMember
from core.tasks.models import Task
from core.tasks.service import shared_with
from dialogs.facts import DecideMany, room_facts
from policies import Principal, PrincipalKind, Resource
from policies.model import RoomRole

OFFICER_ROLES = frozenset({RoomRole.LEAD.value, RoomRole.MEMBER.value})


def principal_of(member: RoomMember) -> Principal:
    """A room member as the policy knows them when they are not the one asking: an officer for the
    lead and members, a guest (of their agency) for every other role. Fails closed: an unknown role is
    a guest."""
    kind = PrincipalKind.OFFICER if member.role in OFFICER_ROLES else PrincipalKind.GUEST
    return Principal(member.aad_id, member.tenant_id, kind, name=member.name, agency=member.agency)


def member_facts(room: Room, member: RoomMember, *, now: datetime) -> Resource:
    """The room facts of a member, as if they asked in the room's own space."""
    return room_facts(room, member, team_id=room.team_id, inside=True, now=now)


def task_requests(
    base: Resource, tasks: Sequence[Task], shares: dict[int, frozenset[str]], *, aad_id: str | None,
    agency: str | None,
) -> list[tuple[str, Resource]]:  # fmt: skip
    """`task.show` of each task, with whether it is shared with this reader."""
    shared, unshared = replace(base, shared_with_caller=True), replace(base, shared_with_caller=False)
    return [("task.show", shared if shared_with(task, shares.get(task.id or 0, frozenset()), aad_id=aad_id,
                                                agency=agency) else unshared)
            for task in tasks]  # fmt: skip


def visible_to(decide_many: DecideMany, principal: Principal, base: Resource, snapshot: Snapshot,
               ids: frozenset[int] | None = None) -> set[int]:  # fmt: skip
    """The ids of the snapshot's tasks this principal may see, with these room facts.

    A task's facts differ from the room's only in whether it is shared with the reader, so the policy
    is asked about both cases once; only when its answers differ is each task's sharing looked at.
    """
    shared, unshared = replace(base, shared_with_caller=True), replace(base, shared_with_caller=False)
    if_shared, if_not = (d.allowed for d in decide_many(principal, [("task.show", shared),
                                                                    ("task.show", unshared)]))  # fmt: skip
    if if_shared == if_not:
        if ids is None:
            ids = frozenset(task.id for task in snapshot.tasks if task.id is not None)
        return set(ids) if if_shared else set()
    wanted = if_shared  # the tasks whose sharing makes them visible (or, oddly, hides them)
    return {task.id for task in snapshot.tasks if task.id is not None
            and shared_with(task, snapshot.shares.get(task.id, frozenset()), aad_id=principal.aad_id,
                            agency=principal.agency) is wanted}  # fmt: skip


def scope_by(decide_many: DecideMany) -> Scope:
    """The digest scope under a policy: what the room post shows in full, counts, and each member's own."""

    def scope(snapshot: Snapshot) -> Scopes:
        everyone: set[int] | None = None
        anyone: set[int] = set()
        people: dict[str, frozenset[int]] = {}
        ids = frozenset(task.id for task in snapshot.tasks if task.id is not None)
        for member in snapshot.members:
            principal = principal_of(member)
            base = member_facts(snapshot.room, member, now=snapshot.now)
            seen = visible_to(decide_many, principal, base, snapshot, ids)
            everyone = seen if everyone is None else everyone & seen
            anyone |= seen
            if decide_many(principal, [("digest.now", base)])[0].allowed:
                people[member.aad_id] = frozenset(seen)
        shown = frozenset(everyone or ())
        return Scopes(room=shown, some=frozenset(anyone - shown), people=people)

    return scope
