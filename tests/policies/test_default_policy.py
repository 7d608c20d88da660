"""The default policy as a decision table (DESIGN.md, "Roles and what they may do")."""

from __future__ import annotations

import pytest

from policies import Decision, Principal, PrincipalKind, Resource, evaluate
from policies.model import RoomRole, Rule

OFFICER = Principal("o1", "home", PrincipalKind.OFFICER)
GUEST = Principal("g1", "other", PrincipalKind.GUEST)
SUPERVISOR = Principal("s1", "home", PrincipalKind.SUPERVISOR)
ANONYMOUS = Principal(None, None, PrincipalKind.ANONYMOUS)

NONE = Resource(room_key="OP-X")
MEMBER = Resource(room_key="OP-X", role=RoomRole.MEMBER)
LEAD = Resource(room_key="OP-X", role=RoomRole.LEAD)
VIEWER = Resource(room_key="OP-X", role=RoomRole.GUEST_VIEWER, shared_with_caller=True)
CONTRIB = Resource(room_key="OP-X", role=RoomRole.GUEST_CONTRIBUTOR, shared_with_caller=True)
CONTRIB_UNSHARED = Resource(room_key="OP-X", role=RoomRole.GUEST_CONTRIBUTOR)

TABLE = [
    # action, principal, resource, allowed
    ("help", OFFICER, NONE, True),
    ("help", GUEST, NONE, True),
    ("help", ANONYMOUS, NONE, False),
    ("room.open", OFFICER, NONE, True),
    ("room.open", SUPERVISOR, NONE, True),
    ("room.open", GUEST, NONE, False),
    ("room.status", OFFICER, NONE, False),
    ("room.status", OFFICER, MEMBER, True),
    ("room.status", GUEST, VIEWER, True),
    ("room.status", SUPERVISOR, NONE, True),
    ("room.close", OFFICER, MEMBER, False),
    ("room.close", OFFICER, LEAD, True),
    ("room.close", SUPERVISOR, NONE, True),
    ("room.close", GUEST, CONTRIB, False),
    ("agency.add", OFFICER, LEAD, False),
    ("agency.add", SUPERVISOR, NONE, True),
    ("invite", OFFICER, MEMBER, False),
    ("invite", OFFICER, LEAD, True),
    ("task.add", OFFICER, MEMBER, True),
    ("task.add", SUPERVISOR, NONE, False),
    ("task.add", GUEST, CONTRIB, False),
    ("task.list", GUEST, VIEWER, True),
    ("task.done", GUEST, VIEWER, False),
    ("task.done", GUEST, CONTRIB, True),
    ("task.done", GUEST, CONTRIB_UNSHARED, False),
    ("task.done", OFFICER, MEMBER, True),
    ("digest.now", GUEST, VIEWER, True),
    ("audit.verify", OFFICER, MEMBER, False),
    ("audit.verify", OFFICER, LEAD, True),
    ("audit.verify", GUEST, VIEWER, False),
    ("audit.verify", SUPERVISOR, NONE, True),
    ("audit.export", SUPERVISOR, Resource(has_justification=True), True),
    ("audit.export", SUPERVISOR, Resource(has_justification=False), False),
    ("audit.export", SUPERVISOR, Resource(has_justification=True, no_export=True), False),
    ("no.such.action", SUPERVISOR, NONE, False),
]


@pytest.mark.parametrize(("action", "principal", "resource", "allowed"), TABLE)
def test_default_policy(action: str, principal: Principal, resource: Resource, allowed: bool) -> None:
    decision = evaluate(principal, action, resource)
    assert decision.allowed is allowed, decision
    assert decision.rule


def test_closed_room_refuses_mutations_even_for_the_lead() -> None:
    closed = Resource(room_key="OP-X", role=RoomRole.LEAD, room_closed=True)
    decision = evaluate(OFFICER, "task.add", closed)
    assert decision == Decision(False, "closed-room-read-only", "the room is closed: it is read-only")
    assert evaluate(OFFICER, "room.status", closed).allowed
    assert evaluate(OFFICER, "room.reopen", closed).allowed


def test_expired_guest_access_denies_everything() -> None:
    expired = Resource(room_key="OP-X", role=RoomRole.GUEST_VIEWER, access_expired=True)
    decision = evaluate(GUEST, "task.list", expired)
    assert not decision.allowed and decision.rule == "guest-access-expired"


def test_default_deny_names_its_rule() -> None:
    assert evaluate(OFFICER, "room.close", MEMBER).rule == "default-deny"


def test_forbid_beats_permit_whatever_the_order() -> None:
    permit = Rule("p", "permit", frozenset({"x"}), lambda p, r: True)
    forbid = Rule("f", "forbid", frozenset({"x"}), lambda p, r: True, "no")
    assert evaluate(OFFICER, "x", NONE, rules=(permit, forbid)) == Decision(False, "f", "no")


def test_an_error_while_evaluating_denies() -> None:
    def broken(p: Principal, r: Resource) -> bool:
        raise RuntimeError("bad rule")

    rules = (Rule("p", "permit", frozenset({"x"}), lambda p, r: True), Rule("b", "forbid", frozenset({"x"}), broken))
    decision = evaluate(OFFICER, "x", NONE, rules=rules)
    assert not decision.allowed and decision.rule == "evaluation-error"


def test_group_wildcards_cover_their_actions() -> None:
    rule = Rule("p", "permit", frozenset({"event.*"}), lambda p, r: True)
    assert rule.covers("event.installed") and not rule.covers("events.x")
