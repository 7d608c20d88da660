"""Who sent the activity: AAD object id + tenant -> officer, guest or supervisor."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from botbuilder.core import TurnContext
from botbuilder.core.teams import TeamsInfo
from botbuilder.schema import Activity

from bot.config import Settings
from bot.graph import GraphClient, GraphError
from dialogs.context import Conversation
from policies import Principal, PrincipalKind

log = logging.getLogger(__name__)


def conversation_of(activity: Activity) -> Conversation:
    """Tenant, team, channel and conversation ids.

    The tenant comes from channelData.tenant.id: the SDK's ConversationAccount
    drops Teams' `conversation.tenantId` on deserialisation.
    """
    data = activity.channel_data if isinstance(activity.channel_data, dict) else {}
    tenant = (data.get("tenant") or {}).get("id") or getattr(activity.conversation, "tenant_id", None)
    team = (data.get("team") or {}).get("id")
    channel = (data.get("channel") or {}).get("id")
    conv = activity.conversation
    return Conversation(
        tenant_id=tenant.lower() if isinstance(tenant, str) else None,
        team_id=team,
        channel_id=channel,
        conversation_id=conv.id if conv else None,
        conversation_type=conv.conversation_type if conv else None,
    )


@dataclass
class _Cached:
    role: str | None
    until: float


class Identity:
    """Resolves principals; asks Teams whether a member is a guest and Graph whether
    they are in a supervisors' group, both cached."""

    def __init__(self, settings: Settings, graph: GraphClient | None = None) -> None:
        self.settings = settings
        self.graph = graph
        self._roles: dict[tuple[str, str], _Cached] = {}
        self._supervisor: dict[str, tuple[bool, float]] = {}

    async def resolve(self, context: TurnContext, conversation: Conversation) -> Principal:
        """The principal behind an inbound activity."""
        activity = context.activity
        sender = activity.from_property
        aad_id = (getattr(sender, "aad_object_id", None) or "").lower() or None
        name = getattr(sender, "name", None)
        tenant = conversation.tenant_id
        if not aad_id or not tenant:
            return Principal(aad_id, tenant, PrincipalKind.ANONYMOUS, name, why="no AAD object id or tenant")
        home = self.settings.home_tenant_id
        if home and tenant != home:
            return Principal(aad_id, tenant, PrincipalKind.GUEST, name, why="sender's tenant is not ours")
        if activity.channel_id == "msteams":
            role = await self._member_role(context, aad_id)
            if role is None:
                return Principal(aad_id, tenant, PrincipalKind.GUEST, name, why="membership unknown")
            if role.lower() == "guest":
                return Principal(aad_id, tenant, PrincipalKind.GUEST, name, why="Teams reports a guest")
        if aad_id in self.settings.supervisors:
            return Principal(aad_id, tenant, PrincipalKind.SUPERVISOR, name, why="listed supervisor")
        if await self._in_supervisor_group(aad_id):
            return Principal(aad_id, tenant, PrincipalKind.SUPERVISOR, name, why="supervisors' group")
        return Principal(aad_id, tenant, PrincipalKind.OFFICER, name, why="member of our tenant")

    async def _in_supervisor_group(self, aad_id: str) -> bool:
        """Whether Graph says the user is in one of the configured ids (as groups); errors say no."""
        if self.graph is None or not self.settings.supervisors:
            return False
        now = time.monotonic()
        cached = self._supervisor.get(aad_id)
        if cached is not None and cached[1] > now:
            return cached[0]
        try:
            found = bool(await self.graph.member_groups(aad_id, self.settings.supervisors))
        except GraphError as exc:
            log.warning("supervisor group check failed (%s): treating as not a supervisor", exc.code)
            return False
        if len(self._supervisor) > 50_000:
            self._supervisor.clear()
        self._supervisor[aad_id] = (found, now + self.settings.member_cache_seconds)
        return found

    async def _member_role(self, context: TurnContext, aad_id: str) -> str | None:
        """Teams' userRole for the sender ('user', 'guest'); None when it cannot be told."""
        data = context.activity.channel_data if isinstance(context.activity.channel_data, dict) else {}
        scope = (data.get("team") or {}).get("id") or context.activity.conversation.id
        key = (scope, aad_id)
        now = time.monotonic()
        cached = self._roles.get(key)
        if cached is not None and cached.until > now:
            return cached.role
        try:
            member = await TeamsInfo.get_member(context, context.activity.from_property.id)
        except Exception as exc:  # the connector said no, or could not be reached
            log.warning("member lookup failed, treating the sender as a guest: %s", type(exc).__name__)
            return None
        role = getattr(member, "user_role", None) or "user"
        if len(self._roles) > 50_000:
            self._roles.clear()
        self._roles[key] = _Cached(role, now + self.settings.member_cache_seconds)
        return str(role)
