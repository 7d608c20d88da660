"""The default policy, as data (DESIGN.md, "Roles and what they may do")."""

from __future__ import annotations

from policies.model import Condition, Principal, PrincipalKind, Resource, RoomRole, Rule

OFFICER, GUEST, SUPERVISOR = PrincipalKind.OFFICER, PrincipalKind.GUEST, PrincipalKind.SUPERVISOR
SYSTEM = PrincipalKind.SYSTEM

# Actions that change a room; a closed room refuses them all.
MUTATIONS = frozenset({
    "room.close", "room.lead", "digest.at", "digest.off", "invite", "revoke",
    "task.add", "task.assign", "task.done", "task.note", "task.reopen",
})  # fmt: skip
# Actions that hand data out of Teams.
EXPORTS = frozenset({"audit.export"})


def is_kind(*kinds: PrincipalKind) -> Condition:
    """Condition: the principal is one of these kinds."""
    allowed = frozenset(kinds)
    return lambda p, r: p.kind in allowed


def _officer_member(p: Principal, r: Resource) -> bool:
    return p.kind is OFFICER and r.role in (RoomRole.MEMBER, RoomRole.LEAD)


def _guest_shared(p: Principal, r: Resource) -> bool:
    return p.kind is GUEST and r.role is not None and r.shared_with_caller


def _guest_contributor_shared(p: Principal, r: Resource) -> bool:
    return _guest_shared(p, r) and r.role is RoomRole.GUEST_CONTRIBUTOR


LEAD = RoomRole.LEAD
ANY_GUEST_ROLE = (RoomRole.GUEST_VIEWER, RoomRole.GUEST_CONTRIBUTOR)

DEFAULT_RULES: tuple[Rule, ...] = (
    # Forbids first for readability; the evaluator lets any forbid win regardless of order.
    Rule("closed-room-read-only", "forbid", MUTATIONS, lambda p, r: r.room_closed,
         "the room is closed: it is read-only"),
    Rule("guest-access-expired", "forbid", frozenset({"*"}),
         lambda p, r: p.kind is GUEST and r.access_expired, "your access to this room has ended"),
    Rule("no-export", "forbid", EXPORTS, lambda p, r: r.no_export,
         "exports are not allowed under this sharing agreement"),
    Rule("export-needs-reason", "forbid", EXPORTS, lambda p, r: not r.has_justification,
         "an export needs a reason (--reason)"),
    Rule("anonymous-nothing", "forbid", frozenset({"*"}),
         lambda p, r: p.kind is PrincipalKind.ANONYMOUS, "the sender could not be identified"),
    # Permits.
    Rule("help-anyone", "permit", frozenset({"help"}), lambda p, r: True),
    Rule("system-events", "permit", frozenset({"event.*"}),
         is_kind(SYSTEM, OFFICER, GUEST, SUPERVISOR)),
    Rule("officer-open-list", "permit", frozenset({"room.open", "room.list", "agency.list"}),
         is_kind(OFFICER, SUPERVISOR)),
    Rule("room-status-member", "permit", frozenset({"room.status"}),
         lambda p, r: r.role is not None or p.kind is SUPERVISOR),
    Rule("lead-manages-room", "permit",
         frozenset({"room.close", "room.lead", "room.reopen", "digest.at", "digest.off",
                    "invite", "revoke", "access"}),
         lambda p, r: (p.kind is OFFICER and r.role is LEAD) or p.kind is SUPERVISOR),
    Rule("supervisor-agencies", "permit", frozenset({"agency.add"}), is_kind(SUPERVISOR)),
    Rule("supervisor-lists-all-rooms", "permit", frozenset({"room.list_all"}), is_kind(SUPERVISOR)),
    Rule("member-tasking", "permit", frozenset({"task.add", "task.assign", "task.reopen"}),
         _officer_member),
    Rule("member-reads-tasks", "permit", frozenset({"task.list", "task.show"}),
         lambda p, r: _officer_member(p, r) or p.kind is SUPERVISOR),
    Rule("guest-reads-shared", "permit", frozenset({"task.list", "task.show", "digest.now"}),
         lambda p, r: p.kind is GUEST and r.role in ANY_GUEST_ROLE),
    Rule("member-updates-tasks", "permit", frozenset({"task.done", "task.note"}), _officer_member),
    Rule("guest-contributor-updates-shared", "permit", frozenset({"task.done", "task.note"}),
         _guest_contributor_shared),
    Rule("member-digest", "permit", frozenset({"digest.now"}),
         lambda p, r: _officer_member(p, r) or p.kind is SUPERVISOR),
    Rule("lead-audits-own-room", "permit", frozenset({"audit.query", "audit.verify"}),
         lambda p, r: p.kind is OFFICER and r.role is LEAD),
    Rule("supervisor-audits", "permit", frozenset({"audit.query", "audit.verify", "audit.export"}),
         is_kind(SUPERVISOR)),
)  # fmt: skip
