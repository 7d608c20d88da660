"""A crash mid-request leaves no half-done state and no missing audit event."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, ClassVar

import pytest
from sqlalchemy import text
from sqlmodel import Session

from core.db import Database
from dialogs.commands import build_router
from dialogs.context import CommandContext, Reply
from dialogs.parsing import Args
from dialogs.registry import Router
from tests.fakes.connector import FakeConnector
from tests.scenarios.conftest import BASE_SETTINGS, Harness, serving


class NoteArgs(Args):
    positional: ClassVar[tuple[str, ...]] = ("note",)
    note: str


def crashing_router(calls: dict[str, int]) -> Router:
    """The real commands plus three that fail in different places."""
    router = build_router()

    @router.command("boom before", action="help", args=NoteArgs)
    async def boom_before(ctx: CommandContext, args: NoteArgs) -> Reply:
        """Fails before changing anything."""
        raise RuntimeError("secret detail that must not reach the user")

    @router.command("boom during", action="help", args=NoteArgs)
    async def boom_during(ctx: CommandContext, args: NoteArgs) -> Reply:
        """Writes, then fails inside the same transaction."""

        def work(session: Session) -> None:
            session.execute(text("INSERT INTO scratch (note) VALUES (:n)"), {"n": args.note})
            raise ValueError("half way")

        ctx.work.stage(work)
        return Reply(text="never")

    @router.command("flaky", action="help", args=NoteArgs)
    async def flaky(ctx: CommandContext, args: NoteArgs) -> Reply:
        """Fails the first time, works the second."""
        calls["flaky"] = calls.get("flaky", 0) + 1
        if calls["flaky"] == 1:
            raise ConnectionError("transient")

        def work(session: Session) -> None:
            session.execute(text("INSERT INTO scratch (note) VALUES (:n)"), {"n": args.note})

        ctx.work.stage(work)
        return Reply(text=f"noted {args.note}")

    return router


@pytest.fixture
async def crashy(db: Database, connector: FakeConnector) -> AsyncIterator[Harness]:
    db.transaction(lambda s: s.execute(text("CREATE TABLE scratch (note VARCHAR(100))")))
    async with serving(BASE_SETTINGS, connector, db, crashing_router({})) as running:
        yield running


def scratch(db: Database) -> list[Any]:
    return db.transaction(lambda s: [r[0] for r in s.execute(text("SELECT note FROM scratch"))])


async def test_a_crash_before_any_change_is_answered_and_audited(crashy: Harness) -> None:
    result = await crashy.say("personal_message", "/boom before x")
    assert result.status == 201
    [reply] = result.texts
    assert reply.startswith("Sorry, something went wrong and nothing was changed. Reference: `")
    assert "secret" not in reply
    [event] = crashy.audit()
    assert (event["outcome"], event["detail"]) == ("error", "RuntimeError; identity: member of the force")


async def test_a_crash_inside_the_transaction_leaves_no_state(crashy: Harness) -> None:
    result = await crashy.say("personal_message", "/boom during lost")
    assert result.texts[0].startswith("Sorry, something went wrong")
    assert scratch(crashy.db) == []
    [event] = crashy.audit()
    assert (event["outcome"], event["detail"]) == ("error", "ValueError; identity: member of the force")


async def test_a_failed_activity_can_be_retried_and_then_acts_once(crashy: Harness) -> None:
    activity = crashy.activity("personal_message", "/flaky visit done")
    first = await crashy.send(activity)
    second = await crashy.send(activity)
    third = await crashy.send(activity)
    assert first.texts[0].startswith("Sorry")
    assert second.texts == ["noted visit done"]
    assert third.replies == []
    assert scratch(crashy.db) == ["visit done"]
    assert [e["outcome"] for e in crashy.audit()] == ["error", "ok", "duplicate"]


async def test_no_reply_without_a_durable_audit_event(crashy: Harness) -> None:
    # Break the audit store: the request must fail (Teams will retry) and say nothing.
    crashy.db.transaction(lambda s: s.execute(text("ALTER TABLE audit_event RENAME TO audit_gone")))
    result = await crashy.say("personal_message", "/help")
    assert result.status == 500
    assert result.replies == []
    crashy.db.transaction(lambda s: s.execute(text("ALTER TABLE audit_gone RENAME TO audit_event")))
    assert crashy.audit() == []


async def test_a_resend_whose_reply_never_arrived_gets_the_kept_reply(crashy: Harness) -> None:
    activity = crashy.activity("personal_message", "/flaky once")
    crashy.connector.fail_next(1, 500, path_contains="/activities")  # first attempt is an error...
    await crashy.send(activity)
    crashy.connector.fail_next(1, 403, path_contains="/activities")  # ...the second acts, but its reply is lost
    acted = await crashy.send(activity)
    again = await crashy.send(activity)
    after = await crashy.send(activity)
    assert acted.replies == [] and again.texts == ["noted once"] and after.replies == []
    assert scratch(crashy.db) == ["once"]  # acted on exactly once
    assert [e["outcome"] for e in crashy.audit()] == ["error", "ok", "duplicate", "duplicate"]
