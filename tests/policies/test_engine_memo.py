"""Decisions are remembered by the facts the policy reads, and only those."""

from __future__ import annotations

from policies import Policy, Principal, PrincipalKind, Resource
from policies.engine import DEFAULT_PATH
from policies.model import RoomRole
from tests.policies.test_policy_files import HELP, OVERFLOW

OFFICER = Principal("aad", "tenant", PrincipalKind.OFFICER)
READS_THE_KEY = """
@id("not-op-b")
@reason("not that room")
forbid (principal, action == Opsroom::Action::"task.show", resource) when { context.room_key == "OP-B" };
"""


def test_a_decision_about_one_room_serves_every_room_when_no_policy_reads_the_key() -> None:
    policy = Policy.load()
    first = policy.decide(OFFICER, "task.show", Resource(room_key="OP-A", role=RoomRole.MEMBER))
    remembered = len(policy._decided)

    again = policy.decide(OFFICER, "task.show", Resource(room_key="OP-B", role=RoomRole.MEMBER))

    assert again == first and first.allowed
    assert len(policy._decided) == remembered  # the same key: nothing new to remember


def test_a_policy_that_reads_the_room_key_is_asked_per_room() -> None:
    policy = Policy(DEFAULT_PATH.read_text(encoding="utf-8") + READS_THE_KEY, source_name="custom.cedar")

    allowed = policy.decide(OFFICER, "task.show", Resource(room_key="OP-A", role=RoomRole.MEMBER))
    denied = policy.decide(OFFICER, "task.show", Resource(room_key="OP-B", role=RoomRole.MEMBER))
    batch = policy.decide_many(OFFICER, [("task.show", Resource(room_key=k, role=RoomRole.MEMBER))
                                         for k in ("OP-A", "OP-B")])  # fmt: skip

    assert allowed.allowed and not denied.allowed and denied.rule == "not-op-b"
    assert [d.allowed for d in batch] == [True, False]


GUEST = Principal("aad-g", "other-tenant", PrincipalKind.GUEST, agency="socialcare")
MEMBER_FACTS = Resource(room_key="OP-A", role=RoomRole.MEMBER, in_room_space=True)
ASKED = [("task.show", MEMBER_FACTS), ("room.close", MEMBER_FACTS), ("task.add", MEMBER_FACTS)]


def test_a_named_list_is_decided_once_per_kind_of_caller() -> None:
    policy = Policy.load()
    built: list[int] = []

    def requests() -> list[tuple[str, Resource]]:
        built.append(1)
        return ASKED

    first = policy.decide_list(OFFICER, ("asked", MEMBER_FACTS), requests)
    again = policy.decide_list(Principal("aad-2", "tenant", PrincipalKind.OFFICER), ("asked", MEMBER_FACTS),
                               requests)  # fmt: skip
    assert first == again == policy.decide_many(OFFICER, ASKED)
    assert len(built) == 1  # another officer: the same answers, the list not even built again
    guest = policy.decide_list(GUEST, ("asked", MEMBER_FACTS), requests)
    assert guest == policy.decide_many(GUEST, ASKED) and len(built) == 2  # another kind: asked anew
    assert first is not again  # each caller gets a list of its own to keep


def test_a_named_list_is_not_remembered_with_an_error_or_when_decisions_are_not_kept() -> None:
    policy = Policy(HELP + OVERFLOW)  # a forbid that overflows when evaluated
    built: list[int] = []

    def requests() -> list[tuple[str, Resource]]:
        built.append(1)
        return [("help", Resource()), ("help", Resource(room_closed=True))]

    for _ in range(2):
        decisions = policy.decide_list(OFFICER, "erroring", requests)
        assert [d.rule for d in decisions] == ["help-anyone", "evaluation-error"]
    assert len(built) == 2  # an error is asked again
    policy = Policy.load()
    policy.remember = False
    for _ in range(2):
        assert policy.decide_list(OFFICER, ("asked", MEMBER_FACTS), lambda: (built.append(1), ASKED)[1])
    assert len(built) == 4
