"""Who sent the activity: AAD object id + tenant -> officer, guest or supervisor. It fails closed.

An officer is affirmatively a member of the force; everyone else is a guest. In a
force's own team a partner's B2B guest account sends activities carrying the
force's tenant, and Teams may report its roster `userRole` as "user", so neither
the activity's tenant nor the role proves anything on its own:

* with Microsoft Graph configured, Graph's `userType` must be "Member";
* without Graph, the sender's roster entry must be in the home tenant, have no
  `#EXT#` in its UPN, not be reported as a guest, and its UPN or email must be in
  one of the force's domains (OPSROOM_HOME_DOMAINS).

A lookup that fails makes the sender a guest for that request (it is not cached).
Why someone was classed as they were travels with the principal into the audit event.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from botbuilder.core import TurnContext
from botbuilder.core.teams import TeamsInfo
from botbuilder.schema import Activity

from bot.config import Settings
from bot.graph import GraphClient, GraphError
from core.invitations import service as invitations
from dialogs.context import Conversation
from policies import Principal, PrincipalKind

log = logging.getLogger(__name__)

OFFICER, GUEST = PrincipalKind.OFFICER, PrincipalKind.GUEST
_CACHE_LIMIT = 50_000


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def conversation_of(activity: Activity) -> Conversation:
    """Tenant, team, channel and conversation ids.

    The tenant comes from channelData.tenant.id: the SDK's ConversationAccount
    drops Teams' `conversation.tenantId` on deserialisation.
    """
    data = _obj(activity.channel_data)
    tenant = _obj(data.get("tenant")).get("id") or getattr(activity.conversation, "tenant_id", None)
    team = _obj(data.get("team")).get("id")
    channel = _obj(data.get("channel")).get("id")
    conv = activity.conversation
    return Conversation(
        tenant_id=tenant.lower() if isinstance(tenant, str) else None,
        team_id=team if isinstance(team, str) else None,
        channel_id=channel if isinstance(channel, str) else None,
        conversation_id=conv.id if conv else None,
        conversation_type=conv.conversation_type if conv else None,
    )


@dataclass(frozen=True)
class Member:
    """What the Teams roster says of someone (any field may be missing)."""

    aad_id: str
    name: str | None = None
    tenant_id: str | None = None
    upn: str | None = None
    email: str | None = None
    role: str | None = None  # Teams' userRole: "user", "guest" (unreliable for B2B guests)

    @classmethod
    def of(cls, account: Any) -> Member | None:
        """From a TeamsChannelAccount; None when it has no AAD object id."""
        aad_id = getattr(account, "aad_object_id", None)
        if not aad_id:
            return None

        def text(name: str) -> str | None:
            value = getattr(account, name, None)
            return value.strip() if isinstance(value, str) and value.strip() else None

        tenant = text("tenant_id")
        return cls(str(aad_id).lower(), text("name"), tenant.lower() if tenant else None,
                   text("user_principal_name"), text("email"), text("user_role"))  # fmt: skip


@dataclass(frozen=True)
class Verdict:
    """A kind and the reason for it (recorded in the audit event)."""

    kind: PrincipalKind
    why: str


@dataclass
class _Cached:
    value: Any
    until: float


class Identity:
    """Resolves principals and classifies people named in commands, with the same rules."""

    def __init__(self, settings: Settings, graph: GraphClient | None = None) -> None:
        self.settings = settings
        self.graph = graph
        self._members: dict[tuple[str, str], _Cached] = {}
        self._graph_users: dict[str, _Cached] = {}
        self._groups: dict[tuple[str, str], _Cached] = {}

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
            return Principal(aad_id, tenant, GUEST, name, why="the activity's tenant is not the force's")
        member: Member | None = None
        if self.graph is None:  # the roster is the only witness without Graph
            if activity.channel_id != "msteams":
                return Principal(aad_id, tenant, GUEST, name, why="not a Teams channel: membership unknown")
            member = await self._roster(context, aad_id)
            if member is None:
                return Principal(aad_id, tenant, GUEST, name, why="Teams member lookup failed")
        verdict = await self.classify(aad_id, member, tenant=tenant)
        return Principal(aad_id, tenant, verdict.kind, name, why=verdict.why)

    async def classify(self, aad_id: str, member: Member | None, *, tenant: str | None) -> Verdict:
        """Officer, supervisor or guest, for a sender or for someone a command names."""
        verdict = await self._force_member(aad_id, member, tenant=tenant)
        if verdict is not None:
            return verdict
        if aad_id in self.settings.supervisors:
            return Verdict(PrincipalKind.SUPERVISOR, "listed supervisor")
        supervisor_groups = self.settings.supervisors
        if self.graph is not None and supervisor_groups and await self._in_groups(aad_id, supervisor_groups):
            return Verdict(PrincipalKind.SUPERVISOR, "in a supervisors' group")
        group = self.settings.officers_group
        if group and not await self._in_groups(aad_id, frozenset({group})):
            return Verdict(GUEST, "a member of the force but not in the officers' group")
        return Verdict(OFFICER, "member of the force" + (" (Graph userType Member)" if self.graph else ""))

    async def _force_member(
        self, aad_id: str, member: Member | None, *, tenant: str | None
    ) -> Verdict | None:
        """None when affirmatively a member of the force; else the guest verdict saying why not."""
        if self.graph is not None:
            user = await self._graph_user(aad_id)
            if user is None:
                return Verdict(GUEST, "Graph could not confirm the user in the force's tenant")
            user_type = str(user.get("userType") or "")
            if user_type != "Member":
                return Verdict(GUEST, f"Graph userType is {user_type or 'missing'}")
            return None
        if member is None:
            return Verdict(GUEST, "membership unknown")
        home = self.settings.home_tenant_id or tenant
        if not member.tenant_id or member.tenant_id != home:
            return Verdict(GUEST, "the member's own tenant is not the force's")
        if (member.role or "").lower() == "guest":
            return Verdict(GUEST, "Teams reports a guest")
        upn = (member.upn or "").lower()
        if "#ext#" in upn:
            return Verdict(GUEST, "B2B guest account (#EXT# in the UPN)")
        domains = self.settings.home_domains
        if not domains:
            return Verdict(GUEST, "OPSROOM_HOME_DOMAINS is not set, so no one can be confirmed an officer")
        addresses = [a for a in (upn, (member.email or "").lower()) if "@" in a]
        if not any(a.rsplit("@", 1)[1] in domains for a in addresses):
            return Verdict(GUEST, "UPN and email are outside the force's domains")
        return None

    async def addresses(self, context: TurnContext, aad_id: str) -> tuple[str, ...]:
        """The sender's email addresses as Entra or the Teams roster give them (a B2B guest's `#EXT#` UPN
        read back as their own address), for matching an invitation; empty when neither can say."""
        if self.graph is not None:
            user = await self._graph_user(aad_id)
            if user:
                found = invitations.addresses(str(user.get("mail") or ""),
                                              str(user.get("userPrincipalName") or ""))  # fmt: skip
                if found:
                    return found
        member = await self._roster(context, aad_id)
        return invitations.addresses(member.email, member.upn) if member is not None else ()

    # -- lookups, cached ---------------------------------------------------------------------------

    def _fresh(self, cache: dict[Any, _Cached], key: Any) -> _Cached | None:
        found = cache.get(key)
        return found if found is not None and found.until > time.monotonic() else None

    def _keep(self, cache: dict[Any, _Cached], key: Any, value: Any) -> None:
        if len(cache) > _CACHE_LIMIT:
            cache.clear()
        cache[key] = _Cached(value, time.monotonic() + self.settings.member_cache_seconds)

    async def _roster(self, context: TurnContext, aad_id: str) -> Member | None:
        """The sender's roster entry in this team or chat; None when Teams cannot say."""
        data = _obj(context.activity.channel_data)
        scope = _obj(data.get("team")).get("id") or context.activity.conversation.id
        key = (str(scope), aad_id)
        cached = self._fresh(self._members, key)
        if cached is not None:
            return cached.value  # type: ignore[no-any-return]
        try:
            account = await TeamsInfo.get_member(context, context.activity.from_property.id)
        except Exception as exc:  # the connector said no, or could not be reached
            log.warning("member lookup failed, treating the sender as a guest: %s: %s",
                        type(exc).__name__, exc)  # fmt: skip
            return None
        member = Member.of(account)
        if member is None or member.aad_id != aad_id:
            log.warning("member lookup answered for someone else: treating the sender as a guest")
            return None
        self._keep(self._members, key, member)
        return member

    async def _graph_user(self, aad_id: str) -> dict[str, Any] | None:
        assert self.graph is not None
        cached = self._fresh(self._graph_users, aad_id)
        if cached is not None:
            return cached.value  # type: ignore[no-any-return]
        try:
            user = await self.graph.user(aad_id)
        except GraphError as exc:
            if exc.status == 404:  # not in the force's directory at all: a fact worth keeping
                self._keep(self._graph_users, aad_id, None)
            log.warning("Graph user lookup failed (%s): treating as a guest", exc.code)
            return None
        self._keep(self._graph_users, aad_id, user)
        return user

    async def _in_groups(self, aad_id: str, groups: frozenset[str]) -> bool:
        """Whether Graph says the user is in one of these groups; errors (not cached) say no."""
        if self.graph is None:
            return False
        key = (aad_id, ",".join(sorted(groups)))
        cached = self._fresh(self._groups, key)
        if cached is not None:
            return bool(cached.value)
        try:
            found = bool(await self.graph.member_groups(aad_id, groups))
        except GraphError as exc:
            log.warning("group check failed (%s): treating as not in the group", exc.code)
            return False
        self._keep(self._groups, key, found)
        return found
