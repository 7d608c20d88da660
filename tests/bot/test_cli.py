"""`python -m bot`: db upgrade, audit verify (with checkpoints), and refusing unsafe starts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import text

from core import schema
from core.audit import service, signing
from core.audit.models import EventDraft
from core.audit.signing import Signer
from core.db import Database

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean_env = {k: v for k, v in os.environ.items() if not k.startswith(("OPSROOM_", "Microsoft"))}
    clean_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "bot", *args], cwd=ROOT, env=clean_env,
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_db_upgrade_then_verify_then_tamper(db_url: str, tmp_path: Path) -> None:
    key = _key_file(tmp_path)
    env = {"DATABASE_URL": db_url, "OPSROOM_AUDIT_SIGNING_KEY_FILE": str(key)}
    upgraded = run("db", "upgrade", env=env)
    assert upgraded.returncode == 0, upgraded.stderr
    assert "database at revision" in upgraded.stdout

    db = Database(db_url)
    try:
        assert schema.current_revision(db) == schema.head_revision()
        signing.attach(db.engine, Signer.load(key))
        db.transaction(lambda s: service.append(s, [EventDraft(action=f"a{i}", outcome="ok") for i in range(5)]))
        checkpoints = tmp_path / "checkpoints.jsonl"
        ok = run("audit", "verify", "--checkpoint", str(checkpoints), "--init", env=env)
        assert ok.returncode == 0, ok.stderr
        assert ok.stdout.startswith("audit chain OK: 5 events, head seq 5 hash ")
        assert '"seq": 5' in checkpoints.read_text()

        # A DBA rewrites event 3 behind the triggers' back.
        if db.dialect == "postgresql":
            db.transaction(lambda s: s.execute(text("ALTER TABLE audit_event DISABLE TRIGGER USER")))
        else:
            db.transaction(lambda s: s.execute(text("DROP TRIGGER audit_event_no_update")))
        db.transaction(lambda s: s.execute(text("UPDATE audit_event SET action = 'x' WHERE seq = 3")))
        broken = run("audit", "verify", "--checkpoint", str(checkpoints), env=env)
        assert broken.returncode == 1
        assert broken.stdout.startswith("audit chain BROKEN at seq 3: hash does not match its contents")
        assert checkpoints.read_text().count("\n") == 1  # a bad chain is never checkpointed
    finally:
        db.close()


def test_production_refuses_to_start_without_an_app_id() -> None:
    result = run("serve", env={"OPSROOM_ENV": "production", "OPSROOM_HOME_TENANT_ID": "t"})
    assert result.returncode == 2
    assert "OPSROOM_ENV=production needs MicrosoftAppId" in result.stderr


def test_serve_refuses_an_unmigrated_database(tmp_path: Path) -> None:
    result = run("serve", env={"DATABASE_URL": f"sqlite:///{tmp_path}/new.db"})
    assert result.returncode == 2
    assert "run `python -m bot db upgrade`" in result.stderr


def test_serve_refuses_a_bad_room_template(tmp_path: Path) -> None:
    env = {"DATABASE_URL": f"sqlite:///{tmp_path}/t.db", "OPSROOM_TEMPLATES_DIR": str(tmp_path)}
    assert run("db", "upgrade", env=env).returncode == 0
    (tmp_path / "broken.toml").write_text('name = "x"\nclassification = "SECRET"\ndigest = "07:00"\n')
    result = run("serve", env=env)
    assert result.returncode == 2
    assert "bad room template" in result.stderr and "broken.toml: classification: " in result.stderr


@pytest.mark.parametrize(
    ("edit", "expected"),
    [(lambda text: text.replace("context.room_closed", "context.room_closd", 1), "room_closd"),
     (lambda text: text + "\npermit (principal, action, resource\n", "force.cedar:"),
     (lambda text: text.replace(' Opsroom::Action::"room.reopen",', ""), "room.reopen")],
    ids=["unknown-attribute", "malformed", "uncovered-action"],
)  # fmt: skip
def test_serve_refuses_a_bad_policy_naming_where(tmp_path: Path, edit: Any, expected: str) -> None:
    env = {"DATABASE_URL": f"sqlite:///{tmp_path}/p.db", "OPSROOM_POLICY_FILE": str(tmp_path / "force.cedar")}
    (tmp_path / "force.cedar").write_text(edit((ROOT / "policies" / "opsroom.cedar").read_text()))
    assert run("db", "upgrade", env=env).returncode == 0
    result = run("serve", env=env)
    assert result.returncode == 2 and "opsroom: bad policy: " in result.stderr, result.stderr
    assert "force.cedar" in result.stderr and expected in result.stderr, result.stderr


def test_policy_check_accepts_the_shipped_policy_and_names_the_line_of_a_broken_one(tmp_path: Path) -> None:
    shipped = ROOT / "policies" / "opsroom.cedar"
    ok = run("policy", "check", str(shipped))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout.startswith("policy OK: ") and ok.stdout.strip().endswith(" policies")

    broken = tmp_path / "broken.cedar"
    broken.write_text(shipped.read_text().replace("when { context.room_closed };", "when { context.room_closed ;", 1))
    line = 1 + shipped.read_text().split("when { context.room_closed };")[0].count("\n")
    bad = run("policy", "check", str(broken))
    assert bad.returncode == 1
    assert f"{broken}:{line}: unexpected token `;`" in bad.stdout

    unknown = tmp_path / "unknown.cedar"
    unknown.write_text(shipped.read_text().replace("context.no_export", "context.no_exports", 1))
    line = 1 + shipped.read_text().split("context.no_export")[0].count("\n")
    bad = run("policy", "check", str(unknown))
    assert bad.returncode == 1 and f"{unknown}:{line}: " in bad.stdout and "no_exports" in bad.stdout


def test_policy_check_refuses_a_policy_silent_about_an_action_the_bot_uses(tmp_path: Path) -> None:
    text = (ROOT / "policies" / "opsroom.cedar").read_text()
    start = text.index('@id("supervisor-lists-all-rooms")')
    silent = tmp_path / "silent.cedar"
    silent.write_text(text[:start] + text[text.index("};", start) + 2 :])
    result = run("policy", "check", str(silent))
    assert result.returncode == 1
    assert 'no policy mentions the action "room.list_all"' in result.stdout


# ---- audit verify: signatures, checkpoints, triggers; audit public-key; the signing key at start ----


def _key_file(tmp_path: Path, name: str = "audit-signing-key.pem") -> Path:
    path = tmp_path / name
    path.write_bytes(Signer.generate().private_pem())
    return path


def _signed_store(db_url: str, tmp_path: Path, events: int = 4) -> tuple[dict[str, str], Path]:
    """A migrated store holding `events` events signed with a key file of its own."""
    key = _key_file(tmp_path)
    env = {"DATABASE_URL": db_url, "OPSROOM_AUDIT_SIGNING_KEY_FILE": str(key)}
    assert run("db", "upgrade", env=env).returncode == 0
    db = Database(db_url)
    try:
        signing.attach(db.engine, Signer.load(key))
        for i in range(events):
            db.transaction(lambda s, i=i: service.append(s, [EventDraft(action=f"a{i}", outcome="ok")]))
    finally:
        db.close()
    return env, key


def test_verify_reports_signatures_and_triggers(db_url: str, tmp_path: Path) -> None:
    env, _ = _signed_store(db_url, tmp_path)

    result = run("audit", "verify", env=env)

    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("audit chain OK: 4 events, head seq 4 hash ")
    assert lines[1].startswith("signatures OK: every event is covered by a valid signature (newest signed head seq 4;")
    second = "audit_event_no_truncate in place and enabled" if "postgresql" in db_url else "audit_event_no_delete in place"
    assert f"append-only: audit_event: triggers audit_event_no_update and {second}" in lines


def test_verify_with_only_the_public_key_rejects_a_forged_tail(db_url: str, tmp_path: Path) -> None:
    env, _ = _signed_store(db_url, tmp_path)
    public = tmp_path / "audit-public.pem"
    printed = run("audit", "public-key", env=env)
    assert printed.returncode == 0 and printed.stdout.startswith("-----BEGIN PUBLIC KEY-----")
    public.write_text(printed.stdout)
    db = Database(db_url)  # someone with the database and this code, but not the key
    try:
        db.transaction(lambda s: service.append(s, [EventDraft(action="forged", outcome="ok")]))
    finally:
        db.close()

    result = run("audit", "verify", "--public-key", str(public), env={"DATABASE_URL": db_url})

    assert result.returncode == 1
    assert result.stdout.startswith("audit chain BROKEN at seq 5: not covered by a valid signature "
                                    "(unsigned tail: seq 5 not signed) (4 events verified before it)")  # fmt: skip
    other = run("audit", "verify", "--public-key", str(_key_file(tmp_path, "other.pem")), env=env)
    assert other.returncode == 1
    assert other.stdout.startswith("audit chain BROKEN at seq 1: not covered by a valid signature "
                                   "(the signature at seq 1 does not verify)")  # fmt: skip


def test_a_missing_or_emptied_checkpoint_file_is_an_error_without_init(db_url: str, tmp_path: Path) -> None:
    env, _ = _signed_store(db_url, tmp_path)
    points = tmp_path / "checkpoints.jsonl"

    missing = run("audit", "verify", "--checkpoint", str(points), env=env)
    assert missing.returncode == 1 and not points.exists()
    assert missing.stdout.startswith(f"checkpoint file {points} is missing: ")
    assert "give --init to start a new one" in missing.stdout

    started = run("audit", "verify", "--checkpoint", str(points), "--init", env=env)
    assert started.returncode == 0, started.stdout
    assert '"seq": 4' in points.read_text() and '"signed": 4' in points.read_text()
    assert run("audit", "verify", "--checkpoint", str(points), env=env).returncode == 0

    points.write_text("")
    emptied = run("audit", "verify", "--checkpoint", str(points), env=env)
    assert emptied.returncode == 1 and emptied.stdout.startswith(f"checkpoint file {points} is empty: ")

    alone = run("audit", "verify", "--init", env=env)
    assert alone.returncode == 2 and "--init starts a --checkpoint file" in alone.stderr


def test_dropped_or_disabled_triggers_fail_verify(db_url: str, tmp_path: Path) -> None:
    env, _ = _signed_store(db_url, tmp_path)
    db = Database(db_url)
    try:
        if db.dialect == "postgresql":
            db.transaction(lambda s: s.execute(text("ALTER TABLE audit_event DISABLE TRIGGER audit_event_no_update")))
            expected = "append-only protection MISSING: audit_event: trigger audit_event_no_update is DISABLED, and role "
        else:
            db.transaction(lambda s: s.execute(text("DROP TRIGGER audit_event_no_delete")))
            expected = "append-only protection MISSING: audit_event: trigger audit_event_no_delete is MISSING"
    finally:
        db.close()

    result = run("audit", "verify", env=env)

    assert result.returncode == 1
    assert result.stdout.startswith("audit chain OK: 4 events")  # the chain itself is intact
    assert expected in result.stdout


def test_verify_names_the_events_from_before_signing(db_url: str, tmp_path: Path) -> None:
    key = _key_file(tmp_path)
    env = {"DATABASE_URL": db_url, "OPSROOM_AUDIT_SIGNING_KEY_FILE": str(key)}
    db = Database(db_url)
    try:
        cfg = Config()
        cfg.set_main_option("script_location", str(schema.MIGRATIONS))
        with db.engine.connect() as connection:
            cfg.attributes["connection"] = connection
            command.upgrade(cfg, "0004")
            connection.commit()
        db.transaction(lambda s: service.append(s, [EventDraft(action=f"old{i}", outcome="ok") for i in range(3)]))
    finally:
        db.close()
    assert run("db", "upgrade", env=env).returncode == 0

    result = run("audit", "verify", env=env)

    assert result.returncode == 0, result.stdout
    assert "signatures OK: every event after seq 3 is covered by a valid signature (none signed yet;" in result.stdout
    assert "3 events before signing began (seq <= 3) are covered by the hash chain only" in result.stdout


def test_production_refuses_to_start_without_a_signing_key_file(tmp_path: Path) -> None:
    env = {"OPSROOM_ENV": "production", "OPSROOM_HOME_TENANT_ID": "t", "MicrosoftAppId": "app",
           "OPSROOM_HOME_DOMAINS": "force.example", "DATABASE_URL": f"sqlite:///{tmp_path}/p.db"}  # fmt: skip
    result = run("serve", env=env)
    assert result.returncode == 2
    assert "OPSROOM_ENV=production needs OPSROOM_AUDIT_SIGNING_KEY_FILE" in result.stderr

    missing = run("serve", env=env | {"OPSROOM_AUDIT_SIGNING_KEY_FILE": str(tmp_path / "none.pem")})
    assert missing.returncode == 2 and "is not a file" in missing.stderr


def test_local_mode_makes_a_signing_key_once_and_says_so(tmp_path: Path) -> None:
    clean_env = {k: v for k, v in os.environ.items() if not k.startswith(("OPSROOM_", "Microsoft"))}

    def public_key() -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "bot", "audit", "public-key"], cwd=tmp_path, env=clean_env,
                              capture_output=True, text=True, timeout=60, check=False)  # fmt: skip

    first, second = public_key(), public_key()

    key = tmp_path / "var" / "audit-signing-key.pem"
    assert first.returncode == 0 and key.exists()
    assert "*** NEW AUDIT SIGNING KEY written to var/audit-signing-key.pem" in first.stderr
    assert "NEW AUDIT SIGNING KEY" not in second.stderr
    assert first.stdout == second.stdout == Signer.load(key).public_pem()
