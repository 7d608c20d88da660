"""The values policy decisions are made about."""

from __future__ import annotations

from dataclasses import dataclass
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

    @classmethod
    def of_member(cls, aad_id: str, tenant_id: str | None, role: str, *, name: str | None = None,
                  agency: str | None = None) -> Principal:  # fmt: skip
        """A room member as the policy knows them when they are not the one asking (a digest's or a
        reply's other readers): an officer for the lead and members, a guest (of their agency) for
        every other role. Fails closed: an unknown role is a guest."""
        officer = role in (RoomRole.LEAD.value, RoomRole.MEMBER.value)
        return cls(aad_id, tenant_id, PrincipalKind.OFFICER if officer else PrincipalKind.GUEST, name=name,
                   agency=agency)  # fmt: skip


@dataclass(frozen=True)
class Resource:
    """The facts a decision is about, loaded before the policy step; every field optional.

    room_*: the room the request is about (None/False when there is none).
    role: the caller's standing in that room (None: no standing).
    in_room_space: the request was typed in the room's own thread or channel.
    room_in_team: the room is open and lives in the team the request came from.
    target_kind: the kind ("officer", "guest", "supervisor") of a person the command names
        (the new lead of `/room lead`), None when it names nobody.
    no_export / access_expired / access_revoked: the caller's membership of the room (invitation flags;
        expired: its expiry has passed, by the clock, before any clean-up; revoked: `/revoke`).
    shared_with_caller: the task is shared with the caller's agency or assigned to them.
    has_justification: the request carries a justification (--reason).
    target_role / same_agency (`member.see`): the room standing of the person a reply would name (None:
        not in the room), and whether they are the caller or of the caller's own agency.
    """

    room_key: str | None = None
    room_closed: bool = False
    role: RoomRole | None = None
    in_room_space: bool = False
    room_in_team: bool = False
    target_kind: str | None = None
    no_export: bool = False
    access_expired: bool = False
    access_revoked: bool = False
    shared_with_caller: bool = False
    has_justification: bool = False
    target_role: RoomRole | None = None
    same_agency: bool = False

    def facts(self) -> dict[str, str | bool]:
        """The Cedar context of a decision: every field, "" for none."""
        return {
            "room_key": self.room_key or "", "room_closed": self.room_closed, "role": str(self.role or ""),
            "in_room_space": self.in_room_space, "room_in_team": self.room_in_team,
            "target_kind": str(self.target_kind or ""), "no_export": self.no_export,
            "access_expired": self.access_expired, "access_revoked": self.access_revoked,
            "shared_with_caller": self.shared_with_caller,
            "has_justification": self.has_justification, "target_role": str(self.target_role or ""),
            "same_agency": self.same_agency,
        }  # fmt: skip


@dataclass(frozen=True)
class Decision:
    """Allowed or not, with the rule that decided and a reason safe to show."""

    allowed: bool
    rule: str
    reason: str
