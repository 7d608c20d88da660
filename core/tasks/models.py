"""Tasks: the operation's tasking, numbered per room, with who they are shared with and their history."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Column, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from core.types import UTCDateTime

PRIORITIES = ("high", "normal", "low")
SHARE_ALL = "*"
"""The task_share agency that means every partner agency in the room (`--share all`)."""


class TaskStatus(StrEnum):
    OPEN = "open"
    DONE = "done"


class Task(SQLModel, table=True):
    """One task in a room; `number` is what people type (`/task done 12`).

    The assignee is a person (Entra object id, with the name Teams gave when assigned, for display)
    or a partner agency (its key), never free text.
    """

    __tablename__ = "task"
    __table_args__ = (
        UniqueConstraint("room_id", "number", name="uq_task_number"),
        Index("ix_task_room_status_due", "room_id", "status", "due_at"),
    )

    id: int | None = Field(default=None, sa_column=Column(Integer, primary_key=True))
    room_id: int = Field(sa_column=Column(Integer, ForeignKey("room.id"), nullable=False, index=True))
    number: int = Field(sa_column=Column(Integer, nullable=False))
    title: str = Field(sa_column=Column(String(200), nullable=False))
    priority: str = Field(default="normal", sa_column=Column(String(8), nullable=False))
    status: str = Field(default=TaskStatus.OPEN, sa_column=Column(String(16), nullable=False))
    due_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    assignee_aad_id: str | None = Field(default=None, sa_column=Column(String(64), index=True))
    assignee_tenant_id: str | None = Field(default=None, sa_column=Column(String(64)))
    assignee_name: str | None = Field(default=None, sa_column=Column(String(256)))
    assignee_agency: str | None = Field(default=None, sa_column=Column(String(64)))
    created_by: str = Field(sa_column=Column(String(64), nullable=False))
    created_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    updated_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    done_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    done_by: str | None = Field(default=None, sa_column=Column(String(64)))

    @property
    def is_open(self) -> bool:
        return self.status == TaskStatus.OPEN


class TaskShare(SQLModel, table=True):
    """A partner agency a task is shared with (`*`: every agency in the room)."""

    __tablename__ = "task_share"

    task_id: int = Field(sa_column=Column(Integer, ForeignKey("task.id"), primary_key=True))
    agency: str = Field(sa_column=Column(String(64), primary_key=True))


class TaskChange(StrEnum):
    CREATED = "created"
    ASSIGNED = "assigned"
    DONE = "done"
    NOTE = "note"
    REOPENED = "reopened"


class TaskEvent(SQLModel, table=True):
    """One change to a task: who, when and what (`/task show` lists them)."""

    __tablename__ = "task_event"

    id: int | None = Field(default=None, sa_column=Column(Integer, primary_key=True))
    task_id: int = Field(sa_column=Column(Integer, ForeignKey("task.id"), nullable=False, index=True))
    at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    actor_aad_id: str | None = Field(default=None, sa_column=Column(String(64)))
    actor_name: str | None = Field(default=None, sa_column=Column(String(256)))
    change: str = Field(sa_column=Column(String(16), nullable=False))
    detail: str | None = Field(default=None, sa_column=Column(Text))
