"""Audit exports: the trail written out as CSV or JSON lines, and the disclosure event that records it.

An export hands audit data to someone outside the bot, so it is a disclosure (DPA 2018 s62): every one
leaves an `audit.export` event naming the justification, the recipients, the filters, the row count and
the SHA-256 of the exact bytes handed over, so the file can later be matched to its record.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Literal

from sqlmodel import Session

from core import text as safe
from core.audit import filters, service
from core.audit.filters import AuditFilter
from core.audit.models import HASHED_FIELDS, Actor, EventDraft, Where
from core.db import Database

Format = Literal["csv", "jsonl"]
FORMATS: tuple[Format, ...] = ("csv", "jsonl")
COLUMNS: tuple[str, ...] = (*HASHED_FIELDS, "hash", "request_id")
"""Every column of audit_event: those the hash always covers in its order, the hash, then the request id
(hashed after prev_hash when it is not empty: core.audit.chain.hashed_values)."""
NUMBERS = frozenset({"seq", "duration_us"})
"""Columns we write as numbers ourselves: never neutralised (nobody types them)."""

# OWASP "CSV Injection" and ASVS 5.0 1.2.10: a cell starting with one of these is read as a formula (or
# DDE call) by Excel, LibreOffice Calc or Google Sheets. LF and NUL are added as cheap extra margin.
FORMULA_STARTS = frozenset("=+-@\t\r\n\0")

# Excel on Windows, what a force's staff open a CSV with, reads a CSV without a byte order mark in the
# ANSI code page (Windows-1252), so a name such as "Siân" or "Zoë" shows as "SiÃ¢n". With the UTF-8 BOM
# it reads UTF-8; LibreOffice and Python's "utf-8-sig" skip the BOM. JSON lines is for programs: no BOM.
BOM = b"\xef\xbb\xbf"

MAX_REASON = 1000
MAX_RECIPIENTS = 50
MAX_RECIPIENT = 200


@dataclass(frozen=True)
class Written:
    """What write() wrote: the number of events, and the size and SHA-256 (hex) of the exact bytes."""

    rows: int
    size: int
    sha256: str


def neutralise(value: str) -> str:
    """A CSV cell's text made safe to open in a spreadsheet: a single quote before text that would start a
    formula, including after leading spaces (spreadsheets may trim them on import). Otherwise unchanged."""
    if value[:1] in FORMULA_STARTS or value.lstrip()[:1] in FORMULA_STARTS:
        return "'" + value
    return value


class _Sink:
    """Encodes, hashes, counts and writes through: nothing is kept, whatever the export's size."""

    def __init__(self, out: BinaryIO) -> None:
        self.out = out
        self.digest = hashlib.sha256()
        self.size = 0

    def write_bytes(self, data: bytes) -> None:
        self.out.write(data)
        self.digest.update(data)
        self.size += len(data)

    def write(self, text: str) -> int:
        """For csv.writer, which writes one row per call."""
        self.write_bytes(text.encode("utf-8"))
        return len(text)


def write(rows: Iterable[Any], out: BinaryIO, fmt: Format) -> Written:
    """Write audit rows (anything with the audit columns as attributes: filters.rows' rows, AuditEvent,
    StoredEvent) to out, one at a time, as they come.

    csv: UTF-8 with a BOM (see BOM), a header row of the column names, CRLF line ends (RFC 4180); an empty
    cell is a NULL; text cells are neutralised (see neutralise), so a cell the bot wrote may carry a leading
    quote the stored value does not have: the JSON lines export is the one to check hashes against.
    jsonl: one JSON object per event, keys in column order, every value exactly as stored (arguments and
    recipients stay JSON text), so anyone can recompute each event's hash from the file. It is data for
    programs, not a spreadsheet, so nothing in it is neutralised.
    """
    sink = _Sink(out)
    count = 0
    if fmt == "csv":
        sink.write_bytes(BOM)
        writer = csv.writer(sink)
        writer.writerow(COLUMNS)
        for row in rows:
            writer.writerow([_cell(name, getattr(row, name)) for name in COLUMNS])
            count += 1
    elif fmt == "jsonl":
        for row in rows:
            line = json.dumps({name: getattr(row, name) for name in COLUMNS}, ensure_ascii=False,
                              separators=(",", ":"))  # fmt: skip
            sink.write(line + "\n")
            count += 1
    else:
        raise ValueError(f"unknown export format {fmt!r}: use csv or jsonl")
    return Written(rows=count, size=sink.size, sha256=sink.digest.hexdigest())


def _cell(name: str, value: Any) -> Any:
    if value is None:
        return ""
    if name in NUMBERS and isinstance(value, int):
        return value
    return neutralise(str(value))


