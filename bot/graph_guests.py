"""Letting partner-agency people into a room's team and channel through Microsoft Graph.

Graph application permissions this relies on (admin consent in the force's tenant):

* User.Read.All: find an existing guest account by email (GET /users?$filter=...).
* User.Invite.All: a B2B invitation for someone with no guest account yet (POST /invitations).
* TeamMember.ReadWrite.All: add the guest to the room's team (POST /teams/{id}/members).
  TeamMember.ReadWriteNonOwnerRole.All is the documented least-privileged alternative: guests are never
  owners.
* ChannelMember.ReadWrite.All: add them to the room's private channel, or the agency's own user to its
  shared channel (POST /teams/{id}/channels/{id}/members); when their access ends, find them among the
  channel's members and take them out (GET .../members, DELETE .../members/{membership id}).

A shared channel also needs B2B direct connect allowed with the agency's tenant in both organisations'
cross-tenant access settings: an Entra admin setting, not a Graph permission.

Throttling (429 with Retry-After, 503) is retried by GraphClient._send for every call made here: Graph
allows 150 invitations per 5 s per tenant, and about 4 channel writes a second for one team.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote

from bot.graph import _BIND_BASE, GraphClient, GraphError, _segment
from dialogs.context import GuestAccess

__all__ = [
    "DirectoryUser",
    "add_channel_member",
    "add_external_channel_member",
    "add_team_member",
    "admit_guest",
    "find_user_by_email",
    "invite_guest",
    "remove_channel_member",
    "remove_guest",
]

log = logging.getLogger(__name__)

INVITE_REDIRECT_URL = "https://teams.microsoft.com"
SPACE_KINDS = frozenset({"thread", "private", "shared"})
NO_TENANT = (
    "a shared channel takes people from the agency's own Microsoft 365 tenant: register its tenant id "
    "(/agency add ... --tenant ID) or use a private channel"
)
_MEMBER_TYPE = "#microsoft.graph.aadUserConversationMember"
_MAX_MESSAGE = 200

Added = Literal["added", "already"]
Taken = Literal["removed", "absent"]


@dataclass(frozen=True)
class DirectoryUser:
    """A user in the force's directory, as far as letting them in needs to know."""

    id: str
    user_type: str  # Graph's "Guest" or "Member"

    @property
    def guest(self) -> bool:
        """A B2B guest (anything but a member of the force's own organisation)."""
        return self.user_type.lower() != "member"


# ---------------------------------------------------------------------- Graph calls


async def find_user_by_email(graph: GraphClient, email: str) -> DirectoryUser | None:
    """The account in the force's directory whose mail or other mails is this address (a guest first)."""
    key = _address(email).replace("'", "''")  # an OData string literal doubles its quotes
    condition = f"mail eq '{key}' or otherMails/any(x:x eq '{key}')"
    # A lambda on otherMails combined with `or` is an advanced query: Graph wants ConsistencyLevel: eventual
    # and $count=true with it (https://learn.microsoft.com/graph/aad-advanced-queries).
    path = f"/users?$filter={quote(condition, safe='')}&$count=true&$select=id,userType,mail"
    body = (await graph._call("GET", path, headers={"ConsistencyLevel": "eventual"})).body
    users = [u for u in (body.get("value") if isinstance(body, dict) else None) or [] if u.get("id")]
    users.sort(key=lambda u: str(u.get("userType") or "").lower() == "member")  # guests first, stable
    if not users:
        return None
    return DirectoryUser(str(users[0]["id"]), str(users[0].get("userType") or "Guest"))


async def invite_guest(graph: GraphClient, email: str) -> str:
    """Invite someone as a B2B guest (Graph emails them); returns the new guest account's object id.
    Inviting an address that already has a guest account answers with that account."""
    payload = {
        "invitedUserEmailAddress": _address(email),
        "inviteRedirectUrl": INVITE_REDIRECT_URL,
        "sendInvitationMessage": True,
        "invitedUserType": "Guest",
    }
    resp = await graph._call("POST", "/invitations", payload)
    invited = resp.body.get("invitedUser") if isinstance(resp.body, dict) else None
    user_id = invited.get("id") if isinstance(invited, dict) else None
    if not user_id:
        raise GraphError(resp.status, "invitation_incomplete", "the invitation named no guest account")
    return str(user_id)


async def add_team_member(graph: GraphClient, *, team_id: str, user_id: str, guest: bool = True) -> Added:
    """Add a user to a team (its group id), with the guest role for a guest."""
    member = _member(f"users('{uuid.UUID(user_id)}')", ["guest"] if guest else [])
    return await _add(graph, f"/teams/{_segment(team_id)}/members", member)


async def add_channel_member(graph: GraphClient, *, team_id: str, channel_id: str, user_id: str) -> Added:
    """Add a member of the team to one of its private channels (no role: guests cannot own one)."""
    member = _member(f"users('{uuid.UUID(user_id)}')", [])
    return await _add(graph, _channel_members(team_id, channel_id), member)


