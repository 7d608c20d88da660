"""The shipped policy (opsroom.cedar) as a decision table: DESIGN.md, "Roles and what they may do"."""

from __future__ import annotations

from dataclasses import replace

import pytest

from policies import Decision, Policy, Principal, PrincipalKind, Resource, RoomRole, evaluate

OFFICER = Principal("o1", "home", PrincipalKind.OFFICER, name="Olu")
SUPERVISOR = Principal("s1", "home", PrincipalKind.SUPERVISOR)
GUEST = Principal("g1", "other", PrincipalKind.GUEST, agency="social-care")
ANONYMOUS = Principal(None, None, PrincipalKind.ANONYMOUS)
SYSTEM = Principal(None, None, PrincipalKind.SYSTEM)

NONE = Resource(room_key="OP-X")
IN_TEAM = replace(NONE, room_in_team=True)
IN_SPACE = replace(NONE, in_room_space=True)
MEMBER = replace(NONE, role=RoomRole.MEMBER)
LEAD = replace(NONE, role=RoomRole.LEAD)
VIEWER = replace(NONE, role=RoomRole.GUEST_VIEWER, shared_with_caller=True)
VIEWER_UNSHARED = replace(NONE, role=RoomRole.GUEST_VIEWER)
CONTRIB = replace(NONE, role=RoomRole.GUEST_CONTRIBUTOR, shared_with_caller=True)
CONTRIB_UNSHARED = replace(NONE, role=RoomRole.GUEST_CONTRIBUTOR)


def closed(r: Resource) -> Resource:
    return replace(r, room_closed=True)


def expired(r: Resource) -> Resource:
    return replace(r, access_expired=True)


def revoked(r: Resource) -> Resource:
    return replace(r, access_revoked=True)


def naming(r: Resource, kind: str | None) -> Resource:
    return replace(r, target_kind=kind)


def about(r: Resource, role: RoomRole | None, *, same_agency: bool = False) -> Resource:
    """member.see: whether the caller may see the name of someone with this standing in the room."""
    return replace(r, target_role=role, same_agency=same_agency)


JUSTIFIED = Resource(has_justification=True)

