"""The values policy decisions are made about."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum


class PrincipalKind(StrEnum):
    """What identity made of the sender."""

    OFFICER = "officer"
    GUEST = "guest"
    SUPERVISOR = "supervisor"
    SYSTEM = "system"
    ANONYMOUS = "anonymous"


class RoomRole(StrEnum):
    """The caller's standing in the room a request is about."""

    LEAD = "lead"
    MEMBER = "member"
    GUEST_CONTRIBUTOR = "guest_contributor"
    GUEST_VIEWER = "guest_viewer"


@dataclass(frozen=True)
class Principal:
    """The sender: AAD object id + tenant, never the display name."""

    aad_id: str | None
    tenant_id: str | None
    kind: PrincipalKind
    name: str | None = None
    agency: str | None = None
    why: str = ""


@dataclass(frozen=True)
class Resource:
    """What the action is about; every field optional (no room, no task...)."""

    room_key: str | None = None
    room_closed: bool = False
    role: RoomRole | None = None
    no_export: bool = False
    access_expired: bool = False
    shared_with_caller: bool = False
    has_justification: bool = False


@dataclass(frozen=True)
class Decision:
    """Allowed or not, with the rule that decided and a reason safe to show."""

    allowed: bool
    rule: str
    reason: str


Condition = Callable[[Principal, Resource], bool]


@dataclass(frozen=True)
class Rule:
    """A permit or a forbid for some actions, under a condition."""

    id: str
    effect: str  # "permit" | "forbid"
    actions: frozenset[str]
    when: Condition
    reason: str = ""
    tags: tuple[str, ...] = field(default=())

    def covers(self, action: str) -> bool:
        """True when the rule speaks about this action (exact, `group.*` or `*`)."""
        if "*" in self.actions or action in self.actions:
            return True
        group = action.split(".", 1)[0]
        return f"{group}.*" in self.actions
