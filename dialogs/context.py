"""What a command handler gets, and what it gives back."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

from sqlmodel import Session

from core.audit.models import AuditExport
from core.db import Database
from core.rooms.models import Room
from core.rooms.states import RoomStates
from core.rooms.templates import Template
from core.tasks.models import Task
from core.tasks.service import Assignee
from policies import Decision, Principal, Resource

T = TypeVar("T")


@dataclass
class Reply:
    """Text (Markdown) and/or an Adaptive Card to send back, or another attachment (a Teams file card:
    {"contentType", "name", "content", "contentUrl"}) in the card's place."""

    text: str | None = None
    card: dict[str, Any] | None = None
    attachment: dict[str, Any] | None = None
    card_json: str | None = None
    """`json.dumps(card)`, when the card's builder encoded it already (a list card measures its size so):
    `activity_json` writes it in as it is instead of encoding the card again."""

    def activity(self) -> dict[str, Any]:
        """The message activity (Bot Framework JSON) carrying this reply, e.g. for the outbox."""
        out: dict[str, Any] = {"type": "message"}
        if self.card is not None:
            out["attachments"] = [{"contentType": ADAPTIVE_CARD, "content": self.card}]
        elif self.attachment is not None:
            out["attachments"] = [dict(self.attachment)]
        if self.text or (self.card is None and self.attachment is None):
            out["text"], out["textFormat"] = self.text or "", "markdown"
        return out

    def activity_json(self) -> str:
        """`json.dumps(self.activity())`, with the card's JSON written in when it has it (the keys then in
        another order: the attachments last)."""
        out = self.activity()
        if self.card is None or self.card_json is None:
            return json.dumps(out)
        del out["attachments"]
        head, attachment = json.dumps(out)[:-1], json.dumps({"contentType": ADAPTIVE_CARD})[:-1]
        return f'{head}, "attachments": [{attachment}, "content": {self.card_json}}}]}}'


ADAPTIVE_CARD = "application/vnd.microsoft.card.adaptive"

Later = Callable[[], Reply]
"""A reply built once the request's staged writes have run (inside its transaction)."""


@dataclass
class Staged(Generic[T]):
    """A write staged in the request's unit of work; `value` is its result once it has run."""

    fn: Callable[[Session], T]
    done: bool = False
    result: T | None = None

    @property
    def value(self) -> T:
        """The result (only once the unit of work has run it)."""
        if not self.done:
            raise RuntimeError("a staged write has no result before the unit of work runs it")
        return self.result  # type: ignore[return-value]


class Work:
    """One request's unit of work: staged writes (outbox rows included), run in order in one
    transaction with the request's audit event, committed once by the pipeline after the handler
    returns. A later write reads the earlier ones'. A `Refused` raised by one undoes them all,
    and the audit event records the refusal."""

    def __init__(self) -> None:
        self.staged: list[Staged[Any]] = []
        self.committed = False

    def stage(self, fn: Callable[[Session], T]) -> Staged[T]:
        """Add a write; it runs when the request commits."""
        if self.committed:
            raise RuntimeError("this request's unit of work has already committed")
        staged: Staged[T] = Staged(fn)
        self.staged.append(staged)
        return staged

    def reply_from(self, fn: Callable[[Session], Reply]) -> Later:
        """Stage fn and answer with the Reply it returns."""
        staged = self.stage(fn)
        return lambda: staged.value

    def run(self, session: Session) -> None:
        """Run every staged write, in order (the pipeline calls this inside the transaction)."""
        for staged in self.staged:
            staged.result, staged.done = staged.fn(session), True


@dataclass
class AuditNote:
    """What a handler adds to the request's audit event."""

    justification: str | None = None
    recipients: list[str] | None = None
    detail: str | None = None
    room_key: str | None = None
    outcome: str | None = None  # e.g. "refused" when the handler declined; default "ok"
    arguments: dict[str, Any] = field(default_factory=dict)
    """Added to the event's arguments (facts the handler found, e.g. `own` on /audit)."""


class May(Protocol):
    """Asks the policy, for the caller: this action on these facts (default: the request's own)."""

    def __call__(self, action: str, resource: Resource | None = None) -> Decision: ...


def _deny_all(principal: Principal, requests: Sequence[tuple[str, Resource]]) -> list[Decision]:
    return [Decision(False, "default-deny", "no rule allows this") for _ in requests]


