"""Whose names a reply may show: the one place that asks the policy (`member.see`) about people.

Every card or message that names a person (room status, /agency show, task cards, digests) is
given a `Names` built here, and shows a name only if it says so; everyone else is counted ("Police:
12 people") or, as a task's assignee, shown as "assigned". Card builders stay pure: they get the
answer, never the policy.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from functools import lru_cache

from core.rooms.models import RoomMember
from dialogs.facts import DecideMany
from policies import Principal, Resource
from policies.model import RoomRole

MEMBER_SEE = "member.see"
_ROLES = {role.value: role for role in RoomRole}
UNNAMED = "assigned"
"""What a task's assignee reads as when the reader may not see their name."""


@dataclass(frozen=True)
class Who:
    """What the policy may know about a person a reply would name: their standing in the room and agency."""

    role: str | None = None
    agency: str | None = None
    name: str | None = None


@dataclass(frozen=True)
class Names:
    """The people (Entra object ids) a reply may name, and the names they go by (for text that names
    them, such as a task's history); everyone else is counted, never named."""

    allowed: frozenset[str] = frozenset()
    who: Mapping[str, Who] = field(default_factory=dict)
    """The people asked about, with the names they go by (for `label`); only those allowed count."""

    def shows(self, aad_id: str | None) -> bool:
        """May this person be named."""
        return aad_id is not None and aad_id in self.allowed

    def person(self, aad_id: str | None, name: str | None, *, hidden: str = "someone") -> str:
        """A person as the reply shows them: their name (or id) if allowed, else `hidden`."""
        return (name or aad_id or hidden) if self.shows(aad_id) else hidden

    def label(self, text: str | None) -> bool:
        """May a label naming someone (as a task's history keeps it, e.g. "PC Ben Officer") be shown."""
        if text is None:
            return False
        if text == "nobody" or text.startswith("agency "):
            return True
        return any(text == aad_id or (aad_id in self.who and text == self.who[aad_id].name)
                   for aad_id in self.allowed)  # fmt: skip

    def __and__(self, other: Names) -> Names:
        who = self.who if self.who is other.who else {**other.who, **self.who}
        return Names(self.allowed & other.allowed, who)


def people(members: Iterable[RoomMember],
           others: Iterable[tuple[str | None, str | None]] = ()) -> dict[str, Who]:  # fmt: skip
    """The people a reply about a room may name: its members, and others it mentions as (object id,
    name) (an assignee who is not in the room has no standing there as far as the policy knows)."""
    found = {m.aad_id: Who(m.role, m.agency, m.name) for m in members}
    for aad_id, name in others:
        if aad_id and aad_id not in found:
            found[aad_id] = Who(name=name)
    return found


@lru_cache(maxsize=4096)
def _about(base: Resource, role: RoomRole | None, same: bool) -> Resource:
    """The facts of `member.see` (kept: a room's members share a handful of them, and making one costs
    more than the decision, which the policy remembers by them)."""
    return replace(base, target_role=role, same_agency=same)


def standing(reader: Principal, aad_id: str, who: Who) -> tuple[RoomRole | None, bool]:
    """What `member.see` knows of one person, for this reader: their room role, and whether they are the
    reader or of the reader's own agency."""
    same = aad_id == reader.aad_id or bool(reader.agency and who.agency == reader.agency)
    return _ROLES.get(who.role or ""), same


def nameable(decide_many: DecideMany, reader: Principal, base: Resource, who: Mapping[str, Who]) -> Names:
    """Whom this reader may name among `who`, on their room facts `base`: one question per distinct
    standing (a lead, a member, a guest of the reader's agency...), not one per person."""
    standings = {aad_id: standing(reader, aad_id, person) for aad_id, person in who.items()}
    kinds = sorted(set(standings.values()), key=str)
    decisions = decide_many(reader, [(MEMBER_SEE, _about(base, role, same)) for role, same in kinds])
    may = {kind for kind, d in zip(kinds, decisions, strict=True) if d.allowed}
    allowed = frozenset(aad_id for aad_id, kind in standings.items() if kind in may)
    return Names(allowed, who)


def of_lead(decide_many: DecideMany, reader: Principal, base: Resource, lead_aad_id: str,
            lead_name: str | None) -> Names:  # fmt: skip
    """Whether this reader may name a room's lead, on their facts about that room."""
    return nameable(decide_many, reader, base, {lead_aad_id: Who(RoomRole.LEAD.value, None, lead_name)})

