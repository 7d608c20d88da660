"""/agency add | list | show: the partner agencies rooms share with."""

from __future__ import annotations

import re
from collections import defaultdict
from typing import ClassVar

from pydantic import field_validator
from sqlmodel import Session

from core.agencies import service
from core.rooms import service as rooms
from core.rooms.models import Room, RoomMember
from dialogs.audience import beyond_the_room
from dialogs.context import CommandContext, Later, Reply
from dialogs.facts import room_facts, visible
from dialogs.names import Who, nameable
from dialogs.parsing import Args, NoArgs
from dialogs.registry import Router
from dialogs.text import message_markdown

router = Router()

_KEY = re.compile(r"[a-z][a-z0-9-]{1,31}")
_DOMAIN = re.compile(r"(?=.{4,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}")
_GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_KEY_RULE = "2 to 32 lower-case letters, digits or hyphens, starting with a letter (e.g. social-care)"


def _items(value: str | None) -> tuple[str, ...]:
    return tuple(dict.fromkeys(part.strip().lower() for part in (value or "").split(",") if part.strip()))


class AddArgs(Args):
    positional: ClassVar[tuple[str, ...]] = ("key", "name")
    labels: ClassVar[dict[str, str]] = {"tenant": "ID[,ID]", "domain": "DOMAIN[,DOMAIN]"}
    key: str
    name: str
    tenant: str | None = None
    domain: str | None = None

    @field_validator("key")
    @classmethod
    def _key(cls, value: str) -> str:
        if not _KEY.fullmatch(value.strip().lower()):
            raise ValueError(f"an agency key is {_KEY_RULE}")
        return value.strip().lower()

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        value = " ".join(value.split())
        if not value or len(value) > 120:
            raise ValueError("a display name is 1 to 120 characters")
        return value

    @field_validator("domain")
    @classmethod
    def _domains(cls, value: str | None) -> str | None:
        bad = [d for d in _items(value) if not _DOMAIN.fullmatch(d)]
        if bad:
            raise ValueError(f"not an email domain: {', '.join(bad)} (e.g. nhs.net, leeds.gov.uk)")
        return value

    @field_validator("tenant")
    @classmethod
    def _tenants(cls, value: str | None) -> str | None:
        bad = [t for t in _items(value) if not _GUID.fullmatch(t)]
        if bad:
            raise ValueError(f"not a tenant id: {', '.join(bad)} (a GUID, from the agency's Entra admin)")
        return value


class ShowArgs(Args):
    positional: ClassVar[tuple[str, ...]] = ("key",)
    key: str


@router.command("agency add", action="agency.add", args=AddArgs)
async def agency_add(ctx: CommandContext, args: AddArgs) -> Later:
    """Register a partner agency: /agency add social-care Leeds Children's Social Care --domain leeds.gov.uk.

    Options: --domain DOMAIN[,DOMAIN] (its people's email domains: invitations must match one),
    --tenant ID[,ID] (its Entra tenant ids, when it has its own Microsoft 365). Supervisors only.
    """
    domains, tenants, now = _items(args.domain), _items(args.tenant), ctx.now()

    def add(session: Session) -> Reply:
        service.register(session, key=args.key, name=args.name, domains=domains, tenants=tenants,
                         by=ctx.principal.aad_id, now=now)  # fmt: skip
        where = ", ".join(domains) if domains else "no email domains yet"
        return Reply(text=message_markdown("Registered agency **{key}**: {name} ({where}).", key=args.key,
                                           name=args.name, where=where))  # fmt: skip

    return ctx.work.reply_from(add)


@router.command("agency list", action="agency.list")
async def agency_list(ctx: CommandContext, args: NoArgs) -> Reply:
    """List the registered partner agencies and their email domains."""
    found = await ctx.db.run(lambda s: service.registry(s), readonly=True)
    if not found:
        return Reply(text="No partner agencies are registered yet. A supervisor adds one with "
                          "`/agency add KEY NAME --domain DOMAIN`.")  # fmt: skip
    lines = ["Partner agencies:", ""]
    for entry in found:
        lines.append(message_markdown("- **{key}** {name} ({domains})", key=entry.agency.key,
                                      name=entry.agency.name,
                                      domains=", ".join(entry.domains) or "no domains"))  # fmt: skip
    return Reply(text="\n".join(lines))


@router.command("agency show", action="agency.list", args=ShowArgs)
async def agency_show(ctx: CommandContext, args: ShowArgs) -> Reply:
    """Show an agency: its domains and tenants, and who from it is in which of the rooms you can see.

    People are named as the policy lets you see them in each room; the rest are counted. In a room's own
    thread or channel, only rooms and people everyone there may see.
    """
    key, aad_id, team, now = args.key.strip().lower(), ctx.principal.aad_id or "", ctx.conversation.team_id, \
        ctx.now()  # fmt: skip

    def read(session: Session) -> tuple[list[service.Registered], list[tuple[Room, RoomMember]],
                                        list[tuple[Room, RoomMember | None]]]:  # fmt: skip
        return (service.registry(session, key), service.members(session, key),
                rooms.candidates(session=session, aad_id=aad_id, team_id=team, everything=True))  # fmt: skip

    found, members, candidates = await ctx.db.run(read, readonly=True)
    if not found:
        return Reply(text=message_markdown("There is no agency {key}. `/agency list` shows those registered.",
                                           key=key))  # fmt: skip
    entry = found[0]
    seen = {room.id for room in visible(lambda _p, requests: ctx.may_all(requests), ctx.principal, candidates,
                                        team_id=team, now=now)}  # fmt: skip
    here = await beyond_the_room(ctx, {m.aad_id: Who(m.role, m.agency, m.name) for _, m in members})
    if here is not None:  # read by everyone in this room
        seen &= here[0]
    mine = {room.id: room_facts(room, member, team_id=team, inside=False, now=now)
            for room, member in candidates if room.id in seen}  # fmt: skip
    by_room: dict[str, list[str]] = defaultdict(list)
    unnamed: dict[str, int] = defaultdict(int)
    for room, member in members:
        if room.id not in mine:
            continue
        who = {member.aad_id: Who(member.role, member.agency, member.name)}
        names = nameable(ctx.decide_many, ctx.principal, mine[room.id], who)
        if (names if here is None else names & here[1]).shows(member.aad_id):
            by_room[room.key].append(f"{member.name or member.aad_id} ({member.role.replace('_', ' ')})")
        else:
            unnamed[room.key] += 1
    for room_key, count in unnamed.items():
        by_room[room_key].append("1 person not named here" if count == 1 else
                                 f"{count} people not named here")  # fmt: skip
    lines: list[str] = [message_markdown("**{key}** {name}", key=entry.agency.key, name=entry.agency.name),
             message_markdown("Domains: {d}. Tenants: {t}.", d=", ".join(entry.domains) or "none",
                              t=", ".join(entry.tenants) or "none")]  # fmt: skip
    if not by_room:
        lines.append("Nobody from it is in a room you can see.")
    for room_key, people in sorted(by_room.items()):
        lines.append(message_markdown("- {room}: {people}", room=room_key, people="; ".join(people)))
    ctx.note.recipients = [ctx.conversation.conversation_id] if ctx.conversation.conversation_id else None
    return Reply(text="\n\n".join(lines[:2]) + "\n\n" + "\n".join(lines[2:]))
