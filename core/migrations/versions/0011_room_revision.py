"""A room's revision: a number the database raises with every change to its tasks, shares or members.

* room.revision: raised by triggers, in the writing transaction, on every insert, update or delete of
  a row of task, task_share or room_member (for a share, the room of its task). No code writes it, so
  no write path can forget to: a process may keep what it read of a room's tasks and members and
  reuse it for as long as the room it reads at the start of a request still carries the same number
  (core/rooms/states.py). Changes to the room row itself do not raise it: every request reads that row.
  Nor does a member's `last_seen_at`, written by their requests at most hourly (the access review reads
  it from the table): a member's update raises it only when one of MEMBER_COLUMNS changes. A migration
  that adds a column to room_member must add it to the trigger (the test compares them with the model).

A later migration must not rebuild task, task_share or room_member with a batch copy on SQLite: the
copy would drop these triggers (tests/core/test_room_revision.py checks they are there at head).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

TABLES = ("task", "task_share", "room_member")
MEMBER_COLUMNS = ("id", "room_id", "aad_id", "tenant_id", "name", "role", "agency", "joined_at", "expires_at",
                  "no_export", "digest_personal", "isa_ref", "invitation_id", "revoked_at")  # fmt: skip
"""Every room_member column but last_seen_at."""
_ROOM_OF = {"task": "{row}.room_id", "room_member": "{row}.room_id",
            "task_share": "(SELECT room_id FROM task WHERE id = {row}.task_id)"}  # fmt: skip


def _event(table: str, op_name: str) -> str:
    """`INSERT`, `DELETE`, `UPDATE`, or for room_member `UPDATE OF` its columns but last_seen_at."""
    if table == "room_member" and op_name == "update":
        return f"UPDATE OF {', '.join(MEMBER_COLUMNS)}"
    return op_name.upper()


def _sqlite_triggers() -> list[str]:
    out = []
    for table in TABLES:
        room_of = _ROOM_OF[table]
        rooms = {"insert": room_of.format(row="NEW"), "delete": room_of.format(row="OLD"),
                 "update": f"{room_of.format(row='OLD')}, {room_of.format(row='NEW')}"}  # fmt: skip
        for op_name, ids in rooms.items():
            out.append(f"""CREATE TRIGGER room_revision_{table}_{op_name}
                AFTER {_event(table, op_name)} ON {table}
                BEGIN UPDATE room SET revision = revision + 1 WHERE id IN ({ids}); END""")
    return out


_PG_FUNCTION = """CREATE FUNCTION room_revision_raise() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    new_room integer;
    old_room integer;
BEGIN
    IF TG_TABLE_NAME = 'task_share' THEN
        IF TG_OP <> 'DELETE' THEN SELECT room_id INTO new_room FROM task WHERE id = NEW.task_id; END IF;
        IF TG_OP <> 'INSERT' THEN SELECT room_id INTO old_room FROM task WHERE id = OLD.task_id; END IF;
    ELSE
        IF TG_OP <> 'DELETE' THEN new_room := NEW.room_id; END IF;
        IF TG_OP <> 'INSERT' THEN old_room := OLD.room_id; END IF;
    END IF;
    UPDATE room SET revision = revision + 1 WHERE id = new_room OR id = old_room;
    RETURN NULL;
END $$"""


def upgrade() -> None:
    # A plain ADD COLUMN (a batch copy of room would drop nothing here, but stays the rule).
    op.add_column("room", sa.Column("revision", sa.Integer, nullable=False, server_default="0"))
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_PG_FUNCTION)
        for table in TABLES:
            op.execute(f"""CREATE TRIGGER room_revision AFTER INSERT OR {_event(table, "update")} OR DELETE
                ON {table} FOR EACH ROW EXECUTE FUNCTION room_revision_raise()""")
    else:
        for statement in _sqlite_triggers():
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in TABLES:
            op.execute(f"DROP TRIGGER room_revision ON {table}")
        op.execute("DROP FUNCTION room_revision_raise()")
    else:
        for table in TABLES:
            for op_name in ("insert", "update", "delete"):
                op.execute(f"DROP TRIGGER room_revision_{table}_{op_name}")
    op.drop_column("room", "revision")
