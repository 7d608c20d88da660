"""/audit verify: check the audit chain from Teams."""

from __future__ import annotations

from sqlmodel import Session

from core.audit import service
from core.audit.chain import VerifyResult
from dialogs.context import CommandContext, Reply
from dialogs.registry import Router

router = Router()


@router.command("audit verify", action="audit.verify")
async def audit_verify(ctx: CommandContext, args: object) -> Reply:
    """Check that the audit trail is complete and unaltered."""

    def _verify(session: Session) -> VerifyResult:
        return service.verify(session)

    result = await ctx.db.run(_verify, readonly=True)
    if result.ok:
        ctx.note.detail = f"ok {result.count} events, head {result.head_hash}"
        return Reply(
            text=f"Audit trail verified: {result.count} events, head hash `{result.head_hash}`."
        )
    ctx.note.detail = f"FAILED at seq {result.bad_seq}: {result.reason}"
    return Reply(
        text=f"**Audit trail check FAILED** at event {result.bad_seq}: {result.reason}. "
        "Report this to your information security team."
    )
