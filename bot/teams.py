"""What handlers may ask of Teams, for the current turn (the dialogs.context.Teams protocol).

Rooms start their thread through the Bot Connector's create-conversation call
directly: the SDK's TeamsInfo.send_message_to_teams_channel goes through
adapter.create_conversation, which refuses an empty bot app id, so it cannot
work in local mode.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

from botbuilder.core import BotAdapter, CardFactory, MessageFactory, TurnContext
from botbuilder.core.teams import TeamsInfo
from botbuilder.schema import (
    ConversationAccount,
    ConversationParameters,
    ConversationReference,
    Mention,
)
from botbuilder.schema.teams import TeamDetails

from bot import graph_guests, uploads
from bot.graph import GraphClient, GraphError
from bot.identity import Identity, Member
from core.rooms.flows import RoomError
from dialogs.context import GuestAccess, Person, Space

log = logging.getLogger(__name__)

_GUID = re.compile(r"[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")


def _channel_refusal(exc: GraphError, name: str, kind: str) -> str:
    """What to tell the officer when Graph would not create a room's channel."""
    if exc.code == "operation_pending":
        return (f"Teams is still creating the {kind} channel “{name}”; when it appears, "
                f"run /room open {name} in it to open the room there")  # fmt: skip
    if exc.status == 409:
        return f"this team already has a channel called “{name}”: choose another name"
    if exc.status in (401, 403):
        return "Opsroom's Microsoft Graph app may not create channels in this team (it needs Channel.Create)"
    if exc.status == 400 or exc.code == "operation_failed":
        return f"Teams would not create the {kind} channel: {exc.message}"
    return "Microsoft Graph is not answering just now; try again in a few minutes"


def _owner_refusal(exc: GraphError) -> str:
    """Why a room's new lead could not be made an owner of its channel."""
    if exc.status in (401, 403):
        return "Opsroom's Graph app lacks the ChannelMember.ReadWrite.All permission"
    if exc.status in (400, 404, 409):
        return f"Teams would not make them an owner: {exc.message}"
    return "Microsoft Graph is not answering just now"


async def team_group_id(connector: Any, team_id: str) -> str:
    """A team's AAD group id from the Bot Connector's GET /v3/teams/{id}, through a connector client (a
    turn's, or one made for a service URL outside any turn); RoomError with the reason when it cannot.

    Workaround: TeamsInfo.get_team_details builds a synchronous TeamsConnectorClient
    (requests, a fresh msrest configuration) and calls it inside the event loop. The
    async connector client has no teams operations, so send the same GET through its
    pipeline: pooled session, bearer token and retries included.
    """
    client = connector._client
    url = client.format_url("/v3/teams/{teamId}", teamId=quote(team_id, safe=""))
    response = await client.async_send(client.get(url, {}, {"Accept": "application/json"}), stream=False)
    if response.status_code in (403, 404):
        raise RoomError("Teams does not know this team any more (is Opsroom still installed in it?)")
    if response.status_code != 200:  # after the pipeline's own retries
        log.warning("team lookup answered %s", response.status_code)
        raise RoomError("Teams is not answering just now; try again in a few minutes")
    details = TeamDetails().deserialize(json.loads(response.text()))
    if not details.aad_group_id:
        raise RoomError("Teams did not say which Microsoft 365 group this team is")
    return str(details.aad_group_id)


