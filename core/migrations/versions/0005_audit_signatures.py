"""Signed chain heads, and where signing began.

* audit_signature: an Ed25519 signature over (seq, hash, from_seq) of each append's last event,
  written in the append's transaction; it vouches for the events from_seq..seq (0: all of them).
  Append-only like audit_event.
* audit_meta: facts about the store; `signing_began_after` is the chain head when this migration
  ran. Events up to it were written before signing existed and are covered by the hash chain only;
  every later event must be covered by a signature.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_TABLES = ("audit_signature", "audit_meta")


def _sqlite_triggers(table: str) -> list[str]:
    return [
        f"""CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table}
       BEGIN SELECT RAISE(ABORT, '{table} is append-only: UPDATE refused'); END""",
        f"""CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table}
       BEGIN SELECT RAISE(ABORT, '{table} is append-only: DELETE refused'); END""",
    ]


_PG_FUNCTION = """CREATE FUNCTION audit_append_only_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
           USING ERRCODE = 'insufficient_privilege';
       END $$"""


def _pg_triggers(table: str) -> list[str]:
    return [
        f"""CREATE TRIGGER {table}_no_update BEFORE UPDATE OR DELETE ON {table}
       FOR EACH ROW EXECUTE FUNCTION audit_append_only_refuse()""",
        f"""CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}
       FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only_refuse()""",
    ]


def upgrade() -> None:
    op.create_table(
        "audit_signature",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("signature", sa.String(128), nullable=False),
        sa.Column("key_id", sa.String(32), nullable=False),
        sa.Column("from_seq", sa.BigInteger, nullable=False),
        sa.Column("at", sa.String(27), nullable=False),
    )
    meta = op.create_table(
        "audit_meta",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.String(256), nullable=False),
    )
    bind = op.get_bind()
    head = bind.execute(sa.text("SELECT max(seq) FROM audit_event")).scalar()
    op.bulk_insert(meta, [{"key": "signing_began_after", "value": str(int(head or 0))}])
    if bind.dialect.name == "postgresql":
        op.execute(_PG_FUNCTION)
        statements = [s for table in _TABLES for s in _pg_triggers(table)]
    else:
        statements = [s for table in _TABLES for s in _sqlite_triggers(table)]
    for statement in statements:
        op.execute(statement)


def downgrade() -> None:
    for table in reversed(_TABLES):
        op.drop_table(table)
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION audit_append_only_refuse()")
