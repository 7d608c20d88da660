"""A room's revision: a number the database raises with every change to the room or its tasks, shares
or members.

* room.revision: raised by triggers, in the writing transaction, on every update of the room's row and
  every insert, update or delete of a row of task, task_share or room_member (for a share, the room of
  its task). No code writes it, so no write path can forget to: a process may keep what it read of a
  room and reuse it for as long as the room still carries the same number (core/rooms/states.py: its
  open tasks and members; core/rooms/located.py: the room row and memberships every request looks up).

A later migration must not rebuild room, task, task_share or room_member with a batch copy on SQLite:
the copy would drop these triggers (tests/core/test_room_states.py checks they work at head).

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
_ROOM_OF = {"task": "{row}.room_id", "room_member": "{row}.room_id",
            "task_share": "(SELECT room_id FROM task WHERE id = {row}.task_id)"}  # fmt: skip


def _sqlite_triggers() -> list[str]:
    # The room's own row: any update that leaves the revision as it was (those that raise it do not
    # fire it again; SQLite's recursive triggers are off, and the condition holds anyway).
    out = ["""CREATE TRIGGER room_revision_room_update AFTER UPDATE ON room WHEN OLD.revision = NEW.revision
        BEGIN UPDATE room SET revision = revision + 1 WHERE id = NEW.id; END"""]
    for table in TABLES:
        room_of = _ROOM_OF[table]
        rooms = {"insert": room_of.format(row="NEW"), "delete": room_of.format(row="OLD"),
                 "update": f"{room_of.format(row='OLD')}, {room_of.format(row='NEW')}"}  # fmt: skip
        for op_name, ids in rooms.items():
            out.append(f"""CREATE TRIGGER room_revision_{table}_{op_name} AFTER {op_name.upper()} ON {table}
                BEGIN UPDATE room SET revision = revision + 1 WHERE id IN ({ids}); END""")
    return out


_PG_FUNCTIONS = ["""CREATE FUNCTION room_revision_raise() RETURNS trigger LANGUAGE plpgsql AS $$
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
END $$""", """CREATE FUNCTION room_revision_own() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.revision := OLD.revision + 1;
    RETURN NEW;
END $$"""]


def upgrade() -> None:
    op.add_column("room", sa.Column("revision", sa.Integer, nullable=False, server_default="0"))
    if op.get_bind().dialect.name == "postgresql":
        for function in _PG_FUNCTIONS:
            op.execute(function)
        op.execute("""CREATE TRIGGER room_revision BEFORE UPDATE ON room FOR EACH ROW
            WHEN (OLD.revision = NEW.revision) EXECUTE FUNCTION room_revision_own()""")
        for table in TABLES:
            op.execute(f"""CREATE TRIGGER room_revision AFTER INSERT OR UPDATE OR DELETE ON {table}
                FOR EACH ROW EXECUTE FUNCTION room_revision_raise()""")
    else:
        for statement in _sqlite_triggers():
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in ("room", *TABLES):
            op.execute(f"DROP TRIGGER room_revision ON {table}")
        op.execute("DROP FUNCTION room_revision_raise()")
        op.execute("DROP FUNCTION room_revision_own()")
    else:
        op.execute("DROP TRIGGER room_revision_room_update")
        for table in TABLES:
            for op_name in ("insert", "update", "delete"):
                op.execute(f"DROP TRIGGER room_revision_{table}_{op_name}")
    op.drop_column("room", "revision")
