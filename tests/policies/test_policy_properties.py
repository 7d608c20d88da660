"""The shipped Cedar policy against an independent reading of DESIGN.md's role table, on random requests."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policies import Policy, Principal, PrincipalKind, Resource, RoomRole

POLICY = Policy.load()

# Actions that change a room: a closed room is read-only for everyone.
CHANGES_ROOM = {"room.close", "room.lead", "digest.at", "digest.off", "invite", "revoke",
                "task.add", "task.assign", "task.done", "task.note", "task.reopen"}  # fmt: skip
EVENTS = {"event.installed", "event.uninstalled", "event.members_changed",
          "event.installation_add", "event.installation_remove", "event.installation_update"}  # fmt: skip
ACTIONS = sorted(CHANGES_ROOM | EVENTS | {
    "help", "room.open", "room.list", "room.list_all", "room.status", "room.reopen", "room.see",
    "room.join", "agency.add", "agency.list", "access", "task.list", "task.show", "digest.now",
    "audit.query", "audit.verify", "audit.export", "no.such.action", "event", "member.see", "digest.personal",
})  # fmt: skip


def oracle(kind: PrincipalKind, action: str, r: Resource) -> bool:
    """DESIGN.md, "Roles and what they may do", written out by hand."""
    if kind is PrincipalKind.ANONYMOUS:
        return False
    if kind is PrincipalKind.GUEST and r.access_expired:
        return False  # access ends at its expiry without anyone acting
    if r.access_revoked:
        return False  # and at once when revoked
    if r.room_closed and action in CHANGES_ROOM:
        return False
    if action == "audit.export" and (r.no_export or not r.has_justification):
        return False
    if action == "digest.personal" and r.no_export:
        return False  # a full-detail card into a personal chat is an export
    if action == "room.lead" and r.target_kind not in ("officer", "supervisor"):
        return False
    officer, guest = kind is PrincipalKind.OFFICER, kind is PrincipalKind.GUEST
    supervisor = kind is PrincipalKind.SUPERVISOR
    in_room = r.role is not None
    member = officer and r.role in (RoomRole.MEMBER, RoomRole.LEAD)
    lead = officer and r.role is RoomRole.LEAD
    invited = guest and r.role in (RoomRole.GUEST_VIEWER, RoomRole.GUEST_CONTRIBUTOR)
    contributor = guest and r.role is RoomRole.GUEST_CONTRIBUTOR
    if action == "help" or action in EVENTS:
        return True
    allowed = {
        "room.see": supervisor or in_room or (officer and (r.room_in_team or r.in_room_space)),
        "room.join": officer and r.in_room_space and not in_room,
        "room.open": officer or supervisor,
        "room.list": officer or supervisor,
        "agency.list": officer or supervisor,
        "room.list_all": supervisor,
        "room.status": in_room or supervisor,
        "agency.add": supervisor,
        "task.add": member, "task.assign": member, "task.reopen": member,
        "task.list": member or supervisor or invited,
        "task.show": member or supervisor or (invited and r.shared_with_caller),
        "task.done": member or (contributor and r.shared_with_caller),
        "task.note": member or (contributor and r.shared_with_caller),
        "digest.now": member or supervisor or invited,
        "digest.personal": member or supervisor or invited,
        "member.see": officer or supervisor or (invited and (r.target_role is RoomRole.LEAD or r.same_agency)),
        "audit.query": lead or supervisor, "audit.verify": lead or supervisor,
        "audit.export": supervisor,
    }  # fmt: skip
    for managed in ("room.close", "room.lead", "room.reopen", "digest.at", "digest.off", "invite", "revoke",
                    "access"):  # fmt: skip
        allowed[managed] = lead or supervisor
    return allowed.get(action, False)


AGENCIES = [None, "", "social-care", "health", 'odd "agency" \\ name']
TARGETS = [None, "officer", "guest", "supervisor", "system"]
principals = st.builds(lambda kind, agency: Principal("aad", "tenant", kind, agency=agency),
                       st.sampled_from(list(PrincipalKind)), st.sampled_from(AGENCIES))  # fmt: skip


@st.composite
def facts(draw: st.DrawFn) -> Resource:
    """Every fact at random; the nine flags come from one number, which keeps examples cheap to make."""
    bits = draw(st.integers(0, 511))
    on = [bool(bits >> i & 1) for i in range(9)]
    return Resource(room_key=draw(st.sampled_from([None, "OP-X"])), role=draw(st.sampled_from([None, *RoomRole])),
                    target_kind=draw(st.sampled_from(TARGETS)), room_closed=on[0], in_room_space=on[1],
                    room_in_team=on[2], no_export=on[3], access_expired=on[4], shared_with_caller=on[5],
                    has_justification=on[6], access_revoked=on[7], same_agency=on[8],
                    target_role=draw(st.sampled_from([None, *RoomRole])))  # fmt: skip


@pytest.mark.parametrize("action", ACTIONS)
@settings(max_examples=100, deadline=None)
@given(principal=principals, resource=facts())
def test_the_policy_agrees_with_the_role_table(action: str, principal: Principal, resource: Resource) -> None:
    decision = POLICY.decide(principal, action, resource)
    assert decision.allowed is oracle(principal.kind, action, resource), decision
    assert decision.rule and decision.reason


@settings(max_examples=100, deadline=None)
@given(principal=principals, requests=st.lists(st.tuples(st.sampled_from(ACTIONS), facts()), max_size=12))
def test_a_batch_decides_as_one_at_a_time(principal: Principal, requests: list[tuple[str, Resource]]) -> None:
    assert POLICY.decide_many(principal, requests) == [POLICY.decide(principal, a, r) for a, r in requests]
