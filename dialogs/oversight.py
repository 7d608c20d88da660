"""/oversight here | rules | mute | unmute: where misuse alerts go, and the rules behind them (supervisors,
by the policy). The monitor itself is core/oversight/monitor.py, run by bot/oversight.py.

The commands read the rules the bot was started with, so the router is made for them (`router(rules)`).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

from pydantic import field_validator
from sqlmodel import Session

from core import text as safe
from core.outbox import service as outbox
from core.outbox.service import target_of
from core.oversight import service
from core.oversight.rules import Rules, duration, words
from core.rooms import service as rooms
from dialogs.context import CommandContext, Later, Reply
from dialogs.oversight_cards import rules_card, when
from dialogs.parsing import Args, NoArgs
from dialogs.registry import Router
from dialogs.text import Markdown, code, for_message, message_markdown

MUTE_MAX = timedelta(days=30)
ELSEWHERE = "Run /oversight here in a group chat or a channel that supervisors alone read."
NOT_HERE_PERSONAL = ("Alerts name people and what they did, supervisors included: a personal chat would "
                     f"leave them to one person. {ELSEWHERE}")  # fmt: skip
NOT_HERE_ROOM = ("This is an operation room's space, which its members and guests read, and alerts name "
                 f"people. {ELSEWHERE}")  # fmt: skip


class MuteArgs(Args):
    positional: ClassVar[tuple[str, ...]] = ("rule", "duration")
    rest: ClassVar[bool] = False
    labels: ClassVar[dict[str, str]] = {"reason": "TEXT"}
    private: ClassVar[frozenset[str]] = frozenset({"reason"})  # kept once, as the event's justification
    rule: str
    duration: str
    reason: str

    @field_validator("duration")
    @classmethod
    def _duration(cls, value: str) -> str:
        span = duration(value)  # its ValueError says what a duration looks like
        if span <= timedelta(0) or span > MUTE_MAX:
            raise ValueError("a mute lasts from a minute to 30 days (e.g. 2h, 1d, 30d)")
        return value.strip().lower()

    @field_validator("reason")
    @classmethod
    def _reason(cls, value: str) -> str:
        return _reason(value)


class UnmuteArgs(Args):
    positional: ClassVar[tuple[str, ...]] = ("rule",)
    rest: ClassVar[bool] = False
    labels: ClassVar[dict[str, str]] = {"reason": "TEXT"}
    private: ClassVar[frozenset[str]] = frozenset({"reason"})
    rule: str
    reason: str

    @field_validator("reason")
    @classmethod
    def _reason(cls, value: str) -> str:
        return _reason(value)


def _reason(value: str) -> str:
    """A reason, required: it is the audit event's justification."""
    if not value.strip():
        raise ValueError("say why (it is kept in the audit trail)")
    if len(value) > 500:
        raise ValueError("at most 500 characters")
    return value.strip()


def _refuse(ctx: CommandContext, text: str) -> Reply:
    """A refusal: text is shown literally unless it is `Markdown`."""
    ctx.note.outcome, ctx.note.detail = "refused", str(text)
    return Reply(text=for_message(text))


def _unknown(ctx: CommandContext, rules: Rules, rule_id: str) -> Reply | None:
    """The refusal for a rule id the bot does not run, listing those it does; None when it runs it."""
    if rules.get(rule_id) is not None:
        return None
    known = ", ".join(code(rule.id) for rule in rules.rules) or "none"
    shown = safe.clean(rule_id, 48) or ""
    return _refuse(ctx, Markdown(f"There is no rule {code(shown)}. The rules: {known}."))


def _tell_supervisors(session: Session, ctx: CommandContext, text: Markdown, now: datetime) -> None:
    """Tell the supervisors' conversation, unless the command was typed there (its reply says it)."""
    target = service.target(session)
    if target is None or target.conversation_id == (ctx.conversation.conversation_id or "").split(";", 1)[0]:
        return
    outbox.enqueue(session=session, kind="notice", reference=target.reference, now=now,
                   tenant_id=target.tenant_id, activity=Reply(text=text).activity())  # fmt: skip
    ctx.note.recipients = [*(ctx.note.recipients or []), target.conversation_id]


async def here(ctx: CommandContext) -> Reply | Later:
    conversation, principal, now = ctx.conversation, ctx.principal, ctx.now()
    if conversation.conversation_type == "personal":
        return _refuse(ctx, NOT_HERE_PERSONAL)
    current = conversation.conversation_id or ""
    if ctx.room is not None and rooms.in_space(ctx.room, current):
        return _refuse(ctx, NOT_HERE_ROOM)
    reference = ctx.teams.channel_reference()  # a channel: each alert starts a thread of its own there
    conversation_id, service_url, tenant = target_of(reference)
    by, who = principal.aad_id or "", safe.clean(principal.name or principal.aad_id, 120) or "a supervisor"

    def register(session: Session) -> Reply:
        before = service.target(session)
        if before is not None and before.conversation_id != conversation_id:
            moved = message_markdown("Misuse alerts now go to another conversation, registered there by "
                                     "{who}.", who=who)  # fmt: skip
            outbox.enqueue(session=session, kind="notice", reference=before.reference, now=now,
                           tenant_id=before.tenant_id, activity=Reply(text=moved).activity())  # fmt: skip
            ctx.note.recipients = [before.conversation_id]
        service.set_target(session, conversation_id=conversation_id, reference=reference, by_aad_id=by,
                           tenant_id=tenant or conversation.tenant_id, service_url=service_url,
                           now=now)  # fmt: skip
        previous = before.conversation_id if before is not None else None
        ctx.note.detail = f"alerts go to {conversation_id}" + (f", before {previous}" if previous else "")
        channel = conversation.conversation_type == "channel"
        where = "this channel, each as a thread of its own" if channel else "this chat"
        lines = [f"Misuse alerts will be posted in {where}."]
        if previous is not None and previous != conversation_id:
            lines.append("They no longer go to the conversation registered before, which has been told.")
        lines.append("Everyone here reads them, and they name people: keep this conversation to supervisors.")
        return Reply(text=" ".join(lines))

    return ctx.work.reply_from(register)


