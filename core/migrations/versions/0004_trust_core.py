"""Rooms that are still opening, membership facts the policy reads, and kept replies.

* room: `conversation_id` is empty while a room is `opening` (its card not yet posted);
  `opening_activity` ties an opening room to the request that started it, so a re-send of
  that request never posts a second card.
* room_member: `expires_at` and `no_export`, the membership facts policy decisions read.
* processed_activity: the reply to a request, kept with its claim, and whether it was delivered,
  so that a re-send of a request whose reply never arrived gets it.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("room") as batch:
        batch.alter_column("conversation_id", existing_type=sa.String(512), nullable=True)
        batch.add_column(sa.Column("opening_activity", sa.String(64)))
        batch.create_unique_constraint("uq_room_opening_activity", ["opening_activity"])
    with op.batch_alter_table("room_member") as batch:
        batch.add_column(sa.Column("expires_at", sa.DateTime(timezone=True)))
        batch.add_column(sa.Column("no_export", sa.Boolean, nullable=False, server_default=sa.false()))
    with op.batch_alter_table("processed_activity") as batch:
        batch.add_column(sa.Column("reply", sa.Text))
        batch.add_column(sa.Column("delivered", sa.Boolean, nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("processed_activity") as batch:
        batch.drop_column("delivered")
        batch.drop_column("reply")
    with op.batch_alter_table("room_member") as batch:
        batch.drop_column("no_export")
        batch.drop_column("expires_at")
    op.execute("DELETE FROM room WHERE conversation_id IS NULL")
    with op.batch_alter_table("room") as batch:
        batch.drop_constraint("uq_room_opening_activity", type_="unique")
        batch.drop_column("opening_activity")
        batch.alter_column("conversation_id", existing_type=sa.String(512), nullable=False)
