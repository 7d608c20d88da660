"""/audit verify for a room's lead (their room's events) and a supervisor (the whole trail)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import text

from core import schema
from core.audit import service, signatures, signing
from core.audit.chain import VerifyResult
from core.audit.models import Where
from core.audit.signing import Signer
from core.db import Database
from core.rooms.models import Room
from dialogs.audit import audit_verify
from dialogs.context import CommandContext, Conversation, Reply, Work
from dialogs.rooms import RoomArgs
from policies import Policy, Principal, PrincipalKind, Resource, RoomRole
from tests.core.support import append_events, disable_append_only, draft, raw
from tests.core.support import verify as chain_verify

POLICY = Policy.load()
LEAD = Principal("aad-lead", "tenant-1", PrincipalKind.OFFICER, "DI Lead")
SUPERVISOR = Principal("aad-super", "tenant-1", PrincipalKind.SUPERVISOR, "Supt Super")


def _append_in(db: Database, room_key: str, n: int) -> None:
    db.transaction(lambda s: service.append(s, [draft(n, where=Where(room_key=room_key))]))


@pytest.fixture
def key(db: Database) -> Signer:
    signer = Signer.generate()
    signing.attach(db.engine, signer)
    return signer


@pytest.fixture
def two_rooms(db: Database, key: Signer) -> Database:
    """Seq 1..6 alternating between rooms KESTREL (odd) and HERON (even), all signed."""
    for n in range(1, 7):
        _append_in(db, "KESTREL" if n % 2 else "HERON", n)
    return db


def _verified(db: Database, key: Signer) -> VerifyResult:
    return db.transaction(lambda s: service.verify(s, keys=key.keyring()), readonly=True)


def _report(db: Database, room: str, result: VerifyResult) -> signatures.RoomReport:
    return db.transaction(lambda s: signatures.room_report(s, room, result), readonly=True)


def test_an_intact_room_is_vouched_for_event_by_event(two_rooms: Database, key: Signer) -> None:
    result = _verified(two_rooms, key)

    report = _report(two_rooms, "KESTREL", result)

    assert report.ok and (report.events, report.vouched, report.first_unvouched) == (3, 3, None)


def test_a_break_in_one_room_leaves_the_other_rooms_earlier_events_vouched(two_rooms: Database, key: Signer) -> None:
    disable_append_only(two_rooms)
    raw(two_rooms, "UPDATE audit_event SET action = 'forged' WHERE seq = 4")
    result = _verified(two_rooms, key)
    assert result.bad_seq == 4

    heron, kestrel = _report(two_rooms, "HERON", result), _report(two_rooms, "KESTREL", result)

    assert (heron.ok, heron.vouched, heron.first_unvouched) == (False, 1, 4)
    assert (kestrel.ok, kestrel.vouched, kestrel.first_unvouched) == (False, 2, 5)


# ---- The command, with the shipped policy deciding who gets what ----


def _context(db: Database, principal: Principal, room: Room | None) -> CommandContext:
    role = RoomRole.LEAD if room is not None and principal is LEAD else None
    resource = Resource(room_key=room.key if room else None, role=role)

    def may(action: str, facts: Resource | None = None) -> Any:
        return POLICY.decide(principal, action, resource if facts is None else facts)

    async def step(fn: Any, *, outcome: str) -> Any:
        raise AssertionError("verify takes no steps")

    assert POLICY.decide(principal, "audit.verify", resource).allowed  # the pipeline's own check
    return CommandContext(principal=principal, conversation=Conversation(), resource=resource, db=db,
                          work=Work(), step=step, may=may, may_all=lambda requests: [], teams=None,  # type: ignore[arg-type]
                          room=room)  # fmt: skip


def _room(key: str) -> Room:
    return Room(key=key, name=key.title(), classification="OFFICIAL", timezone="Europe/London",
                lead_aad_id=LEAD.aad_id, tenant_id="tenant-1", space_kind="thread", reference="{}",
                opened_at=datetime(2026, 11, 1, tzinfo=UTC))  # fmt: skip


async def _say(ctx: CommandContext, args: RoomArgs | None = None) -> str:
    reply = await audit_verify(ctx, args or RoomArgs())
    assert isinstance(reply, Reply) and reply.text is not None
    return reply.text


async def test_a_lead_hears_about_their_rooms_events_only(two_rooms: Database, key: Signer) -> None:
    ctx = _context(two_rooms, LEAD, _room("KESTREL"))

    said = await _say(ctx)

    assert said == "Audit trail of room `KESTREL` verified: 3 events, each intact and covered by a valid signature."
    assert ctx.note.detail == "room KESTREL: 3 events, 3 vouched for; chain ok"


async def test_a_lead_is_told_when_their_room_cannot_be_vouched_for(two_rooms: Database, key: Signer) -> None:
    disable_append_only(two_rooms)
    raw(two_rooms, "UPDATE audit_event SET justification = 'x' WHERE seq = 4")

    heron = await _say(_context(two_rooms, LEAD, _room("HERON")))
    kestrel = await _say(_context(two_rooms, LEAD, _room("KESTREL")))

    assert heron.startswith("**Audit trail check FAILED** for room `HERON` at its event 4: hash does not match")
    assert "1 of its 3 events cannot be vouched for" not in heron and "2 of its 3 events" in heron
    assert kestrel.startswith("**Audit trail check FAILED** for room `KESTREL` from its event 5: the trail is "
                              "broken at an event outside it. 1 of its 3 events cannot be vouched for.")  # fmt: skip


async def test_an_unsigned_event_in_a_room_fails_its_report(two_rooms: Database, key: Signer) -> None:
    forger = Database(two_rooms.url)  # this code, through a connection of its own: without the key
    try:
        _append_in(forger, "KESTREL", 7)
    finally:
        forger.close()

    said = await _say(_context(two_rooms, LEAD, _room("KESTREL")))

    assert said.startswith("**Audit trail check FAILED** for room `KESTREL` at its event 7: not covered by a "
                           "valid signature (unsigned tail: seq 7 not signed).")  # fmt: skip


async def test_a_supervisor_gets_the_whole_chain_and_its_protection(two_rooms: Database, key: Signer) -> None:
    in_a_room = await _say(_context(two_rooms, SUPERVISOR, _room("KESTREL")))
    named = await _say(_context(two_rooms, SUPERVISOR, _room("HERON")), RoomArgs(room="HERON"))

    assert in_a_room.startswith(f"Audit trail verified: 6 events, head hash `{chain_verify(two_rooms).head_hash}`.")
    assert "Every event is covered by a valid signature." in in_a_room
    assert "Append-only protection missing" not in in_a_room
    # --room names one room: its report, as a lead would get it.
    assert named.startswith("Audit trail of room `HERON` verified: 3 events")

    disable_append_only(two_rooms)
    dropped = await _say(_context(two_rooms, SUPERVISOR, None))
    assert "**Append-only protection missing**: audit_event: trigger audit_event_no_" in dropped


async def test_without_a_signing_key_the_reply_says_signatures_were_not_checked(db: Database) -> None:
    append_events(db, 2)

    said = await _say(_context(db, SUPERVISOR, None))

    assert said.startswith("Audit trail verified: 2 events, head hash `")
    assert said.endswith("Signatures not checked: this instance has no signing key.")


def _migrate(db: Database, revision: str, *, down: bool) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(schema.MIGRATIONS))
    with db.engine.connect() as connection:
        cfg.attributes["connection"] = connection
        (command.downgrade if down else command.upgrade)(cfg, revision)
        connection.commit()


async def test_events_before_signing_are_counted_for_the_room(db: Database) -> None:
    _migrate(db, "0004", down=True)
    for n in range(1, 4):
        _append_in(db, "KESTREL", n)  # written by a release that did not sign
    _migrate(db, "head", down=False)
    signer = Signer.generate()
    signing.attach(db.engine, signer)
    _append_in(db, "KESTREL", 4)

    said = await _say(_context(db, LEAD, _room("KESTREL")))

    assert said == ("Audit trail of room `KESTREL` verified: 4 events, each intact and covered by a valid "
                    "signature.\n\n3 of them, written before signing began, are covered by the hash chain only.")
    count = db.transaction(lambda s: s.execute(text("SELECT count(*) FROM audit_signature")).scalar_one())
    assert count == 1
