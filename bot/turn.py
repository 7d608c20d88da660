"""The state of one inbound activity as it passes through the middleware."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botbuilder.core import TurnContext
from botbuilder.schema import Activity
from sqlmodel import Session

from bot import logs
from core.audit.flows import Claim
from core.audit.models import Actor, EventDraft, Where
from core.rooms.flows import Found
from core.rooms.models import Room, RoomMember
from dialogs.context import AuditNote, Conversation, Later, Loaded, Reply, Teams, Work
from dialogs.registry import Command
from policies import Decision, Principal, Resource

TURN_KEY = "opsroom.turn"


@dataclass
class Route:
    """What the activity asks for, once parsed."""

    kind: str  # command | event | ignored | parse_error | unknown
    action: str
    command: Command | None = None
    args: Any = None
    arguments: dict[str, Any] = field(default_factory=dict)
    message: str | None = None


@dataclass
class Turn:
    """One activity's journey: who, what, the decision, the outcome, the reply."""

    context: TurnContext
    conversation: Conversation
    claim: Claim | None
    started: float = field(default_factory=time.perf_counter)
    principal: Principal | None = None
    resource: Resource = field(default_factory=Resource)
    route: Route | None = None
    decision: Decision | None = None
    outcome: str = "ok"
    detail: str | None = None
    note: AuditNote = field(default_factory=AuditNote)
    reply: Reply | Later | None = None
    recorded: bool = False
    room: Room | None = None
    member: RoomMember | None = None  # the caller's membership of the room, as the decision saw it
    here: Found | None = None  # the room of this conversation, as the dedupe read found it
    work: Work = field(default_factory=Work)
    """The handler's unit of work: committed once, with the audit event, unless the request failed."""
    on_commit: list[Callable[[Session], object]] = field(default_factory=list)
    """Writes of the pipeline's own that belong with the audit event whatever the decision (a join)."""
    facts: Loaded = field(default_factory=Loaded)
    teams: Teams | None = None
    stored_reply: str | None = None  # a re-sent activity's kept reply, when it was never delivered
    reply_json: dict[str, Any] | None = None
    """The reply's activity JSON, made once in the commit: kept with the claim and posted."""
    request_id: str | None = field(default_factory=logs.request_id.get)
    """The HTTP request this turn arrived in (taken here: the audit event is drafted in the group writer)."""

    @property
    def activity(self) -> Activity:
        """The inbound activity."""
        return self.context.activity

    def _purpose(self) -> str | None:
        """Why a request about a room may see its data: the room's recorded purpose (DPA 2018 s62)."""
        room = self.room
        if room is None:
            return None
        purpose = f"{room.key}: {room.purpose}" if room.purpose else f"{room.key}: operation room"
        isa = self.member.isa_ref if self.member is not None else None
        return f"{purpose}; ISA {isa}" if isa else purpose  # a guest's sharing agreement

    def _recipients(self) -> list[str] | None:
        """Where what the request disclosed went: the conversation its reply went to, and any it posted to."""
        told = list(self.note.recipients or [])
        if self.room is not None and self.reply is not None and self.conversation.conversation_id:
            told.insert(0, self.conversation.conversation_id)
        return told or None

    def draft(self) -> EventDraft:
        """The audit event for this turn as it stands."""
        principal = self.principal
        actor = Actor()
        if principal is not None:
            actor = Actor(principal.aad_id, principal.tenant_id, principal.name,
                          principal.kind.value, principal.agency)  # fmt: skip
        else:
            sender = self.activity.from_property
            actor = Actor(getattr(sender, "aad_object_id", None), self.conversation.tenant_id,
                          getattr(sender, "name", None), None, None)  # fmt: skip
        route = self.route
        return EventDraft(
            action=route.action if route else f"activity.{self.activity.type or 'unknown'}",
            outcome=self.note.outcome if self.outcome == "ok" and self.note.outcome else self.outcome,
            actor=actor,
            where=Where(self.conversation.team_id, self.conversation.channel_id,
                        self.conversation.conversation_id, self.note.room_key or self.resource.room_key),
            activity_id=self.activity.id,
            activity_type=_activity_type(self.activity),
            arguments={**(route.arguments if route else {}), **self.note.arguments},
            decision=None if self.decision is None else ("allow" if self.decision.allowed else "deny"),
            rule=self.decision.rule if self.decision else None,
            justification=self.note.justification or self._purpose(),
            recipients=self._recipients(),
            detail=_detail(self),
            duration_us=int((time.perf_counter() - self.started) * 1_000_000),
            request_id=self.request_id,
        )  # fmt: skip


def _detail(turn: Turn) -> str | None:
    """The handler's note or the pipeline's detail, and why identity classed the sender as it did."""
    parts = [part for part in (turn.note.detail or turn.detail,) if part]
    if turn.principal is not None and turn.principal.why:
        parts.append(f"identity: {turn.principal.why}")
    return "; ".join(parts) or None


def _activity_type(activity: Activity) -> str | None:
    if activity.type == "invoke" and activity.name:
        return f"invoke/{activity.name}"
    return str(activity.type) if activity.type else None
