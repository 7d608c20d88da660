"""`python -m bot audit export`: the audit trail to a file, recorded as a disclosure (core/audit/export)."""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from bot.config import Settings
from core import schema
from core.audit import signing
from core.audit.export import FORMATS, Format, export_file
from core.audit.filters import AuditFilter
from core.audit.models import Actor
from core.audit.when import parse_since, parse_until
from core.db import Database

_SUFFIXES: dict[str, Format] = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}


def add_export(audit: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The `audit export` subcommand and its options."""
    recorded = "reason, recipients, filters, rows, SHA-256 of the file"
    export = audit.add_parser("export", help=f"write audit events to a file, recorded as a disclosure "
                              f"({recorded})")  # fmt: skip
    when = "30m, 24h, 7d, 2w, a date YYYY-MM-DD (in OPSROOM_TIMEZONE) or an ISO time"
    export.add_argument("--since", help=f"from (inclusive): {when}")
    export.add_argument("--until", help=f"to (exclusive; a date includes that whole day): {when}")
    export.add_argument("--user", help="the actor's Entra object id (a UPN cannot be resolved offline)")
    export.add_argument("--room", help="room key, such as OP-LANTERN")
    export.add_argument("--denied", action="store_true", help="only requests the policy denied")
    export.add_argument("--action", help="an action (task.show) or a family (task.*)")
    export.add_argument("--agency", help="the actor's partner agency key")
    export.add_argument("--reason", required=True, help="why the trail is disclosed (recorded)")
    export.add_argument("--recipient", action="append", required=True, metavar="WHO",
                        help="who the file is for (recorded); repeat for each")  # fmt: skip
    export.add_argument("--format", choices=FORMATS, help="csv (for spreadsheets; the default) or jsonl "
                        "(values exactly as stored); default from --out's suffix")  # fmt: skip
    export.add_argument("--out", type=Path, required=True, help="the file to write (never stdout)")
    export.add_argument("--force", action="store_true", help="overwrite --out if it exists")


def _norm(value: str | None, case: Callable[[str], str]) -> str | None:
    return None if value is None or not value.strip() else case(value.strip())


def _filter(settings: Settings, args: argparse.Namespace) -> AuditFilter:
    """The filter the options ask for, normalised as AuditFilter.clauses compares (so the disclosure records
    the filter that was applied); ValueError saying which option is wrong."""
    if args.user is not None and "@" in args.user:
        # Only Graph can turn a UPN into an object id, and the CLI has no Graph session; matching on the
        # actor's display name in the trail would identify people by name, which we never do.
        raise ValueError("--user takes the Entra object id (a GUID), not a UPN or email: look it up with "
                         f"`az ad user show --id {args.user} --query id`")  # fmt: skip
    now, zone = datetime.now(UTC), settings.timezone
    try:
        since = None if args.since is None else parse_since(args.since, now=now, timezone=zone)
    except ValueError as exc:
        raise ValueError(f"--since: {exc}") from None
    try:
        until = None if args.until is None else parse_until(args.until, now=now, timezone=zone)
    except ValueError as exc:
        raise ValueError(f"--until: {exc}") from None
    if since is not None and until is not None and since >= until:
        raise ValueError(f"--since {args.since} is not before --until {args.until}")
    lower = str.lower
    return AuditFilter(user=_norm(args.user, lower), room_key=_norm(args.room, str.upper), since=since,
                       until=until, denied=args.denied, action=_norm(args.action, lower),
                       agency=_norm(args.agency, lower))  # fmt: skip


def _usage(message: str) -> int:
    print(f"opsroom: audit export: {message}", file=sys.stderr)
    return 2


def export(settings: Settings, args: argparse.Namespace, signer: Callable[[], signing.Signer]) -> int:
    """Write the export and record it; 0 when both are done, 2 for a usage or set-up error, 1 otherwise."""
    if str(args.out) == "-":
        return _usage("--out must be a file: the disclosure records the SHA-256 of the file handed over")
    if not args.out.parent.is_dir():
        return _usage(f"--out: no directory {args.out.parent}")
    try:
        audit_filter = _filter(settings, args)
    except ValueError as exc:
        return _usage(str(exc))
    fmt: Format = args.format or _SUFFIXES.get(args.out.suffix.lower(), "csv")
    actor = Actor(kind="system", name=f"cli:{getpass.getuser()}")
    try:
        key = signer()
    except (OSError, ValueError) as exc:
        return _usage(f"audit signing key: {exc}")
    db = Database(settings.database_url)
    try:
        current, head = schema.current_revision(db), schema.head_revision()
        if current != head:
            return _usage(f"database at revision {current}, code expects {head}; "
                          "run `python -m bot db upgrade`")  # fmt: skip
        signing.attach(db.engine, key)  # the disclosure is signed like every other append
        done = export_file(db, audit_filter=audit_filter, fmt=fmt, reason=args.reason, actor=actor,
                           recipients=args.recipient, out=args.out, force=args.force)  # fmt: skip
    except (ValueError, FileExistsError, IsADirectoryError) as exc:
        return _usage(str(exc))
    except Exception as exc:  # the store or the disk: nothing was handed over, say so and fail
        print(f"opsroom: audit export FAILED, no file written: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    finally:
        db.close()
    written = done.written
    print(f"exported {written.rows} events (up to seq {done.upto_seq}) to {done.path}: {written.size} bytes, "
          f"SHA-256 {written.sha256}; disclosure recorded as audit event seq {done.event_seq}")  # fmt: skip
    return 0
