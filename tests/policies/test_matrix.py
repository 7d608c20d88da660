"""The whole decision matrix of the shipped policy, as a table a reviewer can read.

Rows: every action the bot asks about (bot.policy_actions.required_actions, and every action the
schema declares). Columns: who is asking. Cells: the room situations in which it is allowed:

  own    the caller's own room, asked in its thread or channel (an officer who is not a member is
         typing there; a guest's standing is their invitation's; the task named is shared with them)
  other  a room they have no standing in, asked from elsewhere
  closed their own room, closed

A new action without a row, or a changed decision, fails here.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from bot.policy_actions import required_actions
from policies import Policy, Principal, PrincipalKind, Resource, RoomRole

HOME, AWAY, SHUT = "own", "other", "closed"
ALL, OC, OWN, NONE = frozenset({HOME, AWAY, SHUT}), frozenset({HOME, SHUT}), frozenset({HOME}), frozenset[str]()

OFFICER = Principal("o1", "home", PrincipalKind.OFFICER)
SUPERVISOR = Principal("s1", "home", PrincipalKind.SUPERVISOR)
GUEST = Principal("g1", "home", PrincipalKind.GUEST, agency="socialcare")
# Teams says userRole "user", but identity found the #EXT# UPN (or Graph's userType): a guest.
B2B_USER = Principal("g2", "home", PrincipalKind.GUEST, agency="socialcare")
# An external member of a shared channel: their own tenant on the member record, a guest.
EXTERNAL = Principal("g3", "health-tenant", PrincipalKind.GUEST, agency="health")

ROOM = Resource(room_key="OP-LANTERN", in_room_space=True, room_in_team=True, shared_with_caller=True,
                has_justification=True, target_kind="officer", target_role=RoomRole.MEMBER)  # fmt: skip
"""The caller's own room; what a command names there: a task shared with them, an officer (a new lead),
a police member of the room (whose name a reply would show), a reason (--reason)."""
OTHER = Resource(room_key="OP-OTHER", has_justification=True, target_kind="officer", target_role=RoomRole.MEMBER)


def own(role: RoomRole | None = None, **membership: bool) -> Resource:
    return replace(ROOM, role=role, **membership)


V, K = RoomRole.GUEST_VIEWER, RoomRole.GUEST_CONTRIBUTOR
PEOPLE: dict[str, tuple[Principal, Resource]] = {
    "officer": (OFFICER, own()),  # not a member: typing in the room's space (it joins them)
    "member": (OFFICER, own(RoomRole.MEMBER)),
    "lead": (OFFICER, own(RoomRole.LEAD)),
    "supervisor": (SUPERVISOR, own()),
    "viewer": (GUEST, own(V)),
    "contributor": (GUEST, own(K)),
    "no_export": (GUEST, own(V, no_export=True)),
    "expired": (GUEST, own(K, access_expired=True)),
    "revoked": (GUEST, own(K, access_revoked=True)),
    "uninvited": (GUEST, own()),
    "b2b_user": (B2B_USER, own(V)),
    "external": (EXTERNAL, own(V)),
}
GROUPS = {
    "officers": ("officer", "member", "lead"),
    "members": ("member", "lead"),
    "guests": ("viewer", "contributor", "no_export", "b2b_user", "external"),
    "gone": ("expired", "revoked"),
}


def row(default: frozenset[str] = NONE, **cells: frozenset[str]) -> dict[str, frozenset[str]]:
    """One action's row: everyone `default`, then groups (GROUPS) and people as named, in that order."""
    out = dict.fromkeys(PEOPLE, default)
    for who, where in cells.items():
        for person in GROUPS.get(who, (who,)):
            out[person] = where
    return out


ANYONE = row(ALL, gone=frozenset({AWAY}))  # whoever is identified; a guest whose access ended, not there
EVENTS = ("event.installed", "event.uninstalled", "event.members_changed", "event.installation_add",
          "event.installation_remove", "event.installation_update")  # fmt: skip
MANAGE = row(lead=OWN, supervisor=frozenset({HOME, AWAY}))  # the lead and supervisors; never in a closed room

