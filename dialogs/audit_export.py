"""/audit export in Teams: the audit trail as a file for named recipients, a recorded disclosure.

A supervisor asks in their personal chat with Opsroom. The bot counts and hashes what the file will hold
(the events up to the head at that moment: the file is fixed from then on) and offers it with a
FileConsentCard. Teams asks them where to save it; their answer comes back as a `fileConsent/invoke`,
which bot/routing.py turns into CONSENT (a command no one can type: only Teams' answer carries the
upload address). On accept the file is written again from the same events, checked against the hash,
recorded as being handed over (a step of its own, before any byte leaves), uploaded, and recorded as a
disclosure: reason, recipients, filters, rows, SHA-256. A decline is recorded too.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any, ClassVar

from sqlmodel import Session

from core.audit import export, filters, service
from core.audit.filters import AuditFilter
from core.audit.models import Actor, AuditExport
from dialogs.audit_args import ExportArgs
from dialogs.audit_query import Unresolved, owned, resolve
from dialogs.context import CommandContext, Later, Reply, UploadFailed
from dialogs.parsing import Args
from dialogs.registry import Command, Router
from dialogs.text import code, escape_message

router = Router()

FILE_CONSENT = "application/vnd.microsoft.teams.card.file.consent"
FILE_INFO = "application/vnd.microsoft.teams.card.file.info"
TEAMS_MAX_ROWS = 200_000
"""A larger export is for the command line on the server (`python -m bot audit export`): writing it twice
inside a Teams turn would outlast Teams' patience."""
PERSONAL_ONLY = ("An export is a file for you alone, so it is made only in your personal chat with Opsroom: "
                 "ask there.")  # fmt: skip


class _Discard:
    """A file that keeps nothing: to count and hash what an export will hold."""

    def write(self, data: bytes) -> int:
        return len(data)


class _TooMany(Exception):
    pass


def _capped(rows: Any, cap: int) -> Any:
    for count, row in enumerate(rows, 1):
        if count > cap:
            raise _TooMany
        yield row


@router.command("audit export", action="audit.export", args=ExportArgs, facts=("justification:reason",))
async def audit_export(ctx: CommandContext, args: ExportArgs) -> Reply | Later:
    """Export the audit trail as a file (CSV or JSON lines) for named recipients: a recorded disclosure.

    Supervisors, in their personal chat with Opsroom. `--reason` and `--recipient` are required (several
    recipients separated by `;`); the filters are those of `/audit`. Teams asks where to save the file.
    """
    if ctx.conversation.conversation_type != "personal" or ctx.conversation.conversation_id is None:
        ctx.note.outcome = "refused"
        return Reply(text=PERSONAL_ONLY)
    try:
        reason, recipients = export.request(args.reason, args.recipients())
        search = await resolve(ctx, args)
    except (ValueError, Unresolved) as exc:
        ctx.note.outcome, ctx.note.detail = "refused", "incomplete request"
        usage = "/audit export [filters] --reason TEXT --recipient WHO [--format csv|jsonl]"
        return Reply(text=f"{escape_message(str(exc))}\n\nUsage: **{escape_message(usage)}**")
    f, fmt = search.filter, args.format
    own = owned(ctx, f)
    ctx.note.arguments.update({"own": own} if own else {})

    def measure(session: Session) -> tuple[int, export.Written]:
        upto = service.head(session).seq
        rows = _capped(filters.rows(session, f, upto=upto), TEAMS_MAX_ROWS)
        return upto, export.write(rows, _Discard(), fmt)  # type: ignore[arg-type]

    try:
        upto, measured = await ctx.db.run(measure, readonly=True)
    except _TooMany:
        ctx.note.outcome, ctx.note.detail = "refused", f"over {TEAMS_MAX_ROWS} events"
        return Reply(text=f"That is more than {TEAMS_MAX_ROWS:,} events: narrow it (`--since`, `--room`), or "
                          "have the server's operators run `python -m bot audit export`.")  # fmt: skip
    if measured.rows == 0:
        ctx.note.outcome, ctx.note.detail = "refused", "no events match"
        return Reply(text="No events match: there is nothing to export.")
    principal, chat, now = ctx.principal, ctx.conversation.conversation_id, ctx.now()
    ctx.note.arguments.update({**f.to_json(), "format": fmt, "upto_seq": upto, "rows": measured.rows,
                               "sha256": measured.sha256, "recipients": recipients})  # fmt: skip
    ctx.note.outcome = "offered"
    ctx.note.detail = f"offered {measured.rows} rows, SHA-256 {measured.sha256}, {fmt.upper()}"

    def offer(session: Session) -> Reply:
        row = AuditExport(requested_at=now, requested_by=(principal.aad_id or "").lower(),
                          requested_tenant=principal.tenant_id, requested_name=principal.name,
                          conversation_id=chat, reason=reason, recipients=json.dumps(recipients),
                          filters=json.dumps(f.to_json()), format=fmt, upto_seq=upto, state="offered",
                          file_name="", rows=measured.rows, size=measured.size,
                          sha256=measured.sha256)  # fmt: skip
        session.add(row)
        session.flush()
        row.file_name = f"opsroom-audit-{now:%Y%m%d-%H%M}-{row.id}.{fmt}"
        session.flush()
        ctx.note.arguments["file"] = row.file_name
        return Reply(text=_offer_text(row, recipients), attachment=consent_card(row, recipients))

    return ctx.work.reply_from(offer)


