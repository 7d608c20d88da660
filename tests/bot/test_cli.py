"""`python -m bot`: db upgrade, audit verify (with checkpoints), and refusing unsafe starts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from core import schema
from core.audit import service
from core.audit.models import EventDraft
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
    env = {"DATABASE_URL": db_url}
    upgraded = run("db", "upgrade", env=env)
    assert upgraded.returncode == 0, upgraded.stderr
    assert "database at revision" in upgraded.stdout

    db = Database(db_url)
    try:
        assert schema.current_revision(db) == schema.head_revision()
        db.transaction(lambda s: service.append(s, [EventDraft(action=f"a{i}", outcome="ok") for i in range(5)]))
        checkpoints = tmp_path / "checkpoints.jsonl"
        ok = run("audit", "verify", "--checkpoint", str(checkpoints), env=env)
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
