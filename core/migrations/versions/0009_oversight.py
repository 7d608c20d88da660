"""Audit oversight: indexes for `/audit` filters, exports offered in Teams, misuse monitoring.

* audit_event: indexes (action, seq), (actor_agency, seq), (decision, seq), so that each filter of
  `/audit` walks an index backwards from a seq (keyset paging) instead of scanning the table.
* audit_export: an export a supervisor asked for in Teams, offered with a file consent card, until
  they accept (the file is written and uploaded, a disclosure event recorded) or decline.
* oversight_cursor: how far the misuse monitor has read the audit trail, and which process holds
  the lease to read on (one reader across processes; the cursor moves in the transaction that
  writes the alerts, so a restart neither repeats nor loses one).
* oversight_target: the supervisors' conversation alerts go to (`/oversight here`).
* oversight_alert: each alert raised (sent, or muted), unique per rule, subject and triggering event.
* oversight_mute: `/oversight mute RULE DURATION --reason`.
* room.working_hours: a room's own working hours for the guest-after-hours rule (None: the rule's).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_index("ix_audit_event_action_seq", "audit_event", ["action", "seq"])
    op.create_index("ix_audit_event_agency_seq", "audit_event", ["actor_agency", "seq"])
    op.create_index("ix_audit_event_decision_seq", "audit_event", ["decision", "seq"])
    op.create_table(
        "audit_export",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("requested_at", _WHEN, nullable=False),
        sa.Column("requested_by", sa.String(64), nullable=False),
        sa.Column("requested_tenant", sa.String(64)),
        sa.Column("requested_name", sa.String(256)),
        sa.Column("conversation_id", sa.String(512), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("recipients", sa.Text, nullable=False),
        sa.Column("filters", sa.Text, nullable=False),
        sa.Column("format", sa.String(8), nullable=False),
        sa.Column("upto_seq", sa.BigInteger, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("file_name", sa.String(128), nullable=False),
        sa.Column("rows", sa.Integer),
        sa.Column("size", sa.BigInteger),
        sa.Column("sha256", sa.String(64)),
        sa.Column("answered_at", _WHEN),
    )
    op.create_table(
        "oversight_cursor",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("last_seq", sa.BigInteger, nullable=False),
        sa.Column("owner", sa.String(64)),
        sa.Column("lease_until", _WHEN),
        sa.Column("updated_at", _WHEN, nullable=False),
    )
    op.create_table(
        "oversight_target",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("conversation_id", sa.String(512), nullable=False),
        sa.Column("tenant_id", sa.String(64)),
        sa.Column("service_url", sa.String(512), nullable=False),
        sa.Column("reference", sa.Text, nullable=False),
        sa.Column("registered_by", sa.String(64), nullable=False),
        sa.Column("registered_at", _WHEN, nullable=False),
    )
    op.create_table(
        "oversight_alert",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("rule", sa.String(48), nullable=False),
        sa.Column("subject", sa.String(64), nullable=False),
        sa.Column("subject_name", sa.String(256)),
        sa.Column("first_seq", sa.BigInteger, nullable=False),
        sa.Column("last_seq", sa.BigInteger, nullable=False),
        sa.Column("at", _WHEN, nullable=False),
        sa.Column("raised_at", _WHEN, nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("outbox_id", sa.Integer),
        sa.UniqueConstraint("rule", "subject", "last_seq", name="uq_oversight_alert"),
    )
    op.create_index("ix_oversight_alert_rule_subject_at", "oversight_alert", ["rule", "subject", "at"])
    op.create_table(
        "oversight_mute",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("rule", sa.String(48), nullable=False),
        sa.Column("until", _WHEN, nullable=False),
        sa.Column("by_aad_id", sa.String(64), nullable=False),
        sa.Column("by_name", sa.String(256)),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("at", _WHEN, nullable=False),
    )
    op.create_index("ix_oversight_mute_rule_until", "oversight_mute", ["rule", "until"])
    with op.batch_alter_table("room") as batch:
        batch.add_column(sa.Column("working_hours", sa.String(32)))


def downgrade() -> None:
    with op.batch_alter_table("room") as batch:
        batch.drop_column("working_hours")
    op.drop_index("ix_oversight_mute_rule_until", "oversight_mute")
    op.drop_table("oversight_mute")
    op.drop_index("ix_oversight_alert_rule_subject_at", "oversight_alert")
    op.drop_table("oversight_alert")
    op.drop_table("oversight_target")
    op.drop_table("oversight_cursor")
    op.drop_table("audit_export")
    op.drop_index("ix_audit_event_decision_seq", "audit_event")
    op.drop_index("ix_audit_event_agency_seq", "audit_event")
    op.drop_index("ix_audit_event_action_seq", "audit_event")
