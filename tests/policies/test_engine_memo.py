"""Decisions are remembered by the facts the policy reads, and only those."""

from __future__ import annotations

from policies import Policy, Principal, PrincipalKind, Resource
from policies.engine import DEFAULT_PATH
from policies.model import RoomRole

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
