"""/audit export over HTTP: Teams' file consent flow, each answer recorded as a disclosure (or its refusal)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from typing import Any

from core.audit import service
from core.audit.models import Actor, EventDraft
from core.db import Database
from tests import fixtures
from tests.scenarios.access_support import events, lantern, say
from tests.scenarios.audit_support import ask, consent_answer
from tests.scenarios.conftest import Harness
from tests.scenarios.rooms_support import rows
from tests.scenarios.test_audit_query import ADA

FILE_CONSENT = "application/vnd.microsoft.teams.card.file.consent"
FILE_INFO = "application/vnd.microsoft.teams.card.file.info"
ASK = "audit export --room OP-LANTERN --reason IOPC referral 2026/114 --recipient IOPC investigator J. Smith; DPO"


async def offered(rooms: Harness, db: Database, command: str = ASK) -> dict[str, Any]:
    """A room with some history, and the supervisor's export offered: the FileConsentCard attachment."""
    thread = await lantern(rooms, db)
    await say(rooms, thread, "task add Visit 12 Acacia Avenue")
    await say(rooms, thread, "room status")
    # A display name chosen to be a spreadsheet formula, as Teams would record it.
    db.transaction(lambda s: service.append(s, [EventDraft(
        action="room.status", outcome="ok", actor=Actor("cccccccc-0000-4000-8000-00000000000f", None,
                                                        "=HYPERLINK(\"http://x.example\",\"click\")", "officer"),
        where=service_where("OP-LANTERN"))]))  # fmt: skip
    result = await ask(rooms, command)
    [reply] = result.replies
    [attachment] = reply["attachments"]
    assert attachment["contentType"] == FILE_CONSENT
    return dict(attachment)


def service_where(room_key: str) -> Any:
    from core.audit.models import Where

    return Where(room_key=room_key)


async def test_an_accepted_export_is_uploaded_and_recorded_as_a_disclosure(rooms: Harness, db: Database) -> None:
    card = await offered(rooms, db)
    export_id = card["content"]["acceptContext"]["export"]
    [(state, size, sha)] = rows(db, f"SELECT state, size, sha256 FROM audit_export WHERE id = {export_id}")
    assert state == "offered" and card["content"]["sizeInBytes"] == size and card["name"].endswith(".csv")

    upload = rooms.connector.offer_upload(card["name"])
    answer = await rooms.send(consent_answer(rooms, export_id, accept=True, upload=upload))

    assert answer.status == 200
    data = rooms.connector.uploads.file(upload["uniqueId"])
    assert data is not None and hashlib.sha256(data).hexdigest() == sha and len(data) == size
    [info] = [r for r in answer.replies if r.get("attachments")]
    assert info["attachments"][0]["contentType"] == FILE_INFO
    assert info["attachments"][0]["content"]["uniqueId"] == upload["uniqueId"]
    table = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
    assert {r["room_key"] for r in table} == {"OP-LANTERN"}
    [planted] = [r for r in table if r["actor_aad_id"].startswith("cccccccc")]
    assert planted["actor_name"] == "'=HYPERLINK(\"http://x.example\",\"click\")"  # shown as text, never run
    steps = events(rooms, "audit.export")
    assert [e["outcome"] for e in steps] == ["offered", "uploading", "ok"]
    done = steps[-1]
    assert done["justification"] == "IOPC referral 2026/114"
    assert done["recipients"] == ["IOPC investigator J. Smith", "DPO"]
    assert done["arguments"]["sha256"] == sha and done["arguments"]["rows"] == len(table)
    assert done["arguments"]["room_key"] == "OP-LANTERN" and done["arguments"]["format"] == "csv"
    assert done["actor_aad_id"] == fixtures.SUPERVISOR_AAD and done["decision"] == "allow"
    assert rows(db, f"SELECT state FROM audit_export WHERE id = {export_id}") == [("delivered",)]

    again = await rooms.send(consent_answer(rooms, export_id, accept=True, upload=upload))
    assert again.texts == ["That export is no longer on offer: ask for it again with `/audit export`."]


async def test_a_declined_export_sends_nothing_and_is_recorded(rooms: Harness, db: Database) -> None:
    card = await offered(rooms, db, ASK + " --format jsonl")
    export_id = card["content"]["declineContext"]["export"]

    answer = await rooms.send(consent_answer(rooms, export_id, accept=False, upload=None))

    assert answer.texts[0].startswith("Export `opsroom-audit-") and "declined: nothing was sent" in answer.texts[0]
    assert not [r for r in rooms.connector.requests if r.path.startswith("/upload")]
    declined = events(rooms, "audit.export")[-1]
    assert declined["outcome"] == "declined" and declined["recipients"] == ["IOPC investigator J. Smith", "DPO"]
    assert declined["justification"] == "IOPC referral 2026/114" and declined["arguments"]["format"] == "jsonl"
    assert rows(db, f"SELECT state FROM audit_export WHERE id = {export_id}") == [("declined",)]


async def test_someone_elses_answer_is_refused_and_sends_nothing(rooms: Harness, db: Database) -> None:
    card = await offered(rooms, db)
    export_id = card["content"]["acceptContext"]["export"]
    upload = rooms.connector.offer_upload(card["name"])

    answer = await rooms.send(consent_answer(rooms, export_id, accept=True, upload=upload, who=ADA))

    assert answer.texts == ["That export is no longer on offer: ask for it again with `/audit export`."]
    assert rooms.connector.uploads.file(upload["uniqueId"]) is None
    assert rows(db, f"SELECT state FROM audit_export WHERE id = {export_id}") == [("offered",)]


async def test_exports_are_refused_in_a_channel_to_officers_and_without_reason_or_recipient(
    rooms: Harness, db: Database
) -> None:
    thread = await lantern(rooms, db)

    in_channel = await say(rooms, thread, "audit export --reason audit --recipient DPO", from_=ADA)
    by_officer = await ask(rooms, "audit export --room OP-LANTERN --reason audit --recipient DPO", who=ADA)
    no_reason = await ask(rooms, "audit export --recipient DPO")
    no_recipient = await ask(rooms, "audit export --reason IOPC referral")

    assert by_officer.texts[0].startswith("You can't do that here")
    assert no_reason.texts[0] == "You can't do that here: an export needs a reason (--reason)."
    assert no_recipient.texts[0].startswith("give at least one recipient")
    assert "Usage: **/audit export" in no_recipient.texts[0]
    for exchange in (in_channel, by_officer, no_reason, no_recipient):
        assert "attachments" not in exchange.replies[0]
    assert rows(db, "SELECT count(*) FROM audit_export") == [(0,)]
    outcomes = [(e["outcome"], e["decision"]) for e in events(rooms, "audit.export")]
    assert outcomes[0][0] in ("denied", "refused") and outcomes[1:] == [("denied", "deny"), ("denied", "deny"),
                                                                        ("refused", "allow")]  # fmt: skip


async def test_the_channel_refusal_points_to_the_personal_chat(rooms: Harness, db: Database) -> None:
    thread = await lantern(rooms, db)
    supervisor = {"id": fixtures.SUPERVISOR_ID, "aadObjectId": fixtures.SUPERVISOR_AAD, "name": "Sue"}

    result = await say(rooms, thread, "audit export --reason audit --recipient DPO", from_=supervisor)

    assert "personal chat" in result.texts[0]
    assert json.dumps(result.replies).count(FILE_CONSENT) == 0
