"""Tasking and digests.

* task: the assignee is an Entra object id (with the name Teams gave, for display) or an agency
  key, never free text; sharing moves to task_share (one row per agency, `*` for all); who marked
  it done and when it last changed. The free-text `assignee` of earlier rows cannot be resolved
  to a person: it is kept in the task's history as a note, and the task is left unassigned.
* task_event: each task's history (who, when, what).
* room: `task_seq`, the last task number given out (bumped in the adding transaction, so numbers
  are safe with several processes), and `digest_last_at`.
* room_member: `digest_personal` (`/digest me on`).
* digest_run: the claim on one digest per (room, local date, audience).
* outbox_message: `disclosure`, an audit event appended when the message is delivered.
* personal_chat: the bot's 1:1 chat with each person who installed it or wrote to it.
* agency, agency_domain, agency_tenant: the partner-agency registry tasks are shared with.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "agency",
        sa.Column("key", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("created_by", sa.String(64)),
        sa.Column("created_at", _WHEN, nullable=False),
    )
    op.create_table(
        "agency_domain",
        sa.Column("agency", sa.String(32), sa.ForeignKey("agency.key"), primary_key=True),
        sa.Column("domain", sa.String(255), primary_key=True),
    )
    op.create_table(
        "agency_tenant",
        sa.Column("agency", sa.String(32), sa.ForeignKey("agency.key"), primary_key=True),
        sa.Column("tenant_id", sa.String(64), primary_key=True),
    )
    op.create_table(
        "task_share",
        sa.Column("task_id", sa.Integer, sa.ForeignKey("task.id"), primary_key=True),
        sa.Column("agency", sa.String(64), primary_key=True),
    )
    op.create_table(
        "task_event",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("task_id", sa.Integer, sa.ForeignKey("task.id"), nullable=False, index=True),
        sa.Column("at", _WHEN, nullable=False),
        sa.Column("actor_aad_id", sa.String(64)),
        sa.Column("actor_name", sa.String(256)),
        sa.Column("change", sa.String(16), nullable=False),
        sa.Column("detail", sa.Text),
    )
    bind = op.get_bind()
    rows = bind.execute(sa.text("SELECT id, shared_with, assignee, created_by, created_at FROM task")).all()
    for task_id, shared, assignee, created_by, created_at in rows:
        for agency in sorted({a.strip().lower() for a in (shared or "").split(",") if a.strip()}):
            bind.execute(sa.text("INSERT INTO task_share (task_id, agency) VALUES (:t, :a)"),
                         {"t": task_id, "a": "*" if agency == "all" else agency})  # fmt: skip
        if assignee:
            bind.execute(sa.text("INSERT INTO task_event (task_id, at, actor_aad_id, change, detail) "
                                 "VALUES (:t, :at, :by, 'note', :d)"),
                         {"t": task_id, "at": created_at, "by": created_by,
                          "d": f"assigned before 0006 as typed: {assignee}"})  # fmt: skip
    with op.batch_alter_table("task") as batch:
        batch.drop_column("shared_with")
        batch.drop_column("assignee")
        batch.add_column(sa.Column("assignee_aad_id", sa.String(64)))
        batch.add_column(sa.Column("assignee_tenant_id", sa.String(64)))
        batch.add_column(sa.Column("assignee_name", sa.String(256)))
        batch.add_column(sa.Column("assignee_agency", sa.String(64)))
        batch.add_column(sa.Column("updated_at", _WHEN))
        batch.add_column(sa.Column("done_by", sa.String(64)))
        batch.create_index("ix_task_assignee_aad_id", ["assignee_aad_id"])
        batch.create_index("ix_task_room_status_due", ["room_id", "status", "due_at"])
    with op.batch_alter_table("room") as batch:
        batch.add_column(sa.Column("digest_last_at", _WHEN))
        batch.add_column(sa.Column("task_seq", sa.Integer, nullable=False, server_default="0"))
    op.execute("UPDATE room SET task_seq = "
               "COALESCE((SELECT max(number) FROM task WHERE task.room_id = room.id), 0)")
    with op.batch_alter_table("room_member") as batch:
        batch.add_column(sa.Column("digest_personal", sa.Boolean, nullable=False, server_default=sa.false()))
    op.create_table(
        "digest_run",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("room_id", sa.Integer, sa.ForeignKey("room.id"), nullable=False),
        sa.Column("local_date", sa.String(10), nullable=False),
        sa.Column("audience", sa.String(64), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("at", _WHEN, nullable=False),
        sa.Column("outbox_id", sa.Integer),
        sa.UniqueConstraint("room_id", "local_date", "audience", name="uq_digest_run"),
    )
    with op.batch_alter_table("outbox_message") as batch:
        batch.add_column(sa.Column("disclosure", sa.Text))
    op.create_table(
        "personal_chat",
        sa.Column("aad_id", sa.String(64), primary_key=True),
        sa.Column("tenant_id", sa.String(64)),
        sa.Column("conversation_id", sa.String(512), nullable=False),
        sa.Column("reference", sa.Text, nullable=False),
        sa.Column("updated_at", _WHEN, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("personal_chat")
    with op.batch_alter_table("outbox_message") as batch:
        batch.drop_column("disclosure")
    op.drop_table("digest_run")
    with op.batch_alter_table("room_member") as batch:
        batch.drop_column("digest_personal")
    with op.batch_alter_table("room") as batch:
        batch.drop_column("task_seq")
        batch.drop_column("digest_last_at")
    with op.batch_alter_table("task") as batch:
        batch.drop_index("ix_task_room_status_due")
        batch.drop_index("ix_task_assignee_aad_id")
        for column in ("done_by", "updated_at", "assignee_agency", "assignee_name", "assignee_tenant_id",
                       "assignee_aad_id"):  # fmt: skip
            batch.drop_column(column)
        batch.add_column(sa.Column("assignee", sa.String(256)))
        batch.add_column(sa.Column("shared_with", sa.Text, nullable=False, server_default=""))
    bind = op.get_bind()
    shared = bind.execute(sa.text("SELECT task_id, agency FROM task_share ORDER BY agency")).all()
    for task_id, agency in shared:
        bind.execute(sa.text("UPDATE task SET shared_with = CASE WHEN shared_with = '' THEN :a "
                             "ELSE shared_with || ',' || :a END WHERE id = :t"),
                     {"t": task_id, "a": "all" if agency == "*" else agency})  # fmt: skip
    op.drop_table("task_event")
    op.drop_table("task_share")
    op.drop_table("agency_tenant")
    op.drop_table("agency_domain")
    op.drop_table("agency")
