"""What a command handler gets, and what it gives back."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from sqlmodel import Session

from core.db import Database
from core.rooms.models import Room
from core.rooms.templates import Template
from policies import Decision, Principal, Resource

T = TypeVar("T")


@dataclass
class Reply:
    """Text (Markdown) and/or an Adaptive Card to send back."""

    text: str | None = None
    card: dict[str, Any] | None = None


@dataclass
class AuditNote:
    """What a handler adds to the request's audit event."""

    justification: str | None = None
    recipients: list[str] | None = None
    detail: str | None = None
    room_key: str | None = None
    outcome: str | None = None  # e.g. "refused" when the handler declined; default "ok"


class Transactor(Protocol):
    """Runs fn together with the request's audit event in one transaction."""

    def __call__(self, fn: Callable[[Session], T]) -> Awaitable[T]: ...


@dataclass
class Conversation:
    """Where the request came from (ids as Teams gives them)."""

    tenant_id: str | None = None
    team_id: str | None = None
    channel_id: str | None = None
    conversation_id: str | None = None
    conversation_type: str | None = None


@dataclass(frozen=True)
class Space:
    """A Teams place a room lives in: its conversation id and a stored reference to post to."""

    conversation_id: str
    reference: str
    kind: str  # thread | private | shared
    activity_id: str | None = None  # the card that started it


@dataclass(frozen=True)
class Person:
    """Someone named in a command (an @mention, an email or UPN), resolved to their AAD id."""

    aad_id: str
    name: str | None
    tenant_id: str | None = None
    guest: bool = False  # Teams reports them as a guest (B2B), or they are from another tenant


class Teams(Protocol):
    """What handlers may ask of Teams; bot/ implements it for the current turn."""

    graph_configured: bool

    async def create_thread(self, card: dict[str, Any]) -> Space:
        """Start a new thread in the current channel with this card."""
        ...

    async def create_channel(self, *, name: str, description: str, kind: str, owner_aad_id: str,
                             card: dict[str, Any]) -> Space:  # fmt: skip
        """Create a private or shared channel in the current team (Graph) and post the card there."""
        ...

    async def make_channel_owner(self, *, team_id: str, channel_id: str, aad_id: str) -> str:
        """Make someone an owner of a room's private or shared channel (Graph): added, promoted or
        already; RoomError with the reason when Teams will not."""
        ...

    async def post(self, reference: str, reply: Reply) -> bool:
        """Post into a stored conversation; False when Teams says it no longer exists."""
        ...

    async def update(self, space: Space, activity_id: str, card: dict[str, Any]) -> None:
        """Replace a card the bot posted."""
        ...

    async def resolve(self, who: str) -> Person | None:
        """An @mention, email or UPN -> a person in this team or chat, or None."""
        ...


@dataclass
class CommandContext:
    """Everything a handler may use; it never sees the Bot Framework."""

    principal: Principal
    conversation: Conversation
    resource: Resource
    db: Database
    transact: Transactor
    may: Callable[[str], Decision]
    teams: Teams
    room: Room | None = None
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    templates: Mapping[str, Template] = field(default_factory=dict)
    timezone: str = "Europe/London"
    note: AuditNote = field(default_factory=AuditNote)
