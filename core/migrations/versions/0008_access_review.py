"""Access ending and access review: the clean-up's claim on each ended invitation, and weekly reminders.

* invitation: `ended_at` (the clean-up job claimed the end of this access: told the lead, audited),
  `removal` (what is left to do in Teams: pending | removed | absent | none | manual), `removal_tries`,
  `removal_due_at` (the next attempt, or the lease of one under way), `removal_error` (why the last
  attempt failed). Inviting again (new terms that make the access live) clears them.
* access_reminder: the claim on one room's weekly reminder (room, ISO week), made once whichever
  process asks: `queued` (written to the outbox) or `nothing` (nothing to list that week).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("invitation") as batch:
        batch.add_column(sa.Column("ended_at", _WHEN))
        batch.add_column(sa.Column("removal", sa.String(16)))
        batch.add_column(sa.Column("removal_tries", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("removal_due_at", _WHEN))
        batch.add_column(sa.Column("removal_error", sa.Text))
    op.create_table(
        "access_reminder",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("room_id", sa.Integer, sa.ForeignKey("room.id"), nullable=False),
        sa.Column("week", sa.String(8), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("at", _WHEN, nullable=False),
        sa.Column("outbox_id", sa.Integer),
        sa.UniqueConstraint("room_id", "week", name="uq_access_reminder"),
    )


def downgrade() -> None:
    op.drop_table("access_reminder")
    with op.batch_alter_table("invitation") as batch:
        for column in ("removal_error", "removal_due_at", "removal_tries", "removal", "ended_at"):
            batch.drop_column(column)
