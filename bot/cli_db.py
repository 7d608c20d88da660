"""`python -m bot db upgrade [--runtime-role ROLE]`, `python -m bot db grants --runtime-role ROLE`, and the
database rights `audit verify` reports (core/privileges).

Migrations run as the role connected (the owner of the tables); `--runtime-role` then gives the bot's own
role what it needs and no more: read and append to the audit trail, never change, empty or drop it, no DDL.
"""

from __future__ import annotations

import argparse
import sys

from bot.config import Settings
from core import privileges, schema
from core.db import Database

_ROLE_HELP = ("the bot's runtime role (PostgreSQL): SELECT, INSERT, UPDATE, DELETE on the application's "
              "tables; SELECT and INSERT only on audit_event and audit_signature; SELECT on audit_meta and "
              "alembic_version; no DDL")  # fmt: skip


def add_db(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The `db` command: `upgrade [--runtime-role ROLE]` and `grants --runtime-role ROLE`."""
    db = sub.add_parser("db", help="database schema and rights")
    commands = db.add_subparsers(dest="db_command", required=True)
    migrate = "apply migrations up to head, as the role connected (the owner)"
    upgrade = commands.add_parser("upgrade", help=migrate)
    upgrade.add_argument("--runtime-role", metavar="ROLE", help=f"then grant {_ROLE_HELP}")
    grants = commands.add_parser("grants", help="print the SQL `db upgrade --runtime-role` applies, without "
                           "applying it (for a DBA to review or run by hand)")  # fmt: skip
    grants.add_argument("--runtime-role", metavar="ROLE", required=True, help=_ROLE_HELP)


def _usage(message: str) -> int:
    print(f"opsroom: db: {message}", file=sys.stderr)
    return 2


def main(settings: Settings, args: argparse.Namespace) -> int:
    """Run `db upgrade` or `db grants`; 0 done, 2 usage or set-up error, 1 the runtime role can still
    change the audit tables after its grants (a superuser, or a member of the owner's role)."""
    role: str | None = args.runtime_role
    if role is not None:
        try:
            privileges.check_role(role)
        except ValueError as exc:
            return _usage(f"--runtime-role: {exc}")
    db = Database(settings.database_url)
    try:
        if role is not None and db.dialect != "postgresql":
            return _usage(f"--runtime-role does not apply to {db.dialect}: {privileges.SQLITE}. Nothing was "
                          "changed; use PostgreSQL for separate owner and runtime roles")  # fmt: skip
        if args.db_command == "grants":
            assert role is not None  # required by the parser
            return _grants(db, role)
        return _upgrade(db, role)
    finally:
        db.close()


def _upgrade(db: Database, role: str | None) -> int:
    schema.upgrade(db)
    print(f"database at revision {schema.current_revision(db)} ({db!r})")
    if role is None:
        return 0
    try:
        applied = db.transaction(lambda session: privileges.apply_grants(session, role))
    except ValueError as exc:
        return _usage(f"--runtime-role: {exc}")
    print(f"granted {role} its runtime rights ({len(applied)} statements; "
          f"`python -m bot db grants --runtime-role {role}` prints them)")  # fmt: skip
    found = db.transaction(lambda session: privileges.rights(session, role), readonly=True)
    return 0 if report_rights(found, fail=True, advice=_GRANT_ADVICE) else 1


def _grants(db: Database, role: str) -> int:
    current, head = schema.current_revision(db), schema.head_revision()
    if current != head:
        return _usage(f"database at revision {current}, code expects {head}: the grants cover the tables the "
                      "migrations make, so run `python -m bot db upgrade` first")  # fmt: skip
    try:
        statements = db.transaction(lambda session: privileges.grant_statements(session, role), readonly=True)
    except ValueError as exc:
        return _usage(f"--runtime-role: {exc}")
    print(privileges.script(statements), end="")
    return 0


VERIFY_ADVICE = ("the bot, and this check, should connect as a runtime role given its rights by "
                 "`python -m bot db upgrade --runtime-role ROLE` (docs/DEPLOY.md)")
_GRANT_ADVICE = ("its grants cannot take rights away from a superuser or a member of the owner's role: "
                 "give the bot a plain LOGIN role of its own (docs/DEPLOY.md)")


def report_rights(found: privileges.Rights, *, fail: bool, advice: str = VERIFY_ADVICE) -> bool:
    """Print the role's rights on the audit tables and, when it could change or drop them or run DDL, a
    WARNING; False when there is a warning and `fail`.

    `audit verify` fails on the warning in production only (OPSROOM_ENV=production). There it runs on a
    schedule with the bot's credentials, and a bot connected as the owner (or a superuser, or with
    UPDATE/DELETE/TRUNCATE or CREATE) lets anyone holding those credentials, and the signing key beside
    them on the same host, drop the triggers and rewrite and re-sign the trail; only a checkpoint kept
    elsewhere would notice. That is a misconfiguration of a control, and a scheduled check that only
    prints goes unread, so it exits 1 until fixed. In local mode one role (often a superuser) owning
    everything is the normal set-up, and the chain, signatures and triggers say what verify is for: the
    rights are reported, not failed.
    """
    for line in found.lines():
        print(line)
    warning = found.warning
    if warning is None:
        return True
    print(f"WARNING: {warning}; {advice}")
    return not fail
