"""Operation rooms, their members, and tasks.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "room",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("key", sa.String(32), nullable=False, unique=True),
        sa.Column("name", sa.String(80), nullable=False),
        sa.Column("purpose", sa.Text),
        sa.Column("classification", sa.String(24), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("digest_time", sa.String(5)),
        sa.Column("template", sa.String(40)),
        sa.Column("lead_aad_id", sa.String(64), nullable=False),
        sa.Column("lead_name", sa.String(256)),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("team_id", sa.String(256), index=True),
        sa.Column("opened_in_channel", sa.String(256)),
        sa.Column("space_kind", sa.String(16), nullable=False),
        sa.Column("conversation_id", sa.String(512), nullable=False, unique=True),
        sa.Column("reference", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("closed_reason", sa.Text),
        sa.Column("orphaned", sa.Boolean, nullable=False),
        sa.Column("orphaned_reason", sa.Text),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True)),
    )
    op.create_table(
        "room_member",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("room_id", sa.Integer, sa.ForeignKey("room.id"), nullable=False, index=True),
        sa.Column("aad_id", sa.String(64), nullable=False, index=True),
        sa.Column("tenant_id", sa.String(64)),
        sa.Column("name", sa.String(256)),
        sa.Column("role", sa.String(24), nullable=False),
        sa.Column("agency", sa.String(64)),
        sa.Column("joined_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("room_id", "aad_id", name="uq_room_member"),
    )
    op.create_table(
        "task",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("room_id", sa.Integer, sa.ForeignKey("room.id"), nullable=False, index=True),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("priority", sa.String(8), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True)),
        sa.Column("assignee", sa.String(256)),
        sa.Column("shared_with", sa.Text, nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("done_at", sa.DateTime(timezone=True)),
        sa.UniqueConstraint("room_id", "number", name="uq_task_number"),
    )


def downgrade() -> None:
    op.drop_table("task")
    op.drop_table("room_member")
    op.drop_table("room")
