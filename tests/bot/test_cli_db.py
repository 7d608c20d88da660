"""`python -m bot db upgrade --runtime-role`, `db grants`, and the rights `audit verify` reports: migrations
as an owner role, the bot as a runtime role that does its work and cannot tamper with the audit trail."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from sqlmodel import Session

from bot.__main__ import main
from core import schema
from core.audit import service, signing
from core.audit.models import EventDraft
from core.audit.signing import Signer
from core.db import Database
from core.outbox import service as outbox
from tests.core.roles_support import Roles, connect, granted, owner_and_runtime

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
REFERENCE = ('{"activityId": "1", "bot": {"id": "28:bot"}, "channelId": "msteams", "serviceUrl": '
             '"https://smba.trafficmanager.net/emea/", "conversation": {"id": "19:ops@thread.tacv2", '
             '"tenantId": "tenant-1"}}')  # fmt: skip


def run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean_env = {k: v for k, v in os.environ.items() if not k.startswith(("OPSROOM_", "Microsoft"))}
    return subprocess.run([sys.executable, "-m", "bot", *args], cwd=ROOT, env=clean_env | env,
                          capture_output=True, text=True, timeout=120, check=False)  # fmt: skip


@dataclass(frozen=True)
class Ran:
    """What a `python -m bot` run gave (the fields of subprocess.CompletedProcess the tests read)."""

    returncode: int
    stdout: str
    stderr: str


Cli = Callable[..., Ran]


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Iterator[Cli]:
    """`python -m bot ARGS` in this process (a subprocess pays for the imports every time): cli(*args, env=...)."""
    monkeypatch.chdir(tmp_path)  # no .env of the work tree
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    quieted = {name: logging.getLogger(name).level for name in ("msrest", "msal", "urllib3", "aiohttp.access",
                                                                "alembic")}  # fmt: skip

    def call(*args: str, env: dict[str, str]) -> Ran:
        for name in os.environ:
            if name.startswith(("OPSROOM_", "Microsoft")) or name == "DATABASE_URL":
                monkeypatch.delenv(name)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        capsys.readouterr()
        try:
            code = main(list(args))
        except SystemExit as exc:  # argparse's usage errors
            code = int(exc.code or 0)
        captured = capsys.readouterr()
        return Ran(code, captured.out, captured.err)

    yield call
    root.handlers[:], root.level = handlers, level  # main() sends logs to stdout as JSON
    for name, was in quieted.items():  # ... and quiets some libraries' loggers
        logging.getLogger(name).setLevel(was)


@pytest.fixture
def roles(pg_database_url: str) -> Iterator[Roles]:
    """An owner, a runtime role and a database the owner owns (not migrated yet); dropped after."""
    with owner_and_runtime(pg_database_url) as made:
        yield made


@pytest.fixture
def key(tmp_path: Path) -> Path:
    path = tmp_path / "audit-signing-key.pem"
    path.write_bytes(Signer.generate().private_pem())
    return path


def _upgrade(cli: Cli, roles: Roles, key: Path) -> Ran:
    """`db upgrade --runtime-role RUNTIME`, connected as the owner."""
    env = {"DATABASE_URL": roles.owner_url, "OPSROOM_AUDIT_SIGNING_KEY_FILE": str(key)}
    return cli("db", "upgrade", "--runtime-role", roles.runtime, env=env)


def _bots_work(url: str, key: Path) -> int:
    """What the bot does in a turn, as the role of `url`: audit events appended (and signed) with an outbox
    row, the row claimed and marked sent. Returns the chain head."""
    db = Database(url)
    try:
        signing.attach(db.engine, Signer.load(key))

        def turn(session: Session) -> None:
            service.append(session, [EventDraft(action="room.open", outcome="ok"),
                                     EventDraft(action="task.add", outcome="ok")])  # fmt: skip
            outbox.enqueue(session=session, kind="notice", reference=REFERENCE,
                           activity={"type": "message", "text": "hello"}, now=NOW)  # fmt: skip

        db.transaction(turn)
        claimed = db.transaction(lambda s: outbox.claim(session=s, worker="w1", now=NOW,
                                                        lease=timedelta(seconds=60), limit=10))  # fmt: skip
        assert len(claimed) == 1 and claimed[0].id is not None
        message_id = claimed[0].id
        assert db.transaction(lambda s: outbox.mark_sent(session=s, message_id=message_id, worker="w1",
                                                         now=NOW, activity_id="a1"))  # fmt: skip
        result = db.transaction(lambda s: service.verify(s, ()), readonly=True)
        assert result.ok, result.reason
        return result.head_seq
    finally:
        db.close()


TAMPERING = [
    ("UPDATE audit_event SET action = 'x' WHERE seq = 1", "permission denied for table audit_event"),
    ("DELETE FROM audit_event WHERE seq = 1", "permission denied for table audit_event"),
    ("TRUNCATE audit_event", "permission denied for table audit_event"),
    ("UPDATE audit_signature SET key_id = 'x'", "permission denied for table audit_signature"),
    ("DELETE FROM audit_signature", "permission denied for table audit_signature"),
    ("TRUNCATE audit_signature", "permission denied for table audit_signature"),
    ("INSERT INTO audit_meta (key, value) VALUES ('k', 'v')", "permission denied for table audit_meta"),
    ("UPDATE alembic_version SET version_num = '0001'", "permission denied for table alembic_version"),
    ("CREATE TABLE shadow (id int)", "permission denied for schema public"),
    ("DROP TABLE audit_event", "must be owner of table audit_event"),
    ("ALTER TABLE audit_event DISABLE TRIGGER USER", "must be owner of table audit_event"),
    ("ALTER TABLE audit_signature ADD COLUMN note text", "must be owner of table audit_signature"),
    ("DROP TRIGGER audit_event_no_update ON audit_event", "must be owner of relation audit_event"),
    ("CREATE SCHEMA shadow", "permission denied for database"),
]


def test_migrate_as_owner_then_the_runtime_role_works_but_cannot_tamper(roles: Roles, key: Path) -> None:
    env = {"DATABASE_URL": roles.owner_url, "OPSROOM_AUDIT_SIGNING_KEY_FILE": str(key)}
    upgraded = run("db", "upgrade", "--runtime-role", roles.runtime, env=env)  # the real command line, once
    assert upgraded.returncode == 0, upgraded.stdout + upgraded.stderr
    assert f"database at revision {schema.head_revision()}" in upgraded.stdout
    assert f"granted {roles.runtime} its runtime rights (" in upgraded.stdout
    assert (f"database rights of {roles.runtime}: audit_event SELECT, INSERT; no UPDATE, DELETE, TRUNCATE; "
            "no DDL") in upgraded.stdout.splitlines()  # fmt: skip
    assert "WARNING" not in upgraded.stdout

    head = _bots_work(roles.runtime_url, key)

    assert head == 2
    refused = []
    with connect(roles.runtime_url) as runtime:
        for statement, message in TAMPERING:
            with pytest.raises(psycopg.errors.InsufficientPrivilege) as caught:
                runtime.execute(statement)
            # The rights refuse it, not (only) the append-only trigger, which raises the same SQLSTATE.
            assert "append-only" not in str(caught.value), statement
            if message not in str(caught.value):
                refused.append(f"{statement}: {caught.value}")
    assert refused == []
    with connect(roles.admin_url) as admin:
        assert admin.execute("SELECT count(*) FROM audit_event").fetchone() == (2,)
        assert admin.execute("SELECT to_regclass('shadow')").fetchone() == (None,)


def test_verify_reports_the_rights_as_runtime_and_warns_as_owner(cli: Cli, roles: Roles, key: Path) -> None:
    assert _upgrade(cli, roles, key).returncode == 0
    _bots_work(roles.runtime_url, key)
    env = {"OPSROOM_AUDIT_SIGNING_KEY_FILE": str(key)}

    as_runtime = cli("audit", "verify", env=env | {"DATABASE_URL": roles.runtime_url})
    as_owner = cli("audit", "verify", env=env | {"DATABASE_URL": roles.owner_url})

    assert as_runtime.returncode == 0, as_runtime.stdout + as_runtime.stderr
    lines = as_runtime.stdout.splitlines()
    assert lines[0].startswith("audit chain OK: 2 events")
    assert lines[-3:] == [
        f"database rights of {roles.runtime}: audit_event SELECT, INSERT; no UPDATE, DELETE, TRUNCATE; no DDL",
        f"database rights of {roles.runtime}: audit_signature SELECT, INSERT; no UPDATE, DELETE, TRUNCATE; no DDL",
        f"database rights of {roles.runtime}: audit_meta SELECT; no INSERT, UPDATE, DELETE, TRUNCATE; no DDL",
    ]  # fmt: skip
    assert "WARNING" not in as_runtime.stdout
    assert as_owner.returncode == 0, as_owner.stdout + as_owner.stderr  # local mode: reported, not failed
    assert (f"database rights of {roles.owner}: audit_event SELECT, INSERT, UPDATE, DELETE, TRUNCATE; owner; "
            "DDL") in as_owner.stdout.splitlines()  # fmt: skip
    assert (f"WARNING: role {roles.owner} can change or drop the audit tables or run DDL: it owns audit_event, "
            "audit_signature, audit_meta") in as_owner.stdout  # fmt: skip

    production = env | {"OPSROOM_ENV": "production", "OPSROOM_HOME_TENANT_ID": "t", "MicrosoftAppId": "app",
                        "OPSROOM_HOME_DOMAINS": "force.example"}  # fmt: skip
    prod_owner = cli("audit", "verify", env=production | {"DATABASE_URL": roles.owner_url})
    prod_runtime = cli("audit", "verify", env=production | {"DATABASE_URL": roles.runtime_url})
    assert prod_owner.returncode == 1, prod_owner.stdout + prod_owner.stderr
    assert prod_owner.stdout.startswith("audit chain OK: 2 events") and "WARNING: role " in prod_owner.stdout
    assert prod_runtime.returncode == 0, prod_runtime.stdout + prod_runtime.stderr


def _sql(printed: str) -> list[str]:
    """The statements of a `db grants` script, without its comments and transaction lines."""
    lines = [line for line in printed.splitlines() if line and not line.startswith("--")]
    assert lines[0] == "BEGIN;" and lines[-1] == "COMMIT;"
    return lines[1:-1]


def test_the_printed_sql_is_what_is_applied_and_again_changes_nothing(cli: Cli, roles: Roles, key: Path) -> None:
    assert _upgrade(cli, roles, key).returncode == 0
    applied = granted(roles.admin_url, roles.runtime)
    owner_env = {"DATABASE_URL": roles.owner_url}
    printed = cli("db", "grants", "--runtime-role", roles.runtime, env=owner_env)
    assert printed.returncode == 0, printed.stderr
    statements = _sql(printed.stdout)
    assert f"GRANT SELECT, INSERT ON TABLE public.audit_event TO {roles.runtime};" in statements
    assert (f"REVOKE UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON TABLE public.audit_event "
            f"FROM {roles.runtime};") in statements  # fmt: skip

    # A DBA takes everything back, then applies the printed script by hand, as the owner.
    who = sql.Identifier(roles.runtime)
    with connect(roles.owner_url) as owner:
        for revoke in ("REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {}",
                       "REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {}",
                       "REVOKE ALL ON SCHEMA public FROM {}"):  # fmt: skip
            owner.execute(sql.SQL(revoke).format(who))
        owner.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM {}").format(sql.Identifier(roles.database), who))
        assert granted(roles.admin_url, roles.runtime) == set()
        owner.execute(printed.stdout.encode())
    assert granted(roles.admin_url, roles.runtime) == applied

    again = _upgrade(cli, roles, key)
    assert again.returncode == 0, again.stdout + again.stderr
    assert granted(roles.admin_url, roles.runtime) == applied
    reprinted = cli("db", "grants", "--runtime-role", roles.runtime, env=owner_env)
    assert reprinted.stdout == printed.stdout
    assert f"({len(statements)} statements;" in again.stdout


def test_upgrade_refuses_a_missing_or_owning_runtime_role(cli: Cli, roles: Roles, key: Path) -> None:
    env = {"DATABASE_URL": roles.owner_url}
    missing = cli("db", "upgrade", "--runtime-role", "opsroom_nobody_here", env=env)
    itself = cli("db", "upgrade", "--runtime-role", roles.owner, env=env)

    assert missing.returncode == 2 and "role opsroom_nobody_here does not exist" in missing.stderr
    assert itself.returncode == 2 and f"role {roles.owner} is the role connected" in itself.stderr


def test_a_runtime_role_that_is_a_superuser_fails_the_upgrade(cli: Cli, roles: Roles, key: Path) -> None:
    with connect(roles.admin_url) as admin:
        admin.execute(sql.SQL("ALTER ROLE {} SUPERUSER").format(sql.Identifier(roles.runtime)))

    upgraded = _upgrade(cli, roles, key)

    assert upgraded.returncode == 1
    assert f"WARNING: role {roles.runtime} can change or drop the audit tables or run DDL: it is a superuser" \
        in upgraded.stdout  # fmt: skip


def test_sqlite_has_no_roles_to_grant_to(cli: Cli, tmp_path: Path, key: Path) -> None:
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'opsroom.db'}", "OPSROOM_AUDIT_SIGNING_KEY_FILE": str(key)}

    refused = cli("db", "upgrade", "--runtime-role", "opsroom_app", env=env)
    printed = cli("db", "grants", "--runtime-role", "opsroom_app", env=env)

    for result in (refused, printed):
        assert result.returncode == 2
        assert "--runtime-role does not apply to sqlite: SQLite: no database roles" in result.stderr
        assert "Nothing was changed" in result.stderr
    assert not (tmp_path / "opsroom.db").exists()  # not half done: nothing migrated either

    assert cli("db", "upgrade", env=env).returncode == 0
    verified = cli("audit", "verify", env=env)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert ("database rights: SQLite: no database roles; the file's permissions and the triggers protect the "
            "audit tables") in verified.stdout.splitlines()  # fmt: skip


def test_a_bad_role_name_is_refused_before_connecting(cli: Cli) -> None:
    env = {"DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"}

    result = cli("db", "upgrade", "--runtime-role", "app; DROP TABLE audit_event", env=env)

    assert result.returncode == 2 and "is not a role name" in result.stderr