MATRIX: dict[str, dict[str, frozenset[str]]] = {
    "help": ANYONE,
    **dict.fromkeys(EVENTS, ANYONE),
    "room.open": row(officers=ALL, supervisor=ALL),
    "room.list": row(officers=ALL, supervisor=ALL),
    "room.list_all": row(supervisor=ALL),
    "room.see": row(officers=OC, supervisor=ALL, guests=OC),
    "room.join": row(officer=OC),
    "room.status": row(members=OC, supervisor=ALL, guests=OC),
    "room.close": MANAGE, "room.lead": MANAGE, "room.hours": MANAGE, "digest.at": MANAGE, "digest.off": MANAGE,
    "invite": MANAGE, "revoke": MANAGE,
    "room.reopen": row(lead=OC, supervisor=ALL),
    "access": row(lead=OC, supervisor=ALL),
    "agency.add": row(supervisor=ALL),
    "agency.list": row(officers=ALL, supervisor=ALL),
    "task.add": row(members=OWN), "task.assign": row(members=OWN), "task.reopen": row(members=OWN),
    "task.list": row(members=OC, supervisor=ALL, guests=OC),
    "task.show": row(members=OC, supervisor=ALL, guests=OC),
    "task.show [not shared with them]": row(members=OC, supervisor=ALL),
    "task.done": row(members=OWN, contributor=OWN),
    "task.done [not shared with them]": row(members=OWN),
    "task.note": row(members=OWN, contributor=OWN),
    "digest.now": row(members=OC, supervisor=ALL, guests=OC),
    "digest.personal": row(members=OC, supervisor=ALL, guests=OC, no_export=NONE),
    "member.see [a police member]": row(officers=ALL, supervisor=ALL),
    "member.see [the lead]": row(officers=ALL, supervisor=ALL, guests=OC),
    "member.see [their own agency]": row(officers=ALL, supervisor=ALL, guests=OC),
    "audit.query": row(lead=OC, supervisor=ALL),
    "audit.verify": row(lead=OC, supervisor=ALL),
    "audit.export": row(supervisor=ALL),
    "oversight.here": row(supervisor=ALL), "oversight.rules": row(supervisor=ALL),
    "oversight.mute": row(supervisor=ALL), "oversight.unmute": row(supervisor=ALL),
}
VARIANTS = {
    "not shared with them": {"shared_with_caller": False},
    "a police member": {},
    "the lead": {"target_role": RoomRole.LEAD},
    "their own agency": {"target_role": RoomRole.GUEST_VIEWER, "same_agency": True},
}
HANDS_DATA_OUT = {"audit.export": "no-export", "digest.personal": "no-export-personal"}
"""Every action that hands data out of the room's space (exports, files, full-detail cards into personal
chats), with the forbid that stops it under a no-export sharing agreement."""
NO_EXPORT_REASON = "exports are not allowed under this sharing agreement"

POLICY = Policy.load()


def situation(person: str, where: str, variant: str | None) -> tuple[Principal, Resource]:
    principal, mine = PEOPLE[person]
    facts = {HOME: mine, AWAY: OTHER, SHUT: replace(mine, room_closed=True, room_in_team=False)}[where]
    return principal, replace(facts, **VARIANTS[variant]) if variant else facts


def split(key: str) -> tuple[str, str | None]:
    action, _, variant = key.partition(" [")
    return action, variant.rstrip("]") or None


CELLS = [(key, person, where) for key in MATRIX for person in PEOPLE for where in (HOME, AWAY, SHUT)]


@pytest.mark.parametrize(("key", "person", "where"), CELLS)
def test_the_policy_decides_as_the_matrix_says(key: str, person: str, where: str) -> None:
    action, variant = split(key)
    principal, facts = situation(person, where, variant)
    decision = POLICY.decide(principal, action, facts)
    assert decision.allowed is (where in MATRIX[key][person]), decision


def test_every_action_has_a_row_and_every_row_an_action() -> None:
    actions = {split(key)[0] for key in MATRIX}
    assert required_actions() | POLICY.actions <= actions, "a new action needs its row in MATRIX"
    assert actions <= POLICY.actions
    assert all(set(cells) == set(PEOPLE) for cells in MATRIX.values())
    assert {v for key in MATRIX if (v := split(key)[1])} == set(VARIANTS)


def test_guests_are_guests_however_teams_saw_them() -> None:
    for key, cells in MATRIX.items():
        assert cells["b2b_user"] == cells["external"] == cells["viewer"], key


def test_no_export_stops_exactly_what_hands_data_out() -> None:
    for key, cells in MATRIX.items():
        action = split(key)[0]
        if action in HANDS_DATA_OUT:
            assert cells["no_export"] == NONE, key
        else:
            assert cells["no_export"] == cells["viewer"], f"{key}: no-export changes only what hands data out"


@pytest.mark.parametrize("action", sorted(HANDS_DATA_OUT))
@pytest.mark.parametrize("person", sorted(PEOPLE))
def test_every_export_is_forbidden_under_no_export_with_the_reason(action: str, person: str) -> None:
    principal, facts = situation(person, HOME, None)
    for closed in (False, True):
        decision = POLICY.decide(principal, action, replace(facts, no_export=True, room_closed=closed))
        assert not decision.allowed
        if decision.rule not in ("guest-access-expired", "guest-access-revoked"):
            assert (decision.rule, decision.reason) == (HANDS_DATA_OUT[action], NO_EXPORT_REASON)
