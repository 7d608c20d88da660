"""The Teams activity handler: hands each activity to the pipeline, then to the router's command."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from botbuilder.core import TurnContext
from botbuilder.core.teams import TeamsActivityHandler
from botbuilder.schema import ChannelAccount
from botbuilder.schema.teams import TeamInfo, TeamsChannelAccount
from sqlmodel import Session

from bot import logs
from bot.graph import GraphClient
from bot.identity import conversation_of
from bot.pipeline import Next, Pipeline, turn_of
from bot.teams import TurnTeams
from bot.turn import TURN_KEY, Turn
from bot.work import invoke_ack
from core.audit.flows import Claim
from core.dedupe.models import activity_key
from core.rooms.states import RoomStates
from core.rooms.templates import Template
from dialogs import events
from dialogs.context import CommandContext
from policies import Decision, Resource

log = logging.getLogger(__name__)

T = TypeVar("T")


class OpsroomBot(TeamsActivityHandler):  # type: ignore[misc]
    """Every activity goes through the pipeline; its handler step is Teams' own dispatch."""

    def __init__(
        self,
        pipeline: Pipeline,
        *,
        graph: GraphClient | None = None,
        templates: Mapping[str, Template] | None = None,
        timezone: str = "Europe/London",
        guest_max_days: int = 90,
    ) -> None:
        self.pipeline = pipeline
        self.guest_max_days = guest_max_days
        self.graph = graph
        self.identity = pipeline.identity
        self.templates = dict(templates or {})
        self.timezone = timezone
        self.states = RoomStates()

    async def on_turn(self, turn_context: TurnContext) -> None:
        activity = turn_context.activity
        conversation = conversation_of(activity)
        claim = None
        if activity.id:
            key = activity_key(activity.channel_id, conversation.conversation_id, activity.id)
            claim = Claim(key, activity.id)
        turn = Turn(turn_context, conversation, claim)
        turn.teams = TurnTeams(turn_context, self.graph, self.identity)
        turn_context.turn_state[TURN_KEY] = turn
        token = logs.activity_id.set(activity.id)
        try:
            await self.pipeline.run(turn, self._dispatch)
        finally:
            logs.activity_id.reset(token)

    async def _dispatch(self, turn: Turn, next: Next) -> None:
        """The handler step: TeamsActivityHandler's dispatch, into the methods below."""
        await super().on_turn(turn.context)

    # -- what Teams' dispatch calls ----------------------------------------------------------

    async def on_message_activity(self, turn_context: TurnContext) -> None:
        await self._run_command(turn_of(turn_context))

    async def on_adaptive_card_invoke(self, turn_context: TurnContext, invoke_value: Any) -> Any:
        await self._run_command(turn_of(turn_context))
        # Only buffered, and a placeholder: it stops the SDK answering with an empty body; the pipeline
        # replaces it with the answer once the whole turn, audit included, is done.
        await turn_context.send_activity(invoke_ack(None))
        return None

    async def on_teams_file_consent_accept(self, turn_context: TurnContext, response: Any) -> None:
        await self._run_command(turn_of(turn_context))

    async def on_teams_file_consent_decline(self, turn_context: TurnContext, response: Any) -> None:
        await self._run_command(turn_of(turn_context))

    async def on_teams_members_added(
        self, members_added: list[TeamsChannelAccount], team_info: TeamInfo, turn_context: TurnContext
    ) -> None:
        await self._run_event(turn_of(turn_context))

    async def on_members_added_activity(
        self, members_added: list[ChannelAccount], turn_context: TurnContext
    ) -> None:
        await self._run_event(turn_of(turn_context))

    async def on_teams_members_removed(
        self, members_removed: list[TeamsChannelAccount], team_info: TeamInfo, turn_context: TurnContext
    ) -> None:
        await self._run_event(turn_of(turn_context))

    async def on_members_removed_activity(
        self, members_removed: list[ChannelAccount], turn_context: TurnContext
    ) -> None:
        await self._run_event(turn_of(turn_context))

    async def on_installation_update(self, turn_context: TurnContext) -> None:
        await self._run_event(turn_of(turn_context))

    # -- running the routed work -------------------------------------------------------------

    def _context(self, turn: Turn) -> CommandContext:
        principal, pipeline = turn.principal, self.pipeline
        assert principal is not None and turn.teams is not None

        def may(action: str, resource: Resource | None = None) -> Decision:
            return pipeline.policy.decide(principal, action, turn.resource if resource is None else resource)

        def step(fn: Callable[[Session], T], *, outcome: str) -> Awaitable[T]:
            return pipeline.step_commit(turn, fn, outcome=outcome)

        return CommandContext(
            principal=principal,
            conversation=turn.conversation,
            resource=turn.resource,
            db=pipeline.db,
            work=turn.work,
            step=step,
            may=may,
            may_all=lambda requests: pipeline.policy.decide_many(principal, requests),
            may_list=lambda name, requests: pipeline.policy.decide_list(principal, name, requests),
            teams=turn.teams,
            room=turn.room,
            states=self.states,
            facts=turn.facts,
            request_key=turn.claim.key if turn.claim is not None else None,
            now=pipeline.clock,
            templates=self.templates,
            timezone=self.timezone,
            guest_max_days=self.guest_max_days,
            note=turn.note,
            decide_many=pipeline.policy.decide_many,
        )

    async def _run_command(self, turn: Turn) -> None:
        route = turn.route
        if route is None or route.kind != "command" or route.command is None:
            return
        turn.reply = await route.command.handler(self._context(turn), route.args)

    async def _run_event(self, turn: Turn) -> None:
        route = turn.route
        if route is None or route.kind != "event":
            return
        data = turn.activity.channel_data if isinstance(turn.activity.channel_data, dict) else {}
        team_name = (data.get("team") or {}).get("name")
        turn.reply = await events.handle(route.action, self._context(turn), team_name=team_name)
