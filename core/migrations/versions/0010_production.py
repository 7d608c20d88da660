"""Production: a request id on audit events, and the weekly access reminder once per lead.

* audit_event.request_id: the id of the HTTP request (or scheduler run) an event belongs to, which the
  logs carry too. Hashed only when present, so events written before it verify as they always did.
* access_reminder: claimed once per lead and ISO week (`lead_aad_id`), listing every room they lead;
  `room_id` stays for the claims made per room before.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ADD COLUMN (never a batch copy of the table, which would drop its append-only triggers).
    op.add_column("audit_event", sa.Column("request_id", sa.String(32)))
    with op.batch_alter_table("access_reminder") as batch:
        batch.add_column(sa.Column("lead_aad_id", sa.String(64)))
        batch.alter_column("room_id", existing_type=sa.Integer, nullable=True)
        batch.drop_constraint("uq_access_reminder", type_="unique")
        batch.create_unique_constraint("uq_access_reminder_lead", ["lead_aad_id", "week"])


def downgrade() -> None:
    with op.batch_alter_table("access_reminder") as batch:
        batch.drop_constraint("uq_access_reminder_lead", type_="unique")
        batch.create_unique_constraint("uq_access_reminder", ["room_id", "week"])
        batch.alter_column("room_id", existing_type=sa.Integer, nullable=False)
        batch.drop_column("lead_aad_id")
    op.drop_column("audit_event", "request_id")