# (who, action, facts, allowed, deciding rule)
TABLE: list[tuple[Principal, str, Resource, bool, str]] = [
    # help: anyone identified
    (OFFICER, "help", NONE, True, "help-anyone"),
    (GUEST, "help", NONE, True, "help-anyone"),
    (SYSTEM, "help", NONE, True, "help-anyone"),
    (ANONYMOUS, "help", NONE, False, "anonymous-nothing"),
    (GUEST, "help", expired(VIEWER), False, "guest-access-expired"),
    # room open / list own / agencies list: officers and supervisors
    (OFFICER, "room.open", NONE, True, "officer-open-list"),
    (SUPERVISOR, "room.open", NONE, True, "officer-open-list"),
    (GUEST, "room.open", CONTRIB, False, "default-deny"),
    (SYSTEM, "room.open", NONE, False, "default-deny"),
    (ANONYMOUS, "room.open", NONE, False, "anonymous-nothing"),
    (OFFICER, "room.list", NONE, True, "officer-open-list"),
    (GUEST, "room.list", NONE, False, "default-deny"),
    (OFFICER, "agency.list", NONE, True, "officer-open-list"),
    (GUEST, "agency.list", VIEWER, False, "default-deny"),
    (SUPERVISOR, "room.list_all", NONE, True, "supervisor-lists-all-rooms"),
    (OFFICER, "room.list_all", LEAD, False, "default-deny"),
    # room status: anyone in the room, supervisors; still readable when closed
    (OFFICER, "room.status", NONE, False, "default-deny"),
    (OFFICER, "room.status", MEMBER, True, "room-status-member"),
    (OFFICER, "room.status", closed(LEAD), True, "room-status-member"),
    (GUEST, "room.status", VIEWER, True, "room-status-member"),
    (GUEST, "room.status", expired(CONTRIB), False, "guest-access-expired"),
    (SUPERVISOR, "room.status", NONE, True, "room-status-member"),
    (ANONYMOUS, "room.status", MEMBER, False, "anonymous-nothing"),
    # room close / reopen / lead, digest at/off: the lead, supervisors
    (OFFICER, "room.close", MEMBER, False, "default-deny"),
    (OFFICER, "room.close", LEAD, True, "lead-manages-room"),
    (SUPERVISOR, "room.close", NONE, True, "lead-manages-room"),
    (GUEST, "room.close", CONTRIB, False, "default-deny"),
    (OFFICER, "room.close", closed(LEAD), False, "closed-room-read-only"),
    (OFFICER, "room.reopen", closed(LEAD), True, "lead-manages-room"),
    (OFFICER, "room.reopen", closed(MEMBER), False, "default-deny"),
    (SUPERVISOR, "room.reopen", closed(NONE), True, "lead-manages-room"),
    (OFFICER, "room.lead", naming(LEAD, "officer"), True, "lead-manages-room"),
    (OFFICER, "room.lead", naming(LEAD, "supervisor"), True, "lead-manages-room"),
    (SUPERVISOR, "room.lead", naming(NONE, "officer"), True, "lead-manages-room"),
    (OFFICER, "room.lead", naming(LEAD, "guest"), False, "lead-must-be-officer"),
    (SUPERVISOR, "room.lead", naming(NONE, "guest"), False, "lead-must-be-officer"),
    (OFFICER, "room.lead", LEAD, False, "lead-must-be-officer"),
    (OFFICER, "room.lead", naming(MEMBER, "officer"), False, "default-deny"),
    (OFFICER, "room.lead", closed(naming(LEAD, "officer")), False, "closed-room-read-only"),
    # two forbids: the first in the file decides
    (OFFICER, "room.lead", closed(naming(LEAD, "guest")), False, "closed-room-read-only"),
    (OFFICER, "digest.at", LEAD, True, "lead-manages-room"),
    (OFFICER, "digest.at", MEMBER, False, "default-deny"),
    (OFFICER, "digest.off", closed(LEAD), False, "closed-room-read-only"),
    (SUPERVISOR, "digest.off", NONE, True, "lead-manages-room"),
    # invite / revoke / access: the lead, supervisors
    (OFFICER, "invite", MEMBER, False, "default-deny"),
    (OFFICER, "invite", LEAD, True, "lead-manages-room"),
    (OFFICER, "invite", closed(LEAD), False, "closed-room-read-only"),
    (SUPERVISOR, "invite", NONE, True, "lead-manages-room"),
    (GUEST, "invite", CONTRIB, False, "default-deny"),
    (OFFICER, "revoke", LEAD, True, "lead-manages-room"),
    (OFFICER, "revoke", MEMBER, False, "default-deny"),
    (OFFICER, "access", LEAD, True, "lead-manages-room"),
    (OFFICER, "access", closed(LEAD), True, "lead-manages-room"),
    (OFFICER, "access", MEMBER, False, "default-deny"),
    (GUEST, "access", VIEWER, False, "default-deny"),
    # agency add: supervisors only
    (OFFICER, "agency.add", LEAD, False, "default-deny"),
    (SUPERVISOR, "agency.add", NONE, True, "supervisor-agencies"),
    # task add / assign / reopen: officers in the room
    (OFFICER, "task.add", MEMBER, True, "member-tasking"),
    (OFFICER, "task.add", LEAD, True, "member-tasking"),
    (OFFICER, "task.add", NONE, False, "default-deny"),
    (OFFICER, "task.add", closed(MEMBER), False, "closed-room-read-only"),
    (SUPERVISOR, "task.add", NONE, False, "default-deny"),
    (GUEST, "task.add", CONTRIB, False, "default-deny"),
    (OFFICER, "task.assign", MEMBER, True, "member-tasking"),
    (GUEST, "task.assign", VIEWER, False, "default-deny"),
    (OFFICER, "task.reopen", LEAD, True, "member-tasking"),
    (OFFICER, "task.reopen", closed(LEAD), False, "closed-room-read-only"),
    # task list / show: officers in the room, supervisors, guests what is shared with them
    (OFFICER, "task.list", MEMBER, True, "member-reads-tasks"),
    (SUPERVISOR, "task.list", NONE, True, "member-reads-tasks"),
    (OFFICER, "task.list", NONE, False, "default-deny"),
    (GUEST, "task.list", VIEWER_UNSHARED, True, "guest-reads-shared"),
    (GUEST, "task.list", NONE, False, "default-deny"),
    (GUEST, "task.list", expired(VIEWER), False, "guest-access-expired"),
    (OFFICER, "task.show", closed(MEMBER), True, "member-reads-tasks"),
    (GUEST, "task.show", VIEWER, True, "guest-reads-shared"),
    (GUEST, "task.show", VIEWER_UNSHARED, False, "default-deny"),
    (GUEST, "task.show", CONTRIB, True, "guest-reads-shared"),
    # task done / note: officers in the room, contributors on what is shared with them
    (OFFICER, "task.done", MEMBER, True, "member-updates-tasks"),
    (GUEST, "task.done", VIEWER, False, "default-deny"),
    (GUEST, "task.done", CONTRIB, True, "guest-contributor-updates-shared"),
    (GUEST, "task.done", CONTRIB_UNSHARED, False, "default-deny"),
    (GUEST, "task.done", closed(CONTRIB), False, "closed-room-read-only"),
    (GUEST, "task.done", expired(CONTRIB), False, "guest-access-expired"),
    (GUEST, "task.list", revoked(VIEWER), False, "guest-access-revoked"),
    (GUEST, "task.done", revoked(CONTRIB), False, "guest-access-revoked"),
    (SUPERVISOR, "task.done", NONE, False, "default-deny"),
    (OFFICER, "task.note", LEAD, True, "member-updates-tasks"),
    (GUEST, "task.note", CONTRIB, True, "guest-contributor-updates-shared"),
    # digest now: the room, guests in their scope, supervisors; the scheduler goes elsewhere
    (OFFICER, "digest.now", MEMBER, True, "member-digest"),
    (SUPERVISOR, "digest.now", NONE, True, "member-digest"),
    (GUEST, "digest.now", VIEWER_UNSHARED, True, "guest-reads-shared"),
    (OFFICER, "digest.now", NONE, False, "default-deny"),
    (SYSTEM, "digest.now", MEMBER, False, "default-deny"),
    # digest.personal: one's own digest into a personal chat, never under no-export
    (OFFICER, "digest.personal", MEMBER, True, "member-digest"),
    (SUPERVISOR, "digest.personal", NONE, True, "member-digest"),
    (GUEST, "digest.personal", VIEWER_UNSHARED, True, "guest-reads-shared"),
    (GUEST, "digest.personal", replace(CONTRIB, no_export=True), False, "no-export-personal"),
    (GUEST, "digest.personal", NONE, False, "default-deny"),
    (OFFICER, "digest.personal", NONE, False, "default-deny"),
    (GUEST, "digest.personal", expired(VIEWER), False, "guest-access-expired"),
    (GUEST, "digest.now", replace(VIEWER, no_export=True), True, "guest-reads-shared"),
    # member.see: officers and supervisors see every name; a guest the lead's and their own agency's
    (OFFICER, "member.see", about(MEMBER, RoomRole.GUEST_VIEWER), True, "officers-see-names"),
    (SUPERVISOR, "member.see", about(NONE, RoomRole.MEMBER), True, "officers-see-names"),
    (GUEST, "member.see", about(VIEWER, RoomRole.LEAD), True, "guest-sees-lead-and-own-agency"),
    (GUEST, "member.see", about(CONTRIB, RoomRole.GUEST_VIEWER, same_agency=True), True,
     "guest-sees-lead-and-own-agency"),
    (GUEST, "member.see", about(VIEWER, RoomRole.MEMBER), False, "default-deny"),
    (GUEST, "member.see", about(VIEWER, RoomRole.GUEST_CONTRIBUTOR), False, "default-deny"),
    (GUEST, "member.see", about(VIEWER, None), False, "default-deny"),
    (GUEST, "member.see", about(NONE, RoomRole.LEAD), False, "default-deny"),
    (GUEST, "member.see", about(revoked(VIEWER), RoomRole.LEAD), False, "guest-access-revoked"),
    (ANONYMOUS, "member.see", about(MEMBER, RoomRole.LEAD), False, "anonymous-nothing"),
    # audit, audit verify: a lead in their room, supervisors
    (OFFICER, "audit.query", LEAD, True, "lead-audits-own-room"),
    (OFFICER, "audit.query", MEMBER, False, "default-deny"),
    (SUPERVISOR, "audit.query", NONE, True, "supervisor-audits"),
    (OFFICER, "audit.verify", LEAD, True, "lead-audits-own-room"),
    (OFFICER, "audit.verify", closed(LEAD), True, "lead-audits-own-room"),
    (GUEST, "audit.verify", VIEWER, False, "default-deny"),
    (SUPERVISOR, "audit.verify", NONE, True, "supervisor-audits"),
    # audit export: supervisors, with a reason, never under no-export
    (SUPERVISOR, "audit.export", JUSTIFIED, True, "supervisor-audits"),
    (SUPERVISOR, "audit.export", Resource(), False, "export-needs-reason"),
    # misuse monitoring: supervisors alone; a mute or an unmute says why
    (SUPERVISOR, "oversight.mute", JUSTIFIED, True, "supervisor-oversight"),
    (SUPERVISOR, "oversight.unmute", Resource(), False, "mute-needs-reason"),
    (OFFICER, "oversight.here", NONE, False, "default-deny"),
    (SUPERVISOR, "audit.export", replace(JUSTIFIED, no_export=True), False, "no-export"),
    (SUPERVISOR, "audit.export", Resource(no_export=True), False, "no-export"),
    (OFFICER, "audit.export", replace(LEAD, has_justification=True), False, "default-deny"),
    # room.see: may the caller learn the room exists
    (SUPERVISOR, "room.see", NONE, True, "supervisor-sees-rooms"),
    (SUPERVISOR, "room.see", MEMBER, True, "supervisor-sees-rooms"),
    (OFFICER, "room.see", NONE, False, "default-deny"),
    (OFFICER, "room.see", IN_TEAM, True, "officer-sees-team-rooms"),
    (OFFICER, "room.see", IN_SPACE, True, "officer-sees-team-rooms"),
    (OFFICER, "room.see", MEMBER, True, "member-sees-room"),
    (OFFICER, "room.see", closed(LEAD), True, "member-sees-room"),
    (GUEST, "room.see", VIEWER_UNSHARED, True, "member-sees-room"),
    (GUEST, "room.see", IN_TEAM, False, "default-deny"),
    (GUEST, "room.see", IN_SPACE, False, "default-deny"),
    (GUEST, "room.see", expired(CONTRIB), False, "guest-access-expired"),
    (SYSTEM, "room.see", IN_TEAM, False, "default-deny"),
    (ANONYMOUS, "room.see", replace(MEMBER, room_in_team=True), False, "anonymous-nothing"),
    # room.join: an officer working in the room's own thread or channel
    (OFFICER, "room.join", IN_SPACE, True, "officer-joins-in-room-space"),
    (OFFICER, "room.join", replace(IN_SPACE, role=RoomRole.MEMBER), False, "default-deny"),
    (OFFICER, "room.join", IN_TEAM, False, "default-deny"),
    (GUEST, "room.join", IN_SPACE, False, "default-deny"),
    (SUPERVISOR, "room.join", IN_SPACE, False, "default-deny"),
    # Teams events: any identified sender
    (SYSTEM, "event.installed", NONE, True, "system-events"),
    (OFFICER, "event.uninstalled", NONE, True, "system-events"),
    (GUEST, "event.members_changed", NONE, True, "system-events"),
    (SUPERVISOR, "event.installation_update", NONE, True, "system-events"),
    (OFFICER, "event.installation_add", NONE, True, "system-events"),
    (SYSTEM, "event.installation_remove", NONE, True, "system-events"),
    (ANONYMOUS, "event.installed", NONE, False, "anonymous-nothing"),
    # what no request may name
    (SUPERVISOR, "no.such.action", NONE, False, "unknown-action"),
    (SYSTEM, "event", NONE, False, "unknown-action"),
]


