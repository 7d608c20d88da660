"""The argument models of /audit and /audit export (dialogs/audit_query.py, dialogs/audit_export.py)."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import ClassVar, Literal

from pydantic import field_validator

from dialogs.parsing import Args

_RELATIVE = re.compile(r"\d{1,4}[mhdw]")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_ACTION = re.compile(r"[a-z_]+(\.[a-z_]+)*(\.\*)?")
_AGENCY = re.compile(r"[a-z][a-z0-9-]{1,31}")
_ROOM = re.compile(r"[A-Za-z0-9-]{1,32}")


def _when(value: str | None) -> str | None:
    """7d, 24h, 30m, 2w, a date (YYYY-MM-DD, force time) or an ISO time; read against the clock later."""
    if value is None:
        return None
    value = value.strip()
    if _RELATIVE.fullmatch(value):
        return value
    try:
        if _DATE.fullmatch(value):
            date.fromisoformat(value)
            return value
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        pass
    else:
        return value
    raise ValueError("must be a span back from now (30m, 24h, 7d, 2w), a date (2026-11-23) or an ISO time")


class AuditFilterArgs(Args):
    """Which events: the filters /audit and /audit export share."""

    rest: ClassVar[bool] = False
    labels: ClassVar[dict[str, str]] = {"user": "WHO", "room": "KEY", "since": "7d|YYYY-MM-DD",
                                        "until": "DATE", "action": "A", "agency": "AGENCY"}  # fmt: skip
    user: str | None = None
    room: str | None = None
    since: str | None = None
    until: str | None = None
    denied: bool = False
    action: str | None = None
    agency: str | None = None

    _since = field_validator("since", "until")(_when)

    @field_validator("action")
    @classmethod
    def _action(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip().lower()
        if not _ACTION.fullmatch(value) or len(value) > 64:
            raise ValueError("must be an action such as task.show, or a family such as task.*")
        return value

    @field_validator("agency")
    @classmethod
    def _agency(cls, value: str | None) -> str | None:
        if value is not None and not _AGENCY.fullmatch(value.strip().lower()):
            raise ValueError("must be an agency key (`/agency list` shows them)")
        return None if value is None else value.strip().lower()

    @field_validator("room")
    @classmethod
    def _room(cls, value: str | None) -> str | None:
        if value is not None and not _ROOM.fullmatch(value.strip()):
            raise ValueError("must be a room key such as OP-LANTERN")
        return None if value is None else value.strip()


class AuditArgs(AuditFilterArgs):
    """`/audit`: the filters, and where a page starts (set by the card's Next and Previous buttons)."""

    hidden: ClassVar[frozenset[str]] = frozenset({"before", "after", "upto"})
    before: int | None = None
    after: int | None = None
    upto: int | None = None


class ExportArgs(AuditFilterArgs):
    """`/audit export`: the filters, why, for whom, and as what."""

    labels: ClassVar[dict[str, str]] = {**AuditFilterArgs.labels, "reason": "TEXT", "recipient": "WHO"}
    reason: str | None = None
    recipient: str | None = None
    format: Literal["csv", "jsonl"] = "csv"

    @field_validator("reason", "recipient")
    @classmethod
    def _text(cls, value: str | None) -> str | None:
        if value is not None and len(value) > 500:
            raise ValueError("at most 500 characters")
        return value

    def recipients(self) -> list[str]:
        """Whom the file is for: --recipient, several separated by `;`."""
        return [part.strip() for part in (self.recipient or "").split(";") if part.strip()]
