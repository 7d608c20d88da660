"""The bot's personal (1:1) chats: where posts meant for one person alone go (their own digest)."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col, select

from core.outbox.models import PersonalChat


def get(*, session: Session, aad_id: str) -> PersonalChat | None:
    """Someone's personal chat with the bot, if the bot has one."""
    return session.get(PersonalChat, aad_id)


def of(*, session: Session, aad_ids: Collection[str]) -> dict[str, PersonalChat]:
    """The personal chats of these people (those who have one), by Entra object id."""
    if not aad_ids:
        return {}
    stmt = select(PersonalChat).where(col(PersonalChat.aad_id).in_(sorted(set(aad_ids))))
    return {chat.aad_id: chat for chat in session.exec(stmt)}


def remember(
    *, session: Session, aad_id: str, tenant_id: str | None, conversation_id: str, reference: str,
    now: datetime,
) -> None:  # fmt: skip
    """Record (or move) someone's personal chat: one row per person, the latest chat wins."""
    table: Table = PersonalChat.__table__  # type: ignore[attr-defined]
    values: dict[str, Any] = {"aad_id": aad_id, "tenant_id": tenant_id, "conversation_id": conversation_id,
                              "reference": reference, "updated_at": now}  # fmt: skip
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    stmt = insert(table).values(**values)
    changed = {key: value for key, value in values.items() if key != "aad_id"}
    session.execute(stmt.on_conflict_do_update(index_elements=["aad_id"], set_=changed))
