"""The middleware chain, in one order set here: audit(identity, dedupe, route, locate, policy, handler).

Every step has one shape, `async def step(turn, next)`. The audit step is
outermost so that denials, parse errors, duplicates and crashes are recorded
as well as successes; replies are sent only after the audit event is durable.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import TypeVar

from botbuilder.core import CardFactory, MessageFactory, TurnContext
from botbuilder.schema import Activity, ActivityTypes, InvokeResponse
from sqlmodel import Session

from bot.identity import Identity
from bot.routing import route
from bot.turn import Turn
from core.audit import flows
from core.audit.flows import DuplicateActivity
from core.db import Database
from core.dedupe import service as dedupe
from core.rooms import flows as rooms
from core.rooms import service as room_service
from dialogs.context import Reply
from dialogs.registry import Router
from policies import PrincipalKind, Resource, evaluate
from policies.model import RoomRole

log = logging.getLogger(__name__)

T = TypeVar("T")
Next = Callable[[], Awaitable[None]]
Step = Callable[[Turn, Next], Awaitable[None]]

INVOKE_RESPONSE_KEY = "BotFrameworkAdapter.InvokeResponse"


class Pipeline:
    """Runs a turn through the steps; the handler step is supplied by the bot."""

    def __init__(
        self,
        *,
        db: Database,
        identity: Identity,
        router: Router,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.db = db
        self.identity = identity
        self.router = router
        self.clock = clock
        self._inflight: dict[str, asyncio.Lock] = {}

    def steps(self, handler: Step) -> Sequence[Step]:
        """The one order, set here."""
        return (self.audit, self.identify, self.dedupe, self.route, self.locate, self.policy, handler)

    async def run(self, turn: Turn, handler: Step) -> None:
        """Run every step in order."""
        steps = self.steps(handler)

        async def call(index: int) -> None:
            if index < len(steps):
                await steps[index](turn, lambda: call(index + 1))

        await call(0)

    # -- recording -------------------------------------------------------------------------

    async def commit(self, turn: Turn, fn: Callable[[Session], T] | None = None) -> T | None:
        """Run fn (the action) and record the turn's audit event, in one transaction."""

        def work(session: Session) -> T | None:
            result = fn(session) if fn is not None else None
            if turn.outcome not in ("error", "duplicate"):
                for write in turn.on_commit:
                    write(session)
            flows.record(session, turn.draft(), claim=turn.claim)
            return result

        result = await self.db.commit(work)
        turn.recorded = True
        return result

    async def _record_duplicate(self, turn: Turn) -> None:
        turn.outcome, turn.reply = "duplicate", None
        draft = turn.draft()
        await self.db.commit(lambda session: flows.record(session, draft))
        turn.recorded = True

    @contextlib.asynccontextmanager
    async def _exclusive(self, turn: Turn) -> AsyncIterator[None]:
        """Serialise re-sends of one activity on this replica (the claim covers replicas)."""
        if turn.claim is None:
            yield
            return
        key = turn.claim.key
        lock = self._inflight.setdefault(key, asyncio.Lock())
        try:
            async with lock:
                yield
        finally:
            if not lock.locked() and self._inflight.get(key) is lock:
                del self._inflight[key]

    # -- steps -------------------------------------------------------------------------------

    async def audit(self, turn: Turn, next: Next) -> None:
        """Outermost: record exactly one event for the activity, then reply."""
        async with self._exclusive(turn):
            try:
                await next()
            except DuplicateActivity:
                turn.recorded = False
                turn.outcome = "duplicate"
            except Exception as exc:
                log.exception("handler failed")
                if turn.recorded:  # the action committed; only delivering the reply failed
                    return
                turn.outcome, turn.detail = "error", type(exc).__name__
                turn.claim = None  # not acted on: a re-send may try again
                turn.reply = Reply(text="Sorry, something went wrong and nothing was changed. "
                                        f"Reference: `{turn.activity.id or 'unknown'}`.")  # fmt: skip
            if turn.outcome == "duplicate":
                await self._record_duplicate(turn)
            elif not turn.recorded:
                try:
                    await self.commit(turn)
                except DuplicateActivity:
                    await self._record_duplicate(turn)
        await self._send(turn)

    async def identify(self, turn: Turn, next: Next) -> None:
        """Who is asking."""
        turn.principal = await self.identity.resolve(turn.context, turn.conversation)
        await next()

    async def dedupe(self, turn: Turn, next: Next) -> None:
        """An activity already acted on is acknowledged and goes no further.

        The same read also looks up the room of this conversation for the locate
        step: one database round trip per request instead of two (each costs
        more CPU than the query it carries).
        """
        key = turn.claim.key if turn.claim is not None else None
        where, principal = turn.conversation.conversation_id, turn.principal

        def read(session: Session) -> tuple[bool, rooms.Located | None]:
            seen = key is not None and dedupe.seen(session=session, key=key)
            if seen or where is None or principal is None:
                return seen, None
            return seen, rooms.locate(session, conversation_id=where, key=None,
                                      aad_id=principal.aad_id, kind=principal.kind.value)  # fmt: skip

        seen, turn.here = await self.db.run(read, readonly=True)
        if seen:
            turn.outcome = "duplicate"
            turn.route = route(self.router, turn.activity)  # pure: only to name the action
            return
        await next()

    async def route(self, turn: Turn, next: Next) -> None:
        """Parse the activity; malformed and unknown commands are answered here."""
        found = turn.route = route(self.router, turn.activity)
        if found.kind == "parse_error" and found.command is not None:
            turn.outcome = "parse_error"
            turn.detail = found.message
            turn.reply = Reply(text=f"{found.message}\n\nUsage: `{found.command.usage}`")
            return
        if found.kind == "unknown":
            turn.outcome = "unknown_command"
            hint = f" Did you mean `/{found.message}`?" if found.message else ""
            turn.reply = Reply(text=f"I don't know that command.{hint} Type `/help` for the list.")
            return
        if found.kind == "ignored":
            turn.outcome = "ignored"
            return
        await next()

    async def locate(self, turn: Turn, next: Next) -> None:
        """Which room the command is about: --room KEY, or the room whose space it was typed in."""
        found, principal = turn.route, turn.principal
        if found is None or found.kind != "command" or found.command is None or principal is None:
            await next()
            return
        key = getattr(found.args, "room", None)
        conversation_id = turn.conversation.conversation_id

        def look(session: Session) -> rooms.Located:
            return rooms.locate(session, conversation_id=conversation_id, key=key,
                                aad_id=principal.aad_id, kind=principal.kind.value)  # fmt: skip

        located = turn.here if key is None else None
        if located is None:
            located = await self.db.run(look, readonly=True)
        room = located.room
        if key and room is None:
            turn.outcome = "no_room"
            turn.reply = Reply(text=f"There is no room {key.upper()} that you can see.")
            return
        if room is None and found.command.needs_room:
            turn.outcome = "needs_room"
            turn.reply = await self._which_room(turn)
            return
        if room is not None:
            turn.room = room
            turn.resource = Resource(room_key=room.key, room_closed=room.closed,
                                     role=RoomRole(located.role) if located.role else None)  # fmt: skip
            if located.joining and room.id is not None and principal.aad_id:
                room_id, aad_id, now = room.id, principal.aad_id, self.clock()
                turn.on_commit.append(lambda s: rooms.join(s, room_id, aad_id=aad_id, now=now,
                                      tenant_id=principal.tenant_id, name=principal.name))  # fmt: skip
        await next()

    async def _which_room(self, turn: Turn) -> Reply:
        principal = turn.principal
        ask = "This command acts on a room: use it inside a room's thread, or add `--room KEY`."
        if principal is None or principal.aad_id is None or principal.kind is PrincipalKind.ANONYMOUS:
            return Reply(text=ask)
        aad_id = principal.aad_id
        # Officers also see the open rooms of the team they ask from; guests only their own.
        team = turn.conversation.team_id if principal.kind is not PrincipalKind.GUEST else None
        mine = await self.db.run(lambda s: [r.key for r in room_service.rooms_of(
            session=s, aad_id=aad_id, team_id=team) if not r.closed], readonly=True)  # fmt: skip
        if not mine:
            return Reply(text=f"{ask} You are not in any open room.")
        listed = ", ".join(f"`{key}`" for key in mine[:20])
        hint = "Which room? Use it inside the room's thread or add `--room KEY`."
        return Reply(text=f"{hint} Yours: {listed}.")

    async def policy(self, turn: Turn, next: Next) -> None:
        """The one enforcement point: the route's declared action, asked of policies."""
        assert turn.principal is not None and turn.route is not None
        decision = turn.decision = evaluate(turn.principal, turn.route.action, turn.resource)
        if not decision.allowed:
            turn.outcome = "denied"
            if turn.route.kind == "command":
                turn.reply = Reply(text=f"You can't do that here: {decision.reason}.")
            return
        await next()

    # -- replies -----------------------------------------------------------------------------

    async def _send(self, turn: Turn) -> None:
        context, reply = turn.context, turn.reply
        if reply is not None and turn.outcome != "duplicate":
            try:
                await context.send_activity(to_activity(reply))
            except Exception:
                log.exception("could not deliver the reply")
        if context.activity.type == ActivityTypes.invoke and not context.turn_state.get(INVOKE_RESPONSE_KEY):
            await context.send_activity(invoke_ack(reply))


def to_activity(reply: Reply) -> Activity:
    """A message activity for a Reply."""
    if reply.card is not None:
        message = MessageFactory.attachment(CardFactory.adaptive_card(reply.card))
        if reply.text:
            message.text = reply.text
        return message
    message = MessageFactory.text(reply.text or "")
    message.text_format = "markdown"
    return message


def invoke_ack(reply: Reply | None) -> Activity:
    """The answer to an Adaptive Card Action.Execute: a short message shown on the card.

    A plain dict body: the SDK's AdaptiveCardInvokeResponse types `value` as a
    dict and fails to serialise the message form Teams documents.
    """
    text = reply.text if reply is not None and reply.text else "Done."
    body = {"statusCode": 200, "type": "application/vnd.microsoft.activity.message", "value": text[:500]}
    return Activity(type=ActivityTypes.invoke_response, value=InvokeResponse(status=200, body=body))


def turn_of(context: TurnContext) -> Turn:
    """The Turn riding on a TurnContext."""
    turn = context.turn_state.get("opsroom.turn")
    assert isinstance(turn, Turn)
    return turn