async def add_external_channel_member(
    graph: GraphClient, *, team_id: str, channel_id: str, upn: str, tenant_id: str
) -> Added:
    """Add a user of another organisation's tenant to a shared channel (B2B direct connect).

    Graph's "Add member to channel" (https://learn.microsoft.com/graph/api/channel-post-members, v1.0)
    documents a user of a different tenant added to a shared channel with "tenantId" beside the bind to
    their object id in that tenant (example 5), and a bind by user principal name for a user "of the same
    or a different tenant" (example 6). We do not know their object id over there, so we bind by name and
    say which tenant to resolve it in.
    """
    member = {**_member(f"users('{_bind_key(upn)}')", []), "tenantId": str(uuid.UUID(tenant_id))}
    return await _add(graph, _channel_members(team_id, channel_id), member)


async def remove_channel_member(
    graph: GraphClient, *, team_id: str, channel_id: str, user_ids: Sequence[str], email: str | None = None
) -> Taken:
    """Take someone out of a private or shared channel (not out of the team): the member whose userId is
    one of user_ids or, failing that, whose email is this address. `absent`: they were not a member, or
    their membership went before the DELETE did (404)."""
    path = _channel_members(team_id, channel_id)
    wanted = {u.lower() for u in user_ids}
    address = (email or "").strip().lower()
    page: str | None = path
    by_email: str | None = None
    while page:
        body = (await graph._call("GET", page)).body
        body = body if isinstance(body, dict) else {}
        for member in body.get("value") or []:
            if str(member.get("userId") or "").lower() in wanted:
                return await _delete_member(graph, path, str(member["id"]))
            if address and by_email is None and str(member.get("email") or "").lower() == address:
                by_email = str(member["id"])
        following = str(body.get("@odata.nextLink") or "")
        # Only follow a next page on the Graph we were configured with: it carries our token.
        page = following if following.startswith(graph.config.graph_url + "/") else None
    return "absent" if by_email is None else await _delete_member(graph, path, by_email)


async def _delete_member(graph: GraphClient, path: str, membership_id: str) -> Taken:
    try:
        await graph._call("DELETE", f"{path}/{_segment(membership_id)}")
    except GraphError as exc:
        if exc.status == 404:
            return "absent"
        raise
    return "removed"


@dataclass(frozen=True)
class GuestRemoval:
    """How taking one person out of a room's channel went: removed, absent, or the problem (plain words)."""

    outcome: Taken | None
    detail: str


async def remove_guest(
    graph: GraphClient, *, group_id: str, channel_id: str, user_ids: Sequence[str], email: str
) -> GuestRemoval:
    """Take someone whose access ended out of a room's private or shared channel; what Graph refuses comes
    back as the problem (outcome None), never as an exception. A channel that is gone has nobody to take
    out."""
    try:
        taken = await remove_channel_member(graph, team_id=group_id, channel_id=channel_id, user_ids=user_ids,
                                            email=email)  # fmt: skip
    except GraphError as exc:
        if exc.status == 404:
            return GuestRemoval("absent", "the room's channel is gone")
        log.warning("graph refused taking a guest out of a channel: %s", exc)
        return GuestRemoval(None, _refusal(exc, "removal"))
    words = "taken out of the room's channel" if taken == "removed" else "not in the room's channel"
    return GuestRemoval(taken, words)


# ---------------------------------------------------------------------- the whole admission


async def admit_guest(
    graph: GraphClient,
    *,
    email: str,
    agency_tenants: Sequence[str],
    group_id: str,
    channel_id: str | None,
    space_kind: str,
) -> GuestAccess:
    """Let an invited person into a room's space; every refusal from Graph comes back as the `problem`,
    with the steps completed before it in `done`. Raises only for bad arguments (ValueError).

    thread: their guest account (found or invited) joins the team, which sees every thread in its
    standard channels. private: the same, then the private channel. shared: the agency's own tenant user
    joins the channel by B2B direct connect (a guest account cannot join a shared channel).
    """
    if space_kind not in SPACE_KINDS:
        raise ValueError(f"space_kind must be thread, private or shared, not {space_kind!r}")
    email = _address(email)
    if space_kind == "shared":
        return await _direct_connect(graph, email, agency_tenants, group_id, channel_id)
    if space_kind == "private" and not channel_id:
        return GuestAccess(email, problem="the room's private channel is not known: add them to it in Teams")
    done: list[str] = []
    user_id: str | None = None
    step = "lookup"
    try:
        account = await find_user_by_email(graph, email)
        if account is None:
            step = "invitation"
            account = DirectoryUser(await invite_guest(graph, email), "Guest")
            done.append("invited (B2B)")
        elif account.guest:
            done.append("guest account found")
        else:
            done.append("account found (a member of this organisation, not a guest)")
        user_id = account.id
        step = "team"
        added = await add_team_member(graph, team_id=group_id, user_id=account.id, guest=account.guest)
        if space_kind == "thread":
            done.append(f"{_team_words(added)}, which sees every thread in its standard channels "
                        "(a private channel room is advised)")  # fmt: skip
            return GuestAccess(email, tuple(done), None, user_id)
        done.append(_team_words(added))
        step = "private channel"
        assert channel_id is not None  # checked above
        added = await add_channel_member(graph, team_id=group_id, channel_id=channel_id, user_id=account.id)
        done.append("added to the private channel" if added == "added" else "already in the private channel")
    except GraphError as exc:
        log.warning("graph refused the %s step of letting a guest in: %s", step, exc)
        return GuestAccess(email, tuple(done), _refusal(exc, step), user_id)
    return GuestAccess(email, tuple(done), None, user_id)


