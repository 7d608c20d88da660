"""Initial schema: the audit chain (append-only, enforced by triggers) and processed activities.

Revision ID: 0001
Revises:
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_SQLITE_TRIGGERS = [
    """CREATE TRIGGER audit_event_no_update BEFORE UPDATE ON audit_event
       BEGIN SELECT RAISE(ABORT, 'audit_event is append-only: UPDATE refused'); END""",
    """CREATE TRIGGER audit_event_no_delete BEFORE DELETE ON audit_event
       BEGIN SELECT RAISE(ABORT, 'audit_event is append-only: DELETE refused'); END""",
]

_PG_TRIGGERS = [
    """CREATE FUNCTION audit_event_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         RAISE EXCEPTION 'audit_event is append-only: % refused', TG_OP
           USING ERRCODE = 'insufficient_privilege';
       END $$""",
    """CREATE TRIGGER audit_event_no_update BEFORE UPDATE OR DELETE ON audit_event
       FOR EACH ROW EXECUTE FUNCTION audit_event_refuse()""",
    """CREATE TRIGGER audit_event_no_truncate BEFORE TRUNCATE ON audit_event
       FOR EACH STATEMENT EXECUTE FUNCTION audit_event_refuse()""",
]


def upgrade() -> None:
    op.create_table(
        "audit_event",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("at", sa.String(27), nullable=False),
        sa.Column("actor_aad_id", sa.String(64)),
        sa.Column("actor_tenant_id", sa.String(64)),
        sa.Column("actor_name", sa.String(256)),
        sa.Column("actor_kind", sa.String(16)),
        sa.Column("actor_agency", sa.String(64)),
        sa.Column("team_id", sa.String(256)),
        sa.Column("channel_id", sa.String(256)),
        sa.Column("conversation_id", sa.String(512)),
        sa.Column("room_key", sa.String(64)),
        sa.Column("activity_id", sa.String(256)),
        sa.Column("activity_type", sa.String(64)),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("arguments", sa.Text, nullable=False),
        sa.Column("decision", sa.String(8)),
        sa.Column("rule", sa.String(128)),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("justification", sa.Text),
        sa.Column("recipients", sa.Text),
        sa.Column("detail", sa.Text),
        sa.Column("duration_us", sa.Integer),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    op.create_index("ix_audit_event_at", "audit_event", ["at"])
    op.create_index("ix_audit_event_room_seq", "audit_event", ["room_key", "seq"])
    op.create_index("ix_audit_event_actor_seq", "audit_event", ["actor_aad_id", "seq"])
    op.create_table(
        "processed_activity",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("activity_id", sa.String(256), nullable=False),
        sa.Column("at", sa.String(27), nullable=False),
    )
    triggers = _PG_TRIGGERS if op.get_bind().dialect.name == "postgresql" else _SQLITE_TRIGGERS
    for statement in triggers:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TABLE audit_event")
        op.execute("DROP FUNCTION audit_event_refuse()")
    else:
        op.drop_table("audit_event")
    op.drop_table("processed_activity")
