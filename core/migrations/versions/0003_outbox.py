"""The outbox: posts written with the action's transaction, delivered after commit; blocked chats.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "outbox_message",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("dedupe_key", sa.String(160), unique=True),
        sa.Column("room_id", sa.Integer, sa.ForeignKey("room.id")),
        sa.Column("tenant_id", sa.String(64)),
        sa.Column("conversation_id", sa.String(512), nullable=False),
        sa.Column("service_url", sa.String(512), nullable=False),
        sa.Column("reference", sa.Text, nullable=False),
        sa.Column("activity", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("not_before", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_by", sa.String(64)),
        sa.Column("claimed_until", sa.DateTime(timezone=True)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True)),
        sa.Column("sent_activity_id", sa.String(256)),
        sa.Column("last_error", sa.Text),
    )
    op.create_index("ix_outbox_due", "outbox_message", ["status", "not_before"])
    op.create_index("ix_outbox_conversation", "outbox_message", ["conversation_id", "id"])
    op.create_table(
        "conversation_block",
        sa.Column("conversation_id", sa.String(512), primary_key=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("conversation_block")
    op.drop_index("ix_outbox_conversation", "outbox_message")
    op.drop_index("ix_outbox_due", "outbox_message")
    op.drop_table("outbox_message")
