"""Helpers for the outbox sender tests: rows, references, waiting for outcomes, and the fixtures."""
from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session, col, select

from bot.auth import build_authentication
from bot.config import Settings
from bot.outbound import Outbound
from bot.sender import OutboxSender, SenderSettings
from core.db import Database
from core.outbox import service as outbox
from core.outbox.models import OutboxMessage
from tests.fakes.connector import FakeConnector, RecordedRequest

CHANNEL = "19:ops@thread.tacv2;messageid=1700000000001"
OTHER = "19:other@thread.tacv2;messageid=1700000000002"
PERSONAL = "a:1personalChatWithAnOfficer"
FAST = SenderSettings(poll_interval=0.05, backoff=0.05, max_backoff=0.2)


def now() -> datetime:
    return datetime.now(UTC)


def reference(
    connector: FakeConnector, conversation_id: str, *, kind: str = "channel", tenant: str = "t1"
) -> str:
    return json.dumps(
        {
            "bot": {"id": "28:bot"},
            "channelId": "msteams",
            "serviceUrl": connector.url,
            "conversation": {"id": conversation_id, "conversationType": kind, "tenantId": tenant},
        }
    )


async def enqueue(
    db: Database, connector: FakeConnector, conversation_id: str, texts: Iterable[str], **kw: Any
) -> list[int]:
    """Write notices as an action's transaction would; their ids."""
    ref = reference(
        connector, conversation_id, kind="personal" if conversation_id.startswith("a:") else "channel"
    )

    at = now()  # one time for the transaction, as an action stamps its notices: all due together

    def write(session: Session) -> list[int]:
        rows = [
            outbox.enqueue(
                session=session,
                kind="notice",
                reference=ref,
                activity={"type": "message", "text": t},
                now=at,
                **kw,
            )
            for t in texts
        ]
        return [r.id for r in rows if r is not None and r.id is not None]

    return await db.commit(write)


def rows(db: Database, ids: Iterable[int] | None = None) -> list[OutboxMessage]:
    def read(session: Session) -> list[OutboxMessage]:
        stmt = select(OutboxMessage).order_by(col(OutboxMessage.id))
        if ids is not None:
            stmt = stmt.where(col(OutboxMessage.id).in_(list(ids)))
        return list(session.exec(stmt))

    return db.transaction(read, readonly=True)


async def settled(db: Database, ids: list[int], timeout: float = 10.0) -> list[OutboxMessage]:
    """Wait until none of these rows is pending or sending any more."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        found = rows(db, ids)
        if all(r.status not in ("pending", "sending") for r in found):
            return found
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(
                f"not settled: {[(r.id, r.status, r.attempts, r.last_error) for r in found]}"
            )
        await asyncio.sleep(0.02)


def posts_to(connector: FakeConnector, conversation_id: str) -> list[RecordedRequest]:
    return [r for r in connector.requests if r.kind == "send" and r.conversation_id == conversation_id]


def texts_to(connector: FakeConnector, conversation_id: str) -> list[str]:
    return [a["text"] for a in connector.activities() if a.conversation_id == conversation_id]


def make_sender(db: Database, outbound: Outbound, settings: SenderSettings = FAST) -> OutboxSender:
    local = Settings()  # local mode: anonymous credentials, no token
    return OutboxSender.for_app(db, build_authentication(local, outbound), outbound, local, options=settings)
