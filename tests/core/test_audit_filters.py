"""Keyset pages over the audit trail (core/audit/filters.py): every filter and combination finds exactly the
matching events, newest first, and walking Next to the end and Previous back never skips or repeats one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session

from core.audit import filters, service
from core.audit.filters import AuditFilter
from core.audit.models import Actor, EventDraft, Where
from core.db import Database

PEOPLE = ("aaaaaaaa-0000-4000-8000-00000000000a", "bbbbbbbb-0000-4000-8000-00000000000b",
          "cccccccc-0000-4000-8000-00000000000c")  # fmt: skip
START = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)


@pytest.fixture
def trail(db: Database) -> Database:
    """120 events over 120 hours: three people, three rooms, two agencies, some refusals."""
    def append(session: Session) -> None:
        for n in range(120):
            draft = EventDraft(
                action=("task.show", "task.list", "room.status", "audit.query")[n % 4], outcome="ok",
                actor=Actor(PEOPLE[n % 3], None, f"person {n % 3}", "guest", ("barnardos", None)[n % 2]),
                where=Where(room_key=("OP-A", "OP-B", None)[n % 5 % 3]),
                decision="deny" if n % 7 == 0 else "allow",
            )  # fmt: skip
            service.append(session, [draft], now=START + timedelta(hours=n))

    db.transaction(append)
    return db


FILTERS = [
    AuditFilter(),
    AuditFilter(user=PEOPLE[1].upper()),
    AuditFilter(room_key="op-a"),
    AuditFilter(denied=True),
    AuditFilter(action="task.*"),
    AuditFilter(action="room.status"),
    AuditFilter(agency="barnardos"),
    AuditFilter(since=START + timedelta(hours=30), until=START + timedelta(hours=90)),
    AuditFilter(user=PEOPLE[0], room_key="OP-B", action="task.show"),
    AuditFilter(room_key="OP-A", denied=True, agency="barnardos"),
    AuditFilter(user=PEOPLE[2], since=START + timedelta(days=10)),
]


def _matches(row: dict[str, object], f: AuditFilter) -> bool:
    at = datetime.fromisoformat(str(row["at"]).replace("Z", "+00:00"))
    return ((f.user is None or row["actor_aad_id"] == f.user.lower())
            and (f.room_key is None or row["room_key"] == f.room_key.upper())
            and (not f.denied or row["decision"] == "deny")
            and (f.action is None or (str(row["action"]).startswith(f.action[:-1]) if f.action.endswith(".*")
                                      else row["action"] == f.action))
            and (f.agency is None or row["actor_agency"] == f.agency)
            and (f.since is None or at >= f.since) and (f.until is None or at < f.until))  # fmt: skip


@pytest.mark.parametrize("f", FILTERS, ids=[str(sorted(f.to_json())) for f in FILTERS])
def test_walking_every_page_finds_exactly_the_matching_events(trail: Database, f: AuditFilter) -> None:
    def walk(session: object) -> tuple[list[int], list[list[int]], list[dict[str, object]]]:
        upto = service.head(session).seq  # type: ignore[arg-type]
        everything = [dict(r._mapping) for r in filters.rows(session, AuditFilter(), upto=upto)]  # type: ignore[arg-type]
        pages, before = [], None
        while True:
            page = filters.page(session, f, upto=upto, before=before, limit=7)  # type: ignore[arg-type]
            pages.append([r.seq for r in page.events])
            if not page.older:
                break
            before = page.events[-1].seq
        streamed = [r.seq for r in filters.rows(session, f, upto=upto, batch=5)]  # type: ignore[arg-type]
        return streamed, pages, everything

    streamed, pages, everything = trail.transaction(walk, readonly=True)
    expected = [int(str(r["seq"])) for r in everything if _matches(r, f)]
    assert [s for page in pages for s in page] == sorted(expected, reverse=True)
    assert streamed == expected
    assert all(pages) or expected == []


def test_previous_retraces_the_pages_exactly(trail: Database) -> None:
    f = AuditFilter(action="task.*")

    def retrace(session: object) -> tuple[list[list[int]], list[list[int]]]:
        upto = service.head(session).seq  # type: ignore[arg-type]
        forward, before = [], None
        for _ in range(4):
            page = filters.page(session, f, upto=upto, before=before, limit=9)  # type: ignore[arg-type]
            forward.append([r.seq for r in page.events])
            before = page.events[-1].seq
        backward, after = [], forward[-1][0]
        for _ in range(3):
            page = filters.page(session, f, upto=upto, after=after, limit=9)  # type: ignore[arg-type]
            backward.append([r.seq for r in page.events])
            after = page.events[0].seq
        return forward, backward

    forward, backward = trail.transaction(retrace, readonly=True)
    assert backward == list(reversed(forward[:-1]))


def test_events_after_the_anchor_never_shift_the_pages(trail: Database) -> None:
    first = trail.transaction(lambda s: filters.page(s, AuditFilter(), upto=service.head(s).seq, limit=5),
                              readonly=True)  # fmt: skip
    extra = EventDraft(action="task.show", outcome="ok", actor=Actor(PEOPLE[0], None, "p", "guest", None))
    trail.transaction(lambda s: service.append(s, [extra]))
    again = trail.transaction(lambda s: filters.page(s, AuditFilter(), upto=first.upto, limit=5), readonly=True)
    assert [r.seq for r in again.events] == [r.seq for r in first.events] and not again.newer


def test_a_range_with_no_events_is_empty(trail: Database) -> None:
    later = AuditFilter(since=START + timedelta(days=60))
    page = trail.transaction(lambda s: filters.page(s, later, upto=service.head(s).seq), readonly=True)
    assert list(page.events) == [] and not page.newer and not page.older
