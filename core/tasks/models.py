"""Tasks: the operation's tasking, numbered per room."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from core.types import UTCDateTime


class Task(SQLModel, table=True):
    """One task in a room; `number` is what people type (`/task done 12`)."""

    __tablename__ = "task"
    __table_args__ = (UniqueConstraint("room_id", "number", name="uq_task_number"),)

    id: int | None = Field(default=None, sa_column=Column(Integer, primary_key=True))
    room_id: int = Field(sa_column=Column(Integer, ForeignKey("room.id"), nullable=False, index=True))
    number: int = Field(sa_column=Column(Integer, nullable=False))
    title: str = Field(sa_column=Column(String(200), nullable=False))
    priority: str = Field(default="normal", sa_column=Column(String(8), nullable=False))
    status: str = Field(default="open", sa_column=Column(String(16), nullable=False))
    due_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    assignee: str | None = Field(default=None, sa_column=Column(String(256)))
    shared_with: str = Field(default="", sa_column=Column(Text, nullable=False))  # comma-separated agencies
    created_by: str = Field(sa_column=Column(String(64), nullable=False))
    created_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    done_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
