"""/audit verify: check the audit chain from Teams, a lead's room or (supervisors) all of it."""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session

from core.audit import protection, service, signatures, signing
from core.audit.chain import VerifyResult
from core.audit.signatures import RoomReport
from dialogs import audit_export, audit_query
from dialogs.context import CommandContext, Reply
from dialogs.registry import Router
from dialogs.rooms import RoomArgs
from dialogs.text import code
from policies import Resource

router = Router()
router.include(audit_query.router)
router.include(audit_export.router)

REPORT_IT = "Report this to your information security team."
NO_KEY = "Signatures not checked: this instance has no signing key."


@dataclass(frozen=True)
class _Found:
    result: VerifyResult
    room: RoomReport | None
    guards: list[protection.Guard]


@router.command("audit verify", action="audit.verify", args=RoomArgs)
async def audit_verify(ctx: CommandContext, args: RoomArgs) -> Reply:
    """Check that the audit trail is complete, unaltered and signed by the bot.

    A room's lead checks their room's events; a supervisor the whole trail, or one room with --room.
    """
    signer = signing.attached(ctx.db.engine)
    keys = signer.keyring() if signer is not None else None
    # Who may verify with no room's facts may verify everything (the policy says who: supervisors).
    whole = args.room is None and ctx.may("audit.verify", Resource()).allowed
    room_key = None if whole or ctx.room is None else ctx.room.key
    if not whole and room_key is None:
        ctx.note.outcome = "refused"
        return Reply(text="Which room? Type it in the room's thread, or `/audit verify --room KEY`.")

    def _verify(session: Session) -> _Found:
        result = service.verify(session, keys=keys)
        if room_key is not None:
            return _Found(result, signatures.room_report(session, room_key, result), [])
        return _Found(result, None, protection.check(session))

    found = await ctx.db.run(_verify, readonly=True)
    if found.room is not None:
        return _room_reply(ctx, found.result, found.room, signed=keys is not None)
    return _whole_reply(ctx, found.result, found.guards, signed=keys is not None)


def _whole_reply(ctx: CommandContext, result: VerifyResult, guards: list[protection.Guard], *,
                 signed: bool) -> Reply:  # fmt: skip
    missing = [g.finding for g in guards if not g.ok]
    if not result.ok:
        ctx.note.detail = f"FAILED at seq {result.bad_seq}: {result.reason}"
        failed = f"**Audit trail check FAILED** at event {result.bad_seq}: {result.reason}."
        return Reply(text=f"{failed} {REPORT_IT}")
    ctx.note.detail = f"ok {result.count} events, head {result.head_hash}" + (
        f"; append-only protection missing: {'; '.join(missing)}" if missing else "")  # fmt: skip
    lines = [f"Audit trail verified: {result.count} events, head hash `{result.head_hash}`."]
    began = result.signing_began_after
    if not signed:
        lines.append(NO_KEY)
    else:
        after = f" after event {began}" if began else ""
        lines.append(f"Every event{after} is covered by a valid signature.")
        if began and result.head_seq:
            lines.append(f"{min(began, result.head_seq)} events written before signing began are covered by "
                         "the hash chain only.")  # fmt: skip
    if missing:
        lines.append(f"**Append-only protection missing**: {'; '.join(missing)}. {REPORT_IT}")
    return Reply(text="\n\n".join(lines))


def _room_reply(ctx: CommandContext, result: VerifyResult, report: RoomReport, *, signed: bool) -> Reply:
    key = report.room_key
    chain = "chain ok" if result.ok else f"chain FAILED at seq {result.bad_seq}: {result.reason}"
    ctx.note.detail = f"room {key}: {report.events} events, {report.vouched} vouched for; {chain}"
    if not report.ok:
        unvouched = report.events - report.vouched
        if report.first_unvouched == result.bad_seq:
            where = f"at its event {result.bad_seq}: {result.reason}"
        else:
            where = f"from its event {report.first_unvouched}: the trail is broken at an event outside it"
        return Reply(text=f"**Audit trail check FAILED** for room {code(key)} {where}. {unvouched} of its "
                          f"{report.events} events cannot be vouched for. {REPORT_IT}")  # fmt: skip
    covered = "intact and covered by a valid signature" if signed else "intact"
    lines = [f"Audit trail of room {code(key)} verified: {report.events} events, each {covered}."]
    if not signed:
        lines.append(NO_KEY)
    elif report.before_signing:
        lines.append(f"{report.before_signing} of them, written before signing began, are covered by the "
                     "hash chain only.")  # fmt: skip
    if not result.ok:
        lines.append(f"The wider audit trail has a fault after this room's events. {REPORT_IT}")
    return Reply(text="\n\n".join(lines))