def request(reason: str | None, recipients: Iterable[str]) -> tuple[str, list[str]]:
    """The reason and recipients of an export, checked: (reason, recipients) stripped, recipients in the
    order given without repeats. Raises ValueError, fit to show the person asking, when one is missing."""
    why = (reason or "").strip()
    if not why:
        raise ValueError("give a reason: why the audit trail is disclosed (DPA 2018 s62 asks for it)")
    if len(why) > MAX_REASON:
        raise ValueError(f"the reason is {len(why)} characters: at most {MAX_REASON}")
    whom: list[str] = []
    for recipient in recipients:
        name = recipient.strip()
        if len(name) > MAX_RECIPIENT:
            raise ValueError(f"a recipient is {len(name)} characters: at most {MAX_RECIPIENT}")
        if name and name not in whom:
            whom.append(name)
    if not whom:
        raise ValueError("give at least one recipient: who the file is disclosed to")
    if len(whom) > MAX_RECIPIENTS:
        raise ValueError(f"{len(whom)} recipients: at most {MAX_RECIPIENTS}")
    return why, whom


def disclosure(*, actor: Actor, reason: str, recipients: Sequence[str], audit_filter: AuditFilter,
               fmt: Format, upto_seq: int, outcome: str = "ok", written: Written | None = None,
               file_name: str | None = None, where: Where | None = None,
               detail: str | None = None) -> EventDraft:  # fmt: skip
    """The audit event of an export: `ok` for a file handed over (give `written`), or as the caller says
    (`declined`, `failed`, with a `detail` saying why).

    Arguments hold the filters (AuditFilter.to_json's keys, flat: a nested value would be stored as
    text), the format, the head the file was cut at, and for a written file its rows, size and SHA-256.
    """
    why, whom = request(reason, recipients)
    arguments: dict[str, Any] = {**audit_filter.to_json(), "format": fmt, "upto_seq": upto_seq}
    if file_name is not None:
        arguments["file"] = file_name
    if written is not None:
        arguments.update(rows=written.rows, size=written.size, sha256=written.sha256)
        shown = f"{written.rows} rows, SHA-256 {written.sha256}, {fmt.upper()}, {written.size} bytes"
        detail = f"{shown}; {detail}" if detail else shown
    return EventDraft(
        action="audit.export", outcome=outcome, actor=actor, where=where or Where(),
        arguments=arguments, justification=why,
        recipients=[safe.clean(name, MAX_RECIPIENT) or "" for name in whom], detail=detail,
    )  # fmt: skip


@dataclass(frozen=True)
class Exported:
    """An export written to a file and recorded."""

    path: Path
    written: Written
    upto_seq: int
    event_seq: int
    """The seq of its disclosure event."""


def export_file(db: Database, *, audit_filter: AuditFilter, fmt: Format, reason: str,
                recipients: Sequence[str], actor: Actor, out: Path, force: bool = False,
                where: Where | None = None) -> Exported:  # fmt: skip
    """Write the events matching the filter, up to the current head, to `out`, and record the disclosure.

    The file is written beside `out` under a temporary name, the disclosure event is appended in its own
    transaction (signed if the engine has a signer attached), and only then is the file renamed into
    place: if the event cannot be written, the file is removed, so no file leaves without its record.
    An existing `out` is refused (FileExistsError) unless `force`. Raises ValueError for a missing reason
    or recipient, before anything is written. The file is readable by its owner only (mode 0600).
    """
    why, whom = request(reason, recipients)
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}: use csv or jsonl")
    if out.is_dir():
        raise IsADirectoryError(f"{out} is a directory: give a file name")
    reserved = False
    if not force:
        # Hold the name from now on (O_EXCL), so nobody's file is overwritten by the final rename.
        try:
            os.close(os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except FileExistsError:
            raise FileExistsError(f"{out} exists: choose another file name (or force)") from None
        reserved = True
    fd, temp_name = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".part")
    temp = Path(temp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            upto, written = db.transaction(lambda s: _write_upto(s, audit_filter, handle, fmt), readonly=True)
            handle.flush()
            os.fsync(handle.fileno())
        draft = disclosure(actor=actor, reason=why, recipients=whom, audit_filter=audit_filter, fmt=fmt,
                           upto_seq=upto, written=written, file_name=out.name, where=where)  # fmt: skip
        stored = db.transaction(lambda s: service.append(s, [draft]))
        os.replace(temp, out)
    except BaseException:
        temp.unlink(missing_ok=True)
        if reserved:
            out.unlink(missing_ok=True)
        raise
    return Exported(path=out, written=written, upto_seq=upto, event_seq=stored[0].seq)


def _write_upto(session: Session, audit_filter: AuditFilter, out: BinaryIO,
                fmt: Format) -> tuple[int, Written]:  # fmt: skip
    """Cut the export at the current head (events appended while it is written are left out), and write."""
    upto = service.head(session).seq
    return upto, write(filters.rows(session, audit_filter, upto=upto), out, fmt)
