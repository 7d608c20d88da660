"""The argument models of the /room commands (dialogs/rooms.py)."""

from __future__ import annotations

import re
from typing import ClassVar, Literal

from pydantic import field_validator

from core.rooms.models import CLASSIFICATIONS
from dialogs.parsing import Args

_HHMM = re.compile(r"([01]\d|2[0-3]):[0-5]\d")


class RoomArgs(Args):
    """Every room command may name its room with --room KEY."""

    room: str | None = None


CHANNEL_NAME_MAX = 50
"""Teams refuses a longer channel display name."""


class OpenArgs(Args):
    positional: ClassVar[tuple[str, ...]] = ("name",)
    labels: ClassVar[dict[str, str]] = {"template": "T", "classification": "OFFICIAL|OFFICIAL-SENSITIVE",
                                        "purpose": "TEXT", "digest": "HH:MM"}  # fmt: skip
    name: str
    template: str | None = None
    classification: str | None = None
    purpose: str | None = None
    digest: str | None = None
    channel: Literal["thread", "private", "shared"] = "thread"

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("a room needs a name")
        if len(value) > 80:
            raise ValueError(f"names are at most 80 characters (this one is {len(value)})")
        return value

    @field_validator("classification")
    @classmethod
    def _classification(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip().upper()
        if "SECRET" in value and value != "OFFICIAL-SENSITIVE":
            raise ValueError("SECRET material does not belong in Teams; use OFFICIAL or OFFICIAL-SENSITIVE")
        if value not in CLASSIFICATIONS:
            raise ValueError("must be OFFICIAL or OFFICIAL-SENSITIVE")
        return value

    @field_validator("digest")
    @classmethod
    def _digest(cls, value: str | None) -> str | None:
        if value is not None and not _HHMM.fullmatch(value):
            raise ValueError("must be a 24-hour time HH:MM, from 00:00 to 23:59, e.g. 07:00")
        return value

    @field_validator("purpose")
    @classmethod
    def _purpose(cls, value: str | None) -> str | None:
        if value is not None and len(value) > 1000:
            raise ValueError("at most 1,000 characters")
        return value


class ListArgs(Args):
    all: bool = False


class CloseArgs(RoomArgs):
    labels: ClassVar[dict[str, str]] = {"reason": "TEXT"}
    reason: str | None = None


class LeadArgs(RoomArgs):
    positional: ClassVar[tuple[str, ...]] = ("who",)
    who: str