def _offer_text(row: AuditExport, recipients: list[str]) -> str:
    return (f"Export of {row.rows:,} audit events for {escape_message('; '.join(recipients))}. "
            "Choose **Allow** to save it to your OneDrive; the hand-over is recorded with its reason, "
            "recipients and the file's SHA-256.")  # fmt: skip


def consent_card(row: AuditExport, recipients: list[str]) -> dict[str, Any]:
    """The FileConsentCard attachment offering the export (its contexts name it; nothing else)."""
    about = f"Opsroom audit export: {row.rows} events for {'; '.join(recipients)}. Reason: {row.reason}"
    context = {"export": row.id}
    return {"contentType": FILE_CONSENT, "name": row.file_name,
            "content": {"description": about[:1000], "sizeInBytes": row.size,
                        "acceptContext": context, "declineContext": context}}  # fmt: skip


class ConsentArgs(Args):
    """A file consent answer, as bot/routing.py reads it from the invoke (never typed)."""

    rest: ClassVar[bool] = False
    positional: ClassVar[tuple[str, ...]] = ("export",)
    export: int
    accept: bool = False
    upload_url: str | None = None
    content_url: str | None = None
    name: str | None = None
    unique_id: str | None = None
    file_type: str | None = None


async def answer(ctx: CommandContext, args: ConsentArgs) -> Reply:
    """Deliver or drop an export offered with a FileConsentCard (Teams' answer to it)."""
    row = ctx.facts.export
    assert row is not None and row.id is not None  # the export loader found it, theirs and on offer
    f, recipients = AuditFilter.from_json(json.loads(row.filters)), json.loads(row.recipients)
    fmt = row.format
    export_id = row.id

    def record(draft: Any, state: str) -> None:
        ctx.note.outcome, ctx.note.detail = draft.outcome, draft.detail
        ctx.note.recipients, ctx.note.arguments = draft.recipients, {**draft.arguments, "export": export_id}
        ctx.work.stage(lambda s: _mark(s, export_id, state, ctx))

    base = {"actor": Actor(), "reason": row.reason, "recipients": recipients, "audit_filter": f,
            "fmt": fmt, "upto_seq": row.upto_seq, "file_name": row.file_name}  # fmt: skip
    if not args.accept or not args.upload_url:
        record(export.disclosure(**base, outcome="declined", detail="declined in Teams: nothing was sent"),
               "declined")  # fmt: skip
        return Reply(text=f"Export {code(row.file_name)} declined: nothing was sent. The decline is "
                          "recorded.")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="opsroom-export-") as folder:
        path = Path(folder) / row.file_name

        def write(session: Session) -> export.Written:
            with path.open("wb") as out:
                return export.write(filters.rows(session, f, upto=row.upto_seq), out, fmt)  # type: ignore[arg-type]

        written = await ctx.db.run(write, readonly=True)
        if written.sha256 != row.sha256:  # audit rows never change: this is tampering, or a bug
            differs = "the file differs from the one offered"
            record(export.disclosure(**base, outcome="failed", detail=differs), "failed")
            return Reply(text="The export could not be made as offered, so nothing was sent. Report this to "
                              "your information security team.")  # fmt: skip
        ctx.note.recipients, ctx.note.detail = recipients, f"handing over {written.rows} rows"
        ctx.note.arguments = {**export.disclosure(**base, written=written).arguments, "export": export_id}
        await ctx.step(lambda s: _mark(s, export_id, "uploading", ctx), outcome="uploading")
        try:
            await ctx.teams.upload_file(args.upload_url, path, written.size)
        except UploadFailed as exc:
            record(export.disclosure(**base, outcome="failed", detail=f"upload failed: {exc}"), "failed")
            return Reply(text=f"The upload to your OneDrive failed ({escape_message(str(exc))}). The attempt "
                              "is recorded; ask again with `/audit export` to retry.")  # fmt: skip
    delivered = {**base, "file_name": args.name or row.file_name}
    record(export.disclosure(**delivered, written=written), "delivered")
    ctx.note.outcome = "ok"
    return Reply(attachment=file_info(args, row.file_name))


def _mark(session: Session, export_id: int, state: str, ctx: CommandContext) -> None:
    found = session.get(AuditExport, export_id)
    if found is not None:
        found.state, found.answered_at = state, ctx.now()
        session.add(found)


def file_info(args: ConsentArgs, fallback: str) -> dict[str, Any]:
    """The FileInfoCard naming the uploaded file in the chat."""
    name = args.name or fallback
    kind = args.file_type or name.rsplit(".", 1)[-1]
    return {"contentType": FILE_INFO, "name": name, "contentUrl": args.content_url,
            "content": {"uniqueId": args.unique_id, "fileType": kind}}  # fmt: skip


CONSENT = Command(words="audit export answer", action="audit.export", args=ConsentArgs, handler=answer,
                  summary="Deliver or drop an offered export", description="",
                  facts=("export:export",))  # fmt: skip
"""Not registered on any router: only a fileConsent/invoke reaches it (bot/routing.py)."""
