"""What a command handler gets, and what it gives back."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from sqlmodel import Session

from core.db import Database
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


@dataclass
class CommandContext:
    """Everything a handler may use; it never sees the Bot Framework."""

    principal: Principal
    conversation: Conversation
    resource: Resource
    db: Database
    transact: Transactor
    may: Callable[[str], Decision]
    note: AuditNote = field(default_factory=AuditNote)
