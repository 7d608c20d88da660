"""Looking agencies up."""

from __future__ import annotations

from collections.abc import Iterable

from sqlmodel import Session, col, select

from core.agencies.models import Agency


def known(session: Session, keys: Iterable[str]) -> dict[str, Agency]:
    """The registered agencies among these keys (lower case), by key."""
    wanted = sorted({key.strip().lower() for key in keys if key.strip()})
    if not wanted:
        return {}
    return {a.key: a for a in session.exec(select(Agency).where(col(Agency.key).in_(wanted)))}


def get(session: Session, key: str) -> Agency | None:
    """One agency by key (None: not registered)."""
    return session.get(Agency, key.strip().lower())
