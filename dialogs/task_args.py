"""The words of the /task commands, as typed argument models."""

from __future__ import annotations

import re
from typing import Annotated, ClassVar, Literal

from pydantic import BeforeValidator, field_validator

from core.tasks.service import NOTE_MAX, TITLE_MAX
from dialogs.parsing import Args

_NUMBER = re.compile(r"#?([0-9]{1,9})")
_AGENCY = re.compile(r"[a-z][a-z0-9-]{1,31}")
SHARE_EVERYONE = "all"


def _number(value: object) -> object:
    if isinstance(value, str):
        found = _NUMBER.fullmatch(value.strip())
        if found is None:
            raise ValueError("must be a task's number, as in 12 or #12")
        return int(found[1])
    return value


TaskNumber = Annotated[int, BeforeValidator(_number)]
"""`12` or `#12`."""


def _note(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if len(value) > NOTE_MAX:
        raise ValueError(f"notes are at most {NOTE_MAX:,} characters (this one is {len(value):,})")
    return value or None


class TaskArgs(Args):
    """A command about one task: `<number>`, and --room KEY outside the room."""

    positional: ClassVar[tuple[str, ...]] = ("number",)
    rest: ClassVar[bool] = False
    number: TaskNumber
    room: str | None = None


class AddArgs(Args):
    positional: ClassVar[tuple[str, ...]] = ("title",)
    labels: ClassVar[dict[str, str]] = {"assign": "WHO", "due": "WHEN", "share": "AGENCY[,AGENCY]|all"}
    title: str
    assign: str | None = None
    due: str | None = None
    priority: Literal["high", "normal", "low"] = "normal"
    share: str | None = None
    room: str | None = None

    @field_validator("title")
    @classmethod
    def _title(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("a task needs a title")
        if len(value) > TITLE_MAX:
            raise ValueError(f"titles are at most {TITLE_MAX} characters (this one is {len(value)})")
        return value

    @field_validator("priority", mode="before")
    @classmethod
    def _priority(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("share")
    @classmethod
    def _share(cls, value: str | None) -> str | None:
        if value is None:
            return None
        keys = list(dict.fromkeys(part.lower() for part in re.split(r"[,\s]+", value) if part))
        bad = [key for key in keys if key != SHARE_EVERYONE and not _AGENCY.fullmatch(key)]
        if bad or not keys:
            raise ValueError("must be agency keys separated by commas (social-care,health), or all")
        if SHARE_EVERYONE in keys and len(keys) > 1:
            raise ValueError("all already means every agency in the room: give all, or agency keys")
        return ",".join(keys)

    def shares(self) -> tuple[str, ...]:
        """The agency keys to share with (`all`: every agency in the room)."""
        return tuple(self.share.split(",")) if self.share else ()


class ListArgs(Args):
    mine: bool = False
    overdue: bool = False
    all: bool = False
    room: str | None = None


class DoneArgs(TaskArgs):
    positional: ClassVar[tuple[str, ...]] = ("number", "note")
    rest: ClassVar[bool] = True
    private: ClassVar[frozenset[str]] = frozenset({"note"})
    note: str | None = None

    @field_validator("note")
    @classmethod
    def _text(cls, value: str | None) -> str | None:
        return _note(value)


class AssignArgs(TaskArgs):
    positional: ClassVar[tuple[str, ...]] = ("number", "who")
    rest: ClassVar[bool] = True
    who: str


class NoteArgs(TaskArgs):
    positional: ClassVar[tuple[str, ...]] = ("number", "text")
    rest: ClassVar[bool] = True
    private: ClassVar[frozenset[str]] = frozenset({"text"})
    text: str

    @field_validator("text")
    @classmethod
    def _text(cls, value: str) -> str:
        note = _note(value)
        if note is None:
            raise ValueError("a note needs some text")
        return note