class TurnTeams:
    """Teams operations on behalf of one turn, through its connector client."""

    def __init__(self, context: TurnContext, graph: GraphClient | None, identity: Identity) -> None:
        self.context = context
        self.graph = graph
        self.identity = identity
        self.graph_configured = graph is not None

    async def upload_file(self, url: str, path: Path, size: int) -> None:
        await uploads.upload(url, path, size)

    @property
    def _connector(self) -> Any:
        return self.context.turn_state[BotAdapter.BOT_CONNECTOR_CLIENT_KEY]

    def _channel_data(self) -> dict[str, Any]:
        data = self.context.activity.channel_data
        return data if isinstance(data, dict) else {}

    def _tenant(self) -> str | None:
        tenant = (self._channel_data().get("tenant") or {}).get("id")
        return tenant if isinstance(tenant, str) else None

    async def _start_thread(self, channel_id: str, card: dict[str, Any], kind: str, space_id: str) -> Space:
        activity = self.context.activity
        tenant = self._tenant()
        message = MessageFactory.attachment(CardFactory.adaptive_card(card))
        params = ConversationParameters(
            is_group=True, bot=activity.recipient, activity=message, tenant_id=tenant,
            channel_data={"channel": {"id": channel_id}, "tenant": {"id": tenant}},
        )  # fmt: skip
        created = await self._connector.conversations.create_conversation(params)
        conversation_id = space_id or created.id
        reference = ConversationReference(
            activity_id=created.activity_id, bot=activity.recipient, channel_id=activity.channel_id,
            service_url=activity.service_url,
            conversation=ConversationAccount(
                id=conversation_id, is_group=True, conversation_type="channel", tenant_id=tenant
            ),
        )
        return Space(conversation_id, json.dumps(reference.serialize()), kind, created.activity_id)

    async def create_thread(self, card: dict[str, Any]) -> Space:
        """A new thread in the channel the command came from, starting with the card."""
        channel_id = (self._channel_data().get("channel") or {}).get("id")
        if not channel_id:
            raise RoomError("rooms are opened from a team channel")
        return await self._start_thread(channel_id, card, "thread", "")

    async def create_channel(self, *, name: str, description: str, kind: str, owner_aad_id: str,
                             card: dict[str, Any]) -> Space:  # fmt: skip
        """A private or shared channel in this team (Graph), the card posted in it."""
        if self.graph is None:
            raise RoomError("Microsoft Graph is not configured")
        team = self._channel_data().get("team") or {}
        group_id = await self._team_group_id(str(team.get("id") or ""))
        try:
            channel = await self.graph.create_channel(
                team_id=group_id, name=name, description=description, membership_type=kind,
                owner_aad_id=owner_aad_id,
            )  # fmt: skip
        except GraphError as exc:
            log.warning("graph refused a %s channel: %s", kind, exc)
            raise RoomError(_channel_refusal(exc, name, kind)) from exc
        return await self._start_thread(channel["id"], card, kind, channel["id"])

    async def make_channel_owner(self, *, team_id: str, channel_id: str, aad_id: str) -> str:
        """Make someone an owner of a private or shared channel in a team (Graph)."""
        if self.graph is None:
            raise RoomError("Microsoft Graph is not configured")
        group_id = await self._team_group_id(team_id)
        try:
            return await self.graph.make_channel_owner(
                team_id=group_id, channel_id=channel_id, user_aad_id=aad_id
            )
        except GraphError as exc:
            log.warning("graph refused a channel owner: %s", exc)
            raise RoomError(_owner_refusal(exc)) from exc

    async def admit_guest(self, *, email: str, agency_tenants: tuple[str, ...], team_id: str,
                          channel_id: str | None, space_kind: str) -> GuestAccess:  # fmt: skip
        """Let an invited person into a room's team and channel (Graph, bot.graph_guests). What Teams or
        Graph refuses comes back as the access's problem, never as an exception."""
        if self.graph is None:
            return GuestAccess(email, problem="Microsoft Graph is not configured")
        try:
            group_id = await self._team_group_id(team_id)
        except RoomError as exc:
            return GuestAccess(email, problem=str(exc))
        return await graph_guests.admit_guest(
            self.graph, email=email, agency_tenants=agency_tenants, group_id=group_id, channel_id=channel_id,
            space_kind=space_kind,
        )  # fmt: skip

    async def _team_group_id(self, team_id: str) -> str:
        """The team's AAD group id (what Graph calls the team): from this activity's channelData
        when it comes from that team, else from the connector (team_group_id)."""
        if not team_id:
            raise RoomError("rooms are opened from a team channel")
        here = self._channel_data().get("team") or {}
        if here.get("id") == team_id and here.get("aadGroupId"):
            return str(here["aadGroupId"])
        return await team_group_id(self._connector, team_id)

    def channel_reference(self) -> str:
        """A stored reference (JSON) to the channel this command came from: a post to it starts a new
        thread there (where a room that cannot finish opening is announced as cancelled)."""
        activity = self.context.activity
        channel_id = (self._channel_data().get("channel") or {}).get("id") or activity.conversation.id
        tenant = self._tenant()
        reference = ConversationReference(
            bot=activity.recipient, channel_id=activity.channel_id, service_url=activity.service_url,
            conversation=ConversationAccount(id=channel_id, is_group=True, conversation_type="channel",
                                             tenant_id=tenant),
        )  # fmt: skip
        return json.dumps(reference.serialize())

    async def resolve(self, who: str) -> Person | None:
        """An @mention (as typed), an email/UPN, or an AAD object id -> a member of this team or chat."""
        wanted = who.strip().lstrip("@").strip()
        activity = self.context.activity
        bot_id = activity.recipient.id if activity.recipient else None
        for entity in activity.entities or []:
            if entity.type != "mention":
                continue
            # Entity.serialize() drops a mention's fields: they live in additional_properties.
            mention = Mention().deserialize({"type": entity.type, **(entity.additional_properties or {})})
            mentioned = mention.mentioned
            text = re.sub(r"</?at>", "", mention.text or "").strip()
            if mentioned is None or mentioned.id == bot_id:
                continue
            if text.lower() == wanted.lower() or (mentioned.name or "").lower() == wanted.lower():
                return await self._member(mentioned.id)
        if _GUID.fullmatch(wanted):
            return await self._member(wanted)
        if "@" in wanted:
            return await self._by_email(wanted.lower())
        return None

    async def _member(self, member_id: str) -> Person | None:
        try:
            account = await TeamsInfo.get_member(self.context, member_id)
        except Exception as exc:
            log.info("member lookup failed: %s", type(exc).__name__)
            return None
        return await self._person(account)

    async def _by_email(self, email: str) -> Person | None:
        token = None
        for _ in range(50):  # a team of up to 50 pages of members
            page = await TeamsInfo.get_paged_members(self.context, continuation_token=token, page_size=500)
            for account in page.members or []:
                names = {(account.email or "").lower(), (account.user_principal_name or "").lower()}
                if email in names and account.aad_object_id:
                    return await self._person(account)
            token = page.continuation_token
            if not token:
                return None
        return None

    async def _person(self, account: Any) -> Person | None:
        """A roster entry as a Person, classified by the same rules as senders (it fails closed)."""
        member = Member.of(account)
        if member is None:
            return None
        tenant = (self._tenant() or "").lower() or None
        verdict = await self.identity.classify(member.aad_id, member, tenant=tenant)
        return Person(member.aad_id, member.name, member.tenant_id, verdict.kind.value)
