"""The middleware chain, in one order set here: audit(identity, dedupe, route, locate, load, authorise,
handler).

Every step has one shape, `async def step(turn, next)`. The audit step is
outermost so that denials, parse errors, duplicates and crashes are recorded
as well as successes; replies are sent only after the audit event is durable.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from botbuilder.core import TurnContext
from botbuilder.schema import Activity, ActivityTypes
from sqlmodel import Session

from bot import chats as personal_chat
from bot.delivered import DeliveredMarks
from bot.identity import Identity
from bot.locating import Locator
from bot.metrics import Metrics
from bot.replies import Replies
from bot.routing import route
from bot.turn import Turn
from bot.work import failed as _failed
from bot.work import invoke_answer, run_staged
from core.audit import flows
from core.audit.flows import DuplicateActivity
from core.db import Database
from core.dedupe import service as dedupe
from core.outbox import chats
from core.outbox import service as outbox
from core.outbox.models import PersonalChat
from core.rooms import flows as rooms
from core.rooms.located import Located
from dialogs.context import Reply
from dialogs.registry import Router
from dialogs.text import escape_message
from policies import Policy

log = logging.getLogger(__name__)

T = TypeVar("T")
Next = Callable[[], Awaitable[None]]
Step = Callable[[Turn, Next], Awaitable[None]]



Loader = Callable[[Turn, str], Awaitable[None]]
"""Loads one declared fact (`kind:field`) into turn.resource / turn.facts (it never decides)."""


class Pipeline:
    """Runs a turn through the steps; the handler step is supplied by the bot."""

    def __init__(
        self,
        *,
        db: Database,
        identity: Identity,
        router: Router,
        policy: Policy,
        loaders: Mapping[str, Loader] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        after_commit: Callable[[], None] = lambda: None,
        metrics: Metrics | None = None,
        replies: Replies | None = None,
    ) -> None:
        self.db = db
        self.replies = replies
        """Posts replies as plain JSON (bot/replies.py); None: through the TurnContext, as the SDK does."""
        self.identity = identity
        self.router = router
        self.policy = policy
        self.loaders = dict(loaders or {})
        self.clock = clock
        self.after_commit = after_commit
        """Called after a commit that may have written outbox rows (wakes the sender)."""
        self.metrics = metrics or Metrics()
        self.located = Located()
        """Rooms and memberships this process looked up, reused while their room's revision holds."""
        self.locator = Locator(db=db, policy=policy, identity=identity, clock=lambda: self.clock(),
                               located=self.located)  # fmt: skip
        self._inflight: dict[str, asyncio.Lock] = {}
        self.delivered = DeliveredMarks(db)
        """Replies delivered lately (their mark in the database may still be on its way)."""
        missing = {f.split(":")[0] for c in router.commands() for f in c.facts} - set(self.loaders)
        if missing:
            raise ValueError(f"no loader for the declared facts {sorted(missing)}")

    def steps(self, handler: Step) -> Sequence[Step]:
        """The one order, set here."""
        return (self.audit, self.identify, self.dedupe, self.route, self.locate, self.load, self.authorise,
                handler)  # fmt: skip

    async def run(self, turn: Turn, handler: Step) -> None:
        """Run every step in order."""
        steps = self.steps(handler)

        async def call(index: int) -> None:
            if index < len(steps):
                await steps[index](turn, lambda: call(index + 1))

        await call(0)

    # -- recording -------------------------------------------------------------------------

    async def commit(self, turn: Turn) -> None:
        """The request's one unit of work: its staged writes, its reply and its audit event, together."""
        staged = bool(turn.work.staged)
        reply, note = turn.reply, (turn.note.outcome, turn.note.detail)

        def work(session: Session) -> None:
            # The group writer may run this twice (core/groupcommit.py): each run starts from the same turn.
            turn.reply, (turn.note.outcome, turn.note.detail) = reply, note
            acting = turn.outcome not in ("error", "duplicate")
            if acting:
                for write in turn.on_commit:
                    write(session)
            if acting and turn.outcome == "ok" and staged:
                run_staged(session, turn)
            if callable(turn.reply):
                turn.reply = turn.reply()
            if turn.reply is not None:
                turn.reply_json = turn.reply.activity()  # one copy: kept with the claim, then posted
            if turn.claim is not None:
                turn.claim.reply = None if turn.reply is None else turn.reply.activity_json()
            flows.record(session, turn.draft(), claim=turn.claim)

        turn.work.committed = True
        await self._timed("request", self.db.commit(work))
        turn.recorded = True
        if staged:
            self.after_commit()

    async def step_commit(self, turn: Turn, fn: Callable[[Session], T], *, outcome: str) -> T:
        """Commit fn now with an audit event of its own: a step of a request that waits on Teams midway."""

        def work(session: Session) -> T:
            result = fn(session)
            draft = turn.draft()
            draft.outcome = outcome
            flows.record(session, draft)
            return result

        result: T = await self._timed("step", self.db.commit(work))
        self.after_commit()
        return result

    async def _record_duplicate(self, turn: Turn) -> None:
        turn.outcome, turn.reply = "duplicate", None
        draft = turn.draft()
        await self._timed("duplicate", self.db.commit(lambda session: flows.record(session, draft)))
        turn.recorded = True

    async def _timed(self, path: str, commit: Awaitable[T]) -> T:
        """Await a commit that appends an audit event, observing how long it took
        (opsroom_audit_append_seconds: how long the request waits for its event to be durable, group-commit
        queueing included)."""
        started = time.perf_counter()
        result = await commit
        self.metrics.child(self.metrics.audit_append, path).observe(time.perf_counter() - started)
        return result

    def _count(self, turn: Turn) -> None:
        """Count the request by the outcome its audit event records."""
        outcome = turn.note.outcome if turn.outcome == "ok" and turn.note.outcome else turn.outcome
        action = turn.route.action if turn.route is not None else "activity"
        self.metrics.request(outcome, action)

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
                    self._count(turn)
                    return
                _failed(turn, exc)
            if turn.outcome == "duplicate":
                await self._record_duplicate(turn)
            elif not turn.recorded:
                try:
                    await self.commit(turn)
                except DuplicateActivity:
                    await self._record_duplicate(turn)
                except Exception as exc:  # a staged write failed: the transaction kept none of them
                    if turn.outcome == "error":
                        self.metrics.request("unrecorded", turn.route.action if turn.route else "activity")
                        raise  # not even the audit event could be written: the request fails (Teams retries)
                    log.exception("the request's unit of work failed")
                    _failed(turn, exc)
                    await self.commit(turn)
            self._count(turn)
            await self._send(turn)  # inside: a re-send waits until this reply's fate is known

    async def identify(self, turn: Turn, next: Next) -> None:
        """Who is asking."""
        turn.principal = await self.identity.resolve(turn.context, turn.conversation)
        await next()

    async def dedupe(self, turn: Turn, next: Next) -> None:
        """An activity already acted on is acknowledged and goes no further (its kept reply is
        delivered if it never was).

        The same read also fetches the room of this conversation for the locate
        step: one database round trip per request instead of two (each costs
        more CPU than the query it carries); in a personal chat, also the bot's
        stored chat with its person, recorded when new or moved (bot/chats.py).
        """
        key = turn.claim.key if turn.claim is not None else None
        where, principal = turn.conversation.conversation_id, turn.principal

        personal = turn.conversation.conversation_type == "personal"

        Read = tuple[dedupe.Seen | None, rooms.Found | None, bool, PersonalChat | None]

        def read(session: Session) -> Read:
            seen = dedupe.seen(session=session, key=key) if key is not None else None
            if seen is not None or where is None or principal is None:
                return seen, None, False, None
            # A personal chat the outbox stopped posting to (403) works again once its person writes.
            blocked = personal and outbox.blocked(session=session, conversation_id=where) is not None
            aad_id = principal.aad_id if personal else None
            stored = chats.get(session=session, aad_id=aad_id) if aad_id else None
            found = rooms.find(session, conversation_id=where, key=None, aad_id=principal.aad_id,
                               located=self.located)  # fmt: skip
            return seen, found, blocked, stored

        # Each look-up stands alone (the room's says which revision it read): no snapshot needed.
        seen, turn.here, blocked, stored = await self.db.look_up(read)
        remember = personal_chat.remember(turn, stored, self.clock()) if personal and seen is None else None
        if remember is not None:  # where their own digest goes (`/digest me on`)
            turn.on_commit.append(remember)
        if blocked and where is not None:
            chat = where
            turn.on_commit.append(lambda s: outbox.unblock(session=s, conversation_id=chat))
        if seen is not None:
            turn.outcome = "duplicate"
            turn.route = route(self.router, turn.activity)  # pure: only to name the action
            turn.stored_reply = seen.reply if not seen.delivered else None
            return
        await next()

    async def route(self, turn: Turn, next: Next) -> None:
        """Parse the activity; malformed and unknown commands are answered here."""
        found = turn.route = route(self.router, turn.activity)
        if found.kind == "parse_error" and found.command is not None:
            turn.outcome = "parse_error"
            turn.detail = found.message
            turn.reply = Reply(text=f"{found.message}\n\nUsage: **{escape_message(found.command.usage)}**")
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
        """Which room the command is about, and the caller's standing in it (bot/locating.py)."""
        if await self.locator.locate(turn):
            await next()

    async def load(self, turn: Turn, next: Next) -> None:
        """The other facts the command declared, loaded before the policy decides."""
        command = turn.route.command if turn.route is not None else None
        for fact in command.facts if command is not None else ():
            kind, _, field = fact.partition(":")
            await self.loaders[kind](turn, field)
        await next()

    async def authorise(self, turn: Turn, next: Next) -> None:
        """The one enforcement point: the route's declared action on the loaded facts, asked of the policy."""
        assert turn.principal is not None and turn.route is not None
        if not self._sees_what_it_names(turn):
            return
        decision = turn.decision = self.policy.decide(turn.principal, turn.route.action, turn.resource)
        self.metrics.decision(decision.rule, decision.allowed)
        if not decision.allowed:
            turn.outcome = "denied"
            if turn.route.kind == "command":
                notes = "".join(f" ({note})" for note in turn.facts.notes)
                turn.reply = Reply(text=f"You can't do that here: {decision.reason}{notes}.")
            return
        await next()

    def _sees_what_it_names(self, turn: Turn) -> bool:
        """A thing the command names (a task) that is not there, or that the policy does not let the caller
        see, gets one answer either way; the audit event tells the two apart (refused / denied)."""
        named, command = turn.facts.named, turn.route.command if turn.route is not None else None
        if named is None or command is None or turn.principal is None:
            return True
        if named.exists:
            seeing = self.policy.decide(turn.principal, named.see, turn.resource)
            self.metrics.decision(seeing.rule, seeing.allowed)
            if seeing.allowed:
                return True
            turn.decision, turn.outcome = seeing, "denied"
            turn.detail = f"not visible to the caller ({named.see})"
        else:
            turn.outcome, turn.detail = "refused", "not found"
        usage = f"\n\nUsage: **{escape_message(command.usage)}**" if named.usage else ""
        turn.reply = Reply(text=f"{named.absent}{usage}")
        return False

    # -- replies -----------------------------------------------------------------------------

    async def _send(self, turn: Turn) -> None:
        context, reply = turn.context, turn.reply
        key = turn.claim.key if turn.claim is not None else None
        outgoing: dict[str, Any] | None = None
        encoded: str | None = None  # outgoing's JSON, when the claim keeps it
        if isinstance(reply, Reply) and turn.outcome != "duplicate":
            outgoing = turn.reply_json if turn.reply_json is not None else reply.activity()
            if turn.reply_json is not None and turn.claim is not None:
                encoded = turn.claim.reply
        elif turn.outcome == "duplicate" and turn.stored_reply and key not in self.delivered:
            outgoing, encoded = json.loads(turn.stored_reply), turn.stored_reply  # never delivered: now
        if outgoing is not None:
            try:
                if self.replies is not None:
                    await self.replies.send(context, outgoing, encoded=encoded)
                else:
                    await context.send_activity(Activity().deserialize(outgoing))
            except Exception:
                log.exception("could not deliver the reply")
            else:
                if key is not None:
                    self.delivered.delivered(key)
        if context.activity.type == ActivityTypes.invoke:  # buffered by the adapter: the last one wins
            answer = invoke_answer(context.activity, reply if isinstance(reply, Reply) else None)
            await context.send_activity(answer)

    async def close(self) -> None:
        """Write the delivered marks still waiting (at shutdown)."""
        await self.delivered.close()


def turn_of(context: TurnContext) -> Turn:
    """The Turn riding on a TurnContext."""
    turn = context.turn_state.get("opsroom.turn")
    assert isinstance(turn, Turn)
    return turn