async def listing(ctx: CommandContext, rules: Rules) -> Reply:
    now = ctx.now()

    def read(session: Session) -> dict[str, Any]:
        return {"mutes": service.active_mutes(session, now=now), "target": service.target(session)}

    found = await ctx.db.run(read, readonly=True)
    return Reply(card=rules_card(rules, found["mutes"], found["target"], timezone=ctx.timezone))


async def mute(ctx: CommandContext, args: MuteArgs, rules: Rules) -> Reply | Later:
    rule_id = args.rule.lower()
    unknown = _unknown(ctx, rules, rule_id)
    if unknown is not None:
        return unknown
    principal, now = ctx.principal, ctx.now()
    until = now + duration(args.duration)
    shown_until = when(until, ZoneInfo(ctx.timezone))
    who = safe.clean(principal.name or principal.aad_id, 120) or "a supervisor"

    def write(session: Session) -> Reply:
        service.mute(session, rule=rule_id, until=until, by_aad_id=principal.aad_id or "",
                     by_name=principal.name, reason=args.reason, now=now)  # fmt: skip
        ctx.note.detail = f"{rule_id} muted for {args.duration}, until {until.isoformat()}"
        notice = message_markdown("{who} muted the rule {rule} until {until}: {reason}", who=who,
                                  rule=code(rule_id), until=shown_until, reason=args.reason)  # fmt: skip
        _tell_supervisors(session, ctx, notice, now)
        return Reply(text=message_markdown(
            "Muted {rule} for {span}, until {until}. Its alerts meanwhile are kept and audited, not posted. "
            "End it sooner: {unmute}.", rule=code(rule_id), span=words(until - now), until=shown_until,
            unmute=code(f"/oversight unmute {rule_id} --reason ...")))  # fmt: skip

    return ctx.work.reply_from(write)


async def unmute(ctx: CommandContext, args: UnmuteArgs, rules: Rules) -> Reply | Later:
    rule_id = args.rule.lower()
    unknown = _unknown(ctx, rules, rule_id)
    if unknown is not None:
        return unknown
    principal, now = ctx.principal, ctx.now()
    who = safe.clean(principal.name or principal.aad_id, 120) or "a supervisor"

    def write(session: Session) -> Reply:
        if not service.unmute(session, rule=rule_id, now=now):
            ctx.note.outcome, ctx.note.detail = "refused", f"{rule_id} was not muted"
            return Reply(text=message_markdown("The rule {rule} is not muted.", rule=code(rule_id)))
        ctx.note.detail = f"{rule_id} unmuted"
        notice = message_markdown("{who} ended the mute of the rule {rule}: {reason}", who=who,
                                  rule=code(rule_id), reason=args.reason)  # fmt: skip
        _tell_supervisors(session, ctx, notice, now)
        return Reply(text=message_markdown("The rule {rule} alerts again from now.", rule=code(rule_id)))

    return ctx.work.reply_from(write)


def router(rules: Rules) -> Router:
    """The /oversight commands, for the rules this bot runs."""
    commands = Router()

    @commands.command("oversight here", action="oversight.here", args=NoArgs)
    async def oversight_here(ctx: CommandContext, args: NoArgs) -> Reply | Later:
        """Send misuse alerts to this conversation (a group chat or channel that supervisors alone read).

        It replaces the conversation registered before, which is told. Not in a personal chat, nor in an
        operation room's thread or channel: alerts name people, supervisors included.
        """
        return await here(ctx)

    @commands.command("oversight rules", action="oversight.rules", args=NoArgs)
    async def oversight_rules(ctx: CommandContext, args: NoArgs) -> Reply:
        """List the misuse rules: what each looks for, its threshold, window and cooldown, and any mute."""
        return await listing(ctx, rules)

    @commands.command("oversight mute", action="oversight.mute", args=MuteArgs,
                      facts=("justification:reason",))  # fmt: skip
    async def oversight_mute(ctx: CommandContext, args: MuteArgs) -> Reply | Later:
        """Silence a rule for a while, with a reason: /oversight mute denial-burst 2h --reason exercise.

        At most 30 days (e.g. 30m, 2h, 1d). Its alerts meanwhile are kept and audited as muted, not posted;
        the supervisors' conversation is told.
        """
        return await mute(ctx, args, rules)

    @commands.command("oversight unmute", action="oversight.unmute", args=UnmuteArgs,
                      facts=("justification:reason",))  # fmt: skip
    async def oversight_unmute(ctx: CommandContext, args: UnmuteArgs) -> Reply | Later:
        """End a rule's mute now, with a reason: /oversight unmute denial-burst --reason exercise over."""
        return await unmute(ctx, args, rules)

    return commands