@pytest.fixture(scope="module")
def policy() -> Policy:
    return Policy.load()


@pytest.mark.parametrize(("who", "action", "facts", "allowed", "rule"), TABLE)
def test_default_policy(policy: Policy, who: Principal, action: str, facts: Resource, allowed: bool,
                        rule: str) -> None:  # fmt: skip
    decision = policy.decide(who, action, facts)
    assert (decision.allowed, decision.rule) == (allowed, rule), decision


def test_every_rule_of_the_file_decides_some_row(policy: Policy) -> None:
    assert {r.id for r in policy.rules} <= {row[4] for row in TABLE}


def test_the_reason_shown_is_the_deciding_rules(policy: Policy) -> None:
    assert policy.decide(OFFICER, "task.add", closed(LEAD)) == Decision(
        False, "closed-room-read-only", "the room is closed: it is read-only"
    )
    assert policy.decide(OFFICER, "room.lead", naming(LEAD, "guest")).reason == (
        "a room's lead must be an officer of this force"
    )
    assert policy.decide(OFFICER, "room.close", MEMBER) == Decision(
        False, "default-deny", "no rule allows this"
    )


def test_the_module_function_uses_the_shipped_policy() -> None:
    assert evaluate(OFFICER, "room.open") == Decision(
        True, "officer-open-list", "officers open and list rooms"
    )
    assert evaluate(GUEST, "task.list", expired(VIEWER)).rule == "guest-access-expired"
    assert evaluate(OFFICER, "room.status").rule == "default-deny"


def test_many_decisions_match_one_at_a_time(policy: Policy) -> None:
    rooms = [("room.see", replace(NONE, room_key=f"OP-{i}", room_in_team=i % 3 == 0, role=RoomRole.MEMBER
                                  if i % 5 == 0 else None)) for i in range(50)]  # fmt: skip
    mixed = [*rooms, ("help", NONE), ("nope", NONE), ("task.add", closed(MEMBER)), ("room.open", NONE)]
    many = policy.decide_many(OFFICER, mixed)
    assert many == [policy.decide(OFFICER, action, facts) for action, facts in mixed]
    assert sum(d.allowed for d in many[:50]) == len([i for i in range(50) if i % 3 == 0 or i % 5 == 0])
    assert policy.decide_many(OFFICER, []) == []
