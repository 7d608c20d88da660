"""Invitations of partner-agency guests, and what a guest's membership carries.

* invitation: one per (room, email); pending until the person's first activity in the room's
  space binds it to their Entra object id and tenant; revoked by `/revoke`.
* room_member: `isa_ref` (a guest's information-sharing agreement, the justification of what
  they consult), `invitation_id`, `revoked_at`, `last_seen_at` (access review).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "invitation",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("room_id", sa.Integer, sa.ForeignKey("room.id"), nullable=False, index=True),
        sa.Column("agency", sa.String(32), sa.ForeignKey("agency.key"), nullable=False, index=True),
        sa.Column("email", sa.String(320), nullable=False, index=True),
        sa.Column("role", sa.String(24), nullable=False),
        sa.Column("isa_ref", sa.String(64), nullable=False),
        sa.Column("basis", sa.Text),
        sa.Column("no_export", sa.Boolean, nullable=False),
        sa.Column("expires_at", _WHEN, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("invited_by", sa.String(64), nullable=False),
        sa.Column("invited_at", _WHEN, nullable=False),
        sa.Column("updated_at", _WHEN, nullable=False),
        sa.Column("bound_aad_id", sa.String(64), index=True),
        sa.Column("bound_tenant_id", sa.String(64)),
        sa.Column("bound_at", _WHEN),
        sa.Column("revoked_at", _WHEN),
        sa.Column("revoked_by", sa.String(64)),
        sa.Column("graph_user_id", sa.String(64)),
        sa.UniqueConstraint("room_id", "email", name="uq_invitation_room_email"),
    )
    with op.batch_alter_table("room_member") as batch:
        batch.add_column(sa.Column("isa_ref", sa.String(64)))
        batch.add_column(sa.Column("invitation_id", sa.Integer))
        batch.add_column(sa.Column("revoked_at", _WHEN))
        batch.add_column(sa.Column("last_seen_at", _WHEN))


def downgrade() -> None:
    with op.batch_alter_table("room_member") as batch:
        for column in ("last_seen_at", "revoked_at", "invitation_id", "isa_ref"):
            batch.drop_column(column)
    op.drop_table("invitation")