async def _direct_connect(
    graph: GraphClient, email: str, tenants: Sequence[str], group_id: str, channel_id: str | None
) -> GuestAccess:
    """The agency's own user into a shared channel: each registered tenant in turn, until one has them."""
    if not tenants:
        return GuestAccess(email, problem=NO_TENANT)
    if not channel_id:
        return GuestAccess(email, problem="the room's shared channel is not known: add them to it in Teams")
    for tenant in tenants:
        try:
            added = await add_external_channel_member(
                graph, team_id=group_id, channel_id=channel_id, upn=email, tenant_id=tenant
            )
        except GraphError as exc:
            if exc.status == 404:  # not a user of this tenant: an agency may have several
                continue
            log.warning("graph refused an external member of a shared channel: %s", exc)
            return GuestAccess(email, problem=_refusal(exc, "shared channel"))
        words = "added to the shared channel" if added == "added" else "already in the shared channel"
        return GuestAccess(email, (words,))
    where = "tenant has" if len(tenants) == 1 else f"{len(tenants)} tenants have"
    problem = (f"the agency's registered {where} no user {email} (it must be their sign-in name there): "
               "check the address, or use a private channel")  # fmt: skip
    return GuestAccess(email, problem=problem)


# ---------------------------------------------------------------------- helpers

_WHAT = {
    "lookup": ("the directory lookup", "the app needs User.Read.All"),
    "invitation": ("the invitation", "the app needs User.Invite.All"),
    "team": ("adding them to the team", "the app needs TeamMember.ReadWrite.All"),
    "private channel": ("adding them to the private channel", "the app needs ChannelMember.ReadWrite.All"),
    "removal": ("taking them out of the room's channel", "the app needs ChannelMember.ReadWrite.All"),
    "shared channel": (
        "adding them to the shared channel",
        "the app needs ChannelMember.ReadWrite.All, and both organisations' cross-tenant access settings "
        "must allow B2B direct connect with each other",
    ),
}


def _refusal(exc: GraphError, step: str) -> str:
    """What to tell the room lead when Graph refused a step: plain words, Graph's code, no secrets."""
    what, permission = _WHAT[step]
    if exc.status == 0:
        return f"Microsoft Graph could not be reached ({what} was not done); try again in a few minutes"
    if exc.status in (429, 503):
        return f"Microsoft Graph is too busy just now ({what} was not done); try again in a few minutes"
    if exc.status >= 500:
        return f"Microsoft Graph is not answering just now ({what} was not done); try again in a few minutes"
    refused = f"Graph refused {what} ({exc.status} {exc.code})"
    if exc.status == 401:
        return f"{refused}: Opsroom could not sign in to Microsoft Graph (check its app credentials)"
    if exc.status == 403:
        return f"{refused}: {permission}"
    if exc.status == 404 and step in ("team", "private channel"):
        return (f"{refused}: Teams does not see the account yet (a new guest can take a few minutes to "
                "appear) or it is blocked; try again later")  # fmt: skip
    detail = " ".join(exc.message.split())[:_MAX_MESSAGE]
    return f"{refused}: {detail}" if detail else refused


def _team_words(added: Added) -> str:
    return "added to the team" if added == "added" else "already in the team"


async def _add(graph: GraphClient, path: str, member: dict[str, Any]) -> Added:
    """POST a conversation member; one that is already there counts as done."""
    try:
        await graph._call("POST", path, member)
    except GraphError as exc:
        if exc.status == 409 or (exc.status == 400 and "already" in exc.message.lower()):
            return "already"
        raise
    return "added"


def _member(user: str, roles: list[str]) -> dict[str, Any]:
    return {"@odata.type": _MEMBER_TYPE, "roles": roles, "user@odata.bind": f"{_BIND_BASE}/{user}"}


def _channel_members(team_id: str, channel_id: str) -> str:
    return f"/teams/{_segment(team_id)}/channels/{_segment(channel_id)}/members"


def _address(email: str) -> str:
    """An email address as Graph should see it; anything else is a caller's mistake."""
    cleaned = email.strip()
    if cleaned.count("@") != 1 or not cleaned.isprintable() or any(c.isspace() for c in cleaned):
        raise ValueError("not an email address")
    return cleaned


def _bind_key(upn: str) -> str:
    """A user principal name as the key in a bind URL: quotes doubled (OData), the rest kept out of URL
    syntax (a % or / in an address cannot reach another resource)."""
    return quote(_address(upn).replace("'", "''"), safe="@'+")
