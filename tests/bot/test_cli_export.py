"""`python -m bot audit export`: the file, its signed disclosure event, and nothing at all when either
cannot be had."""

from __future__ import annotations

import csv
import getpass
import hashlib
import io
import json
import logging
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bot.__main__ import main
from core import schema
from core.audit import service, signing
from core.audit.models import Actor, AuditEvent, EventDraft, Where
from core.audit.signing import Signer
from core.db import Database
from tests.core.support import all_events, raw

ROOT = Path(__file__).resolve().parents[2]
REQUIRED = ("--reason", "IOPC referral 2027/123", "--recipient", "IOPC")


def run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean_env = {k: v for k, v in os.environ.items() if not k.startswith(("OPSROOM_", "Microsoft"))}
    return subprocess.run([sys.executable, "-m", "bot", *args], cwd=ROOT, env=clean_env | env,
                          capture_output=True, text=True, timeout=60, check=False)  # fmt: skip


Cli = Callable[..., tuple[int, str, str]]


@pytest.fixture
def cli(store: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> Iterator[Cli]:  # fmt: skip
    """`python -m bot ARGS` in this process, on the store: (exit code, stdout, stderr)."""
    for name in os.environ:
        if name.startswith(("OPSROOM_", "Microsoft")):
            monkeypatch.delenv(name)
    for name, value in store.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)  # no .env of the work tree
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    quieted = {name: logging.getLogger(name).level for name in ("msrest", "msal", "urllib3", "aiohttp.access",
                                                                "alembic")}  # fmt: skip

    def call(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        try:
            code = main(list(args))
        except SystemExit as exc:  # argparse's usage errors
            code = int(exc.code or 0)
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    yield call
    root.handlers[:], root.level = handlers, level  # main() sends logs to stdout as JSON
    for name, was in quieted.items():  # ... and quiets some libraries' loggers
        logging.getLogger(name).setLevel(was)


@pytest.fixture
def store(db_url: str, tmp_path: Path) -> dict[str, str]:
    """A migrated store with five signed events in two rooms; its env for the CLI."""
    key = tmp_path / "audit-signing-key.pem"
    key.write_bytes(Signer.generate().private_pem())
    env = {"DATABASE_URL": db_url, "OPSROOM_AUDIT_SIGNING_KEY_FILE": str(key)}
    db = Database(db_url)
    try:
        schema.upgrade(db)
        signing.attach(db.engine, Signer.load(key))
        for n in range(5):
            event = EventDraft(action="task.show" if n % 2 else "room.open", outcome="ok",
                               actor=Actor(aad_id=f"aad-{n}", name="=HYPERLINK(\"http://x\")"),
                               where=Where(room_key="OP-LANTERN" if n < 3 else "OP-OTHER"))  # fmt: skip
            db.transaction(lambda s, e=event: service.append(s, [e]))
    finally:
        db.close()
    return env


@pytest.fixture
def outdir(tmp_path: Path) -> Path:
    path = tmp_path / "exports"
    path.mkdir()
    return path


def events(env: dict[str, str]) -> list[AuditEvent]:
    db = Database(env["DATABASE_URL"])
    try:
        return all_events(db)
    finally:
        db.close()


def test_an_export_writes_the_file_and_a_signed_disclosure_naming_why_who_what_and_its_hash(
    store: dict[str, str], outdir: Path
) -> None:
    out = outdir / "lantern.csv"

    result = run("audit", "export", "--room", "op-lantern", "--since", "7d", "--action", "task.*", *REQUIRED,
                 "--recipient", "CPS", "--out", str(out), env=store)  # fmt: skip

    assert result.returncode == 0, result.stderr
    data = out.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    table = list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    assert [row[0] for row in table[1:]] == ["2"]  # OP-LANTERN's task.* events up to the head
    assert table[1][table[0].index("actor_name")] == "'=HYPERLINK(\"http://x\")"
    assert f"exported 1 events (up to seq 5) to {out}: {len(data)} bytes, SHA-256 {digest}" in result.stdout
    assert "disclosure recorded as audit event seq 6" in result.stdout
    event = events(store)[-1]
    assert (event.seq, event.action, event.outcome) == (6, "audit.export", "ok")
    assert (event.actor_kind, event.actor_name) == ("system", f"cli:{getpass.getuser()}")
    assert event.justification == "IOPC referral 2027/123"
    assert json.loads(event.recipients or "") == ["IOPC", "CPS"]
    arguments = json.loads(event.arguments)
    assert {k: arguments[k] for k in ("room_key", "action", "format", "upto_seq", "rows", "sha256", "size")} == {
        "room_key": "OP-LANTERN", "action": "task.*", "format": "csv", "upto_seq": 5, "rows": 1,
        "sha256": digest, "size": len(data)}  # fmt: skip
    assert "since" in arguments and digest in (event.detail or "")

    verified = run("audit", "verify", env=store)  # the export's event is signed like any other
    assert verified.returncode == 0, verified.stdout
    assert "signatures OK: every event is covered by a valid signature (newest signed head seq 6;" in verified.stdout


def test_the_format_follows_the_file_name_and_values_are_as_stored(
    cli: Cli, store: dict[str, str], outdir: Path
) -> None:
    out = outdir / "all.jsonl"

    code, _, err = cli("audit", "export", *REQUIRED, "--out", str(out))

    assert code == 0, err
    lines = [json.loads(line) for line in out.read_text("utf-8").splitlines()]
    assert [line["hash"] for line in lines] == [e.hash for e in events(store)[:5]]
    assert lines[0]["actor_name"] == "=HYPERLINK(\"http://x\")"  # JSON lines is data, never neutralised
    assert json.loads(events(store)[-1].arguments)["format"] == "jsonl"


@pytest.mark.parametrize(
    ("args", "message"),
    [(("--recipient", "IOPC"), "the following arguments are required: --reason"),
     (("--reason", "IOPC 1"), "the following arguments are required: --recipient"),
     (("--reason", "  ", "--recipient", "IOPC"), "give a reason"),
     (("--reason", "IOPC 1", "--recipient", " "), "give at least one recipient"),
     ((*REQUIRED, "--since", "last week"), "--since: 'last week' is not a time I understand"),
     ((*REQUIRED, "--since", "1d", "--until", "2d"), "--since 1d is not before --until 2d"),
     ((*REQUIRED, "--user", "jo.bloggs@force.example"), "--user takes the Entra object id"),
     ((*REQUIRED, "--format", "xlsx"), "invalid choice: 'xlsx'")],
    ids=["no-reason", "no-recipient", "blank-reason", "blank-recipient", "bad-since", "empty-period", "upn",
         "format"],
)  # fmt: skip
def test_a_usage_error_exits_2_and_writes_nothing(
    cli: Cli, store: dict[str, str], outdir: Path, args: tuple[str, ...], message: str
) -> None:
    code, _, err = cli("audit", "export", *args, "--out", str(outdir / "x.csv"))

    assert code == 2 and message in err, err
    assert list(outdir.iterdir()) == [] and len(events(store)) == 5


def test_an_existing_file_is_never_overwritten_without_force(cli: Cli, store: dict[str, str], outdir: Path) -> None:
    out = outdir / "x.csv"
    out.write_text("keep me")

    code, _, err = cli("audit", "export", *REQUIRED, "--out", str(out))

    assert code == 2 and f"{out} exists" in err
    assert out.read_text() == "keep me" and len(events(store)) == 5
    forced, _, err = cli("audit", "export", *REQUIRED, "--out", str(out), "--force")
    assert forced == 0 and out.read_bytes().startswith(b"\xef\xbb\xbfseq,at,"), err


def test_stdout_is_refused_its_hash_could_not_be_recorded(cli: Cli) -> None:
    code, _, err = cli("audit", "export", *REQUIRED, "--out", "-")
    assert code == 2 and "--out must be a file" in err


def test_no_file_is_left_when_the_disclosure_cannot_be_recorded(
    cli: Cli, store: dict[str, str], outdir: Path
) -> None:
    db = Database(store["DATABASE_URL"])
    try:
        if db.dialect == "postgresql":
            raw(db, "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                    "RAISE EXCEPTION 'store refuses'; END $$",
                "CREATE TRIGGER refuse BEFORE INSERT ON audit_event FOR EACH ROW EXECUTE FUNCTION refuse()")  # fmt: skip
        else:
            raw(db, "CREATE TRIGGER refuse BEFORE INSERT ON audit_event BEGIN SELECT RAISE(ABORT, 'store refuses'); END")
    finally:
        db.close()

    code, _, err = cli("audit", "export", *REQUIRED, "--out", str(outdir / "x.csv"))

    assert code == 1
    assert "audit export FAILED, no file written" in err and "store refuses" in err
    assert list(outdir.iterdir()) == [] and len(events(store)) == 5