class Step(Protocol):
    """Commits fn now with an audit event of its own (outcome as given): a step of a request that
    must wait for Teams in the middle. The request's own event still commits at its end."""

    def __call__(self, fn: Callable[[Session], T], *, outcome: str) -> Awaitable[T]: ...


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
    kind: str = "guest"  # what identity makes of them: officer, supervisor or guest (fails closed)


@dataclass(frozen=True)
class Named:
    """A thing a command names (a task by its number) that the caller must be allowed to see (`see`, a
    policy action) to act on. If it is not there, or they may not see it, the answer is `absent` either
    way, so that it never tells them what exists beyond what they may see."""

    absent: str  # Markdown: "There is no task #4 in OP-LANTERN."
    see: str
    exists: bool
    usage: bool = True  # follow the answer with the command's usage (not for what no one types)


@dataclass
class Loaded:
    """Facts a command declared and the pipeline loaded before its policy decision."""

    person: Person | None = None
    task: Task | None = None
    shares: frozenset[str] = frozenset()
    """The agencies `task` is shared with (`*`: every agency)."""
    named: Named | None = None
    assignee: Assignee | None = None
    unresolved: str | None = None
    """Whom an argument names that could not be found (Markdown), for the handler to answer with."""
    notes: list[str] = field(default_factory=list)
    """What a loader could not find, told to the caller if the policy refuses."""
    export: AuditExport | None = None
    """An audit export on offer to the caller (a file consent answer's)."""


@dataclass(frozen=True)
class GuestAccess:
    """What Teams (Graph) did to let one invited person into a room's space, or why it could not."""

    email: str
    done: tuple[str, ...] = ()  # e.g. "invited (B2B)", "added to the team", "added to the private channel"
    problem: str | None = None  # why the rest must be done by hand (safe to show the lead)
    user_id: str | None = None  # the guest account's object id in the force's tenant, when known


class UploadFailed(Exception):
    """A file could not be uploaded where Teams said (the message is safe to show)."""


class Teams(Protocol):
    """What handlers may ask of Teams; bot/ implements it for the current turn."""

    graph_configured: bool

    async def upload_file(self, url: str, path: Path, size: int) -> None:
        """Upload a file the person accepted with a FileConsentCard to the URL Teams gave; UploadFailed."""
        ...

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

    def channel_reference(self) -> str:
        """A stored reference (JSON) to the channel the command came from."""
        ...

    async def resolve(self, who: str) -> Person | None:
        """An @mention, email or UPN -> a person in this team or chat, or None."""
        ...

    async def admit_guest(self, *, email: str, agency_tenants: tuple[str, ...], team_id: str,
                          channel_id: str | None, space_kind: str) -> GuestAccess:  # fmt: skip
        """Let an invited person into a room's space through Graph: a B2B invitation where they have no
        guest account, then the team and the private channel; for a shared channel, the agency's own
        tenant user through B2B direct connect. Only called when Graph is configured."""
        ...


@dataclass
class CommandContext:
    """Everything a handler may use; it never sees the Bot Framework."""

    principal: Principal
    conversation: Conversation
    resource: Resource
    db: Database
    work: Work
    step: Step
    may: May
    may_all: Callable[[Sequence[tuple[str, Resource]]], list[Decision]]
    teams: Teams
    room: Room | None = None
    states: RoomStates = field(default_factory=RoomStates)
    """What this process read of rooms' open tasks and members, kept per room revision (the bot's own;
    a context made without one keeps nothing beyond itself)."""
    facts: Loaded = field(default_factory=Loaded)
    request_key: str | None = None  # the activity's dedupe key: ties multi-step work to this request
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    templates: Mapping[str, Template] = field(default_factory=dict)
    timezone: str = "Europe/London"
    guest_max_days: int = 90
    """The longest a guest's access may last (OPSROOM_GUEST_MAX_DAYS)."""
    note: AuditNote = field(default_factory=AuditNote)
    may_list: Callable[[Hashable, Callable[[], Sequence[tuple[str, Resource]]]], list[Decision]] | None = None
    """The caller's decisions on the requests a name determines, the list remembered per kind of caller
    (`Policy.decide_list`: `/help` asks about every command); None: ask `may_all` each time."""
    decide_many: Callable[[Principal, Sequence[tuple[str, Resource]]], list[Decision]] = _deny_all
    """The policy for anyone, not only the caller: what the other readers of a reply in the room's own
    space may see (dialogs/audience.py). Never for deciding what the caller may do."""
