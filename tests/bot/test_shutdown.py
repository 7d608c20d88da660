"""Graceful shutdown of `python -m bot serve` on SIGTERM, for real: a subprocess on SQLite, a fake Bot
Connector that holds the reply (and an outbox post) in flight, and SIGTERM in the middle."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from sqlalchemy import text

from core.db import Database
from core.outbox import service as outbox
from tests import fixtures
from tests.fakes.connector import FakeConnector

ROOT = Path(__file__).resolve().parents[2]
HELD = "19:held-outbox@thread.tacv2"


class SlowConnector(FakeConnector):
    """The fake Bot Connector, answering POSTs into some conversations only after a delay."""

    def __init__(self, delays: dict[str, float]) -> None:
        super().__init__()
        self.delays = delays
        self.arrived: dict[str, threading.Event] = {key: threading.Event() for key in delays}
        self.released = threading.Event()  # ends every delay (at teardown: the fake's stop waits for handlers)

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        for key, seconds in self.delays.items():
            if request.method == "POST" and key in request.path:
                self.arrived[key].set()
                until = time.monotonic() + seconds
                while time.monotonic() < until and not self.released.is_set():
                    await asyncio.sleep(0.05)
        return await super()._dispatch(request)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env(tmp_path: Path, port: int, **more: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPSROOM_", "Microsoft"))}
    env.update({"DATABASE_URL": f"sqlite:///{tmp_path}/bot.db", "HOST": "127.0.0.1", "PORT": str(port),
                "PYTHONPATH": str(ROOT), "PYTHONFAULTHANDLER": "1", **more})  # fmt: skip
    return env


def _post(url: str, body: dict[str, Any], timeout: float = 30.0) -> tuple[int, dict[str, str]]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers)


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _wait_until_up(base: str, process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "the bot exited at start"
        try:
            if _get(f"{base}/readyz")[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError("the bot did not become ready")


@pytest.fixture
def connector() -> Iterator[SlowConnector]:
    fake = SlowConnector({fixtures.PERSONAL_CONVERSATION_ID: 2.0, HELD: 60.0})
    fake.start_sync()
    try:
        for person in fixtures.team_members():
            fake.add_member(fixtures.PERSONAL_CONVERSATION_ID, person)
        yield fake
    finally:
        fake.released.set()
        fake.stop_sync()


def _queue_held_post(url: str, connector: FakeConnector) -> int:
    """An outbox row, as an action would have left it, into the conversation whose posts hang."""
    reference = json.dumps({"bot": {"id": "28:bot"}, "channelId": "msteams", "serviceUrl": connector.url,
                            "conversation": {"id": HELD, "conversationType": "channel", "tenantId": "t1"}})
    db = Database(url)
    try:
        row = db.transaction(lambda s: outbox.enqueue(session=s, kind="notice", reference=reference,
                                                      activity={"type": "message", "text": "notice"},
                                                      now=datetime.now(UTC)))  # fmt: skip
        assert row is not None and row.id is not None
        return row.id
    finally:
        db.close()


def test_sigterm_finishes_the_turn_in_flight_gives_back_the_outbox_and_exits_0(
    tmp_path: Path, connector: SlowConnector
) -> None:
    port = _free_port()
    env = _env(tmp_path, port, OPSROOM_SHUTDOWN_TIMEOUT="8", OPSROOM_SHUTDOWN_DRAIN_SECONDS="1")
    subprocess.run([sys.executable, "-m", "bot", "db", "upgrade"], cwd=tmp_path, env=env, check=True,
                   capture_output=True, timeout=60)  # fmt: skip
    held = _queue_held_post(env["DATABASE_URL"], connector)
    log_path = tmp_path / "bot.log"
    base = f"http://127.0.0.1:{port}"
    with log_path.open("wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "bot", "serve"], cwd=tmp_path, env=env, stdout=log,
                                   stderr=subprocess.STDOUT)  # fmt: skip
        try:
            _wait_until_up(base, process, timeout=60)
            assert connector.arrived[HELD].wait(10), "the sender never took the outbox row"
            activity = fixtures.load("personal_message", service_url=connector.url, text="/help")
            answer: dict[str, Any] = {}
            turn = threading.Thread(target=lambda: answer.update(
                zip(("status", "headers"), _post(f"{base}/api/messages", activity), strict=True)))
            turn.start()
            assert connector.arrived[fixtures.PERSONAL_CONVERSATION_ID].wait(10), "no reply was attempted"

            signalled = datetime.now(UTC)
            process.send_signal(signal.SIGTERM)
            time.sleep(0.3)
            # Draining: readiness fails and a new message is refused, while the turn in flight goes on.
            assert _get(f"{base}/readyz") == (503, b'{"status": "unavailable", "reason": "shutting down"}')
            later = fixtures.load("personal_message", service_url=connector.url, text="/help")
            status, headers = _post(f"{base}/api/messages", later)
            assert status == 503 and headers.get("Retry-After") == "5"

            turn.join(15)
            assert answer.get("status") in (200, 201), answer
            # Our part ends well within the timeout; the interpreter's own exit comes on top (slow on a busy
            # machine), which the watchdog would cut at the timeout plus its reserve.
            assert process.wait(timeout=30) == 0
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGABRT)  # PYTHONFAULTHANDLER: every thread's stack, into the log
                time.sleep(1)
                process.kill()
                process.wait()
                print(log_path.read_text()[-6000:])
    with pytest.raises(OSError):  # nobody listens any more
        _get(f"{base}/healthz")

    db = Database(env["DATABASE_URL"])
    try:
        events = db.transaction(lambda s: [dict(r._mapping) for r in s.execute(text(
            "SELECT activity_id, action, outcome, request_id FROM audit_event ORDER BY seq"))], readonly=True)
        row = db.transaction(lambda s: s.execute(text(
            "SELECT status, claimed_by, attempts FROM outbox_message WHERE id = :id"), {"id": held}).one(), readonly=True)
    finally:
        db.close()
    mine = [e for e in events if e["activity_id"] == activity["id"]]
    assert [(e["action"], e["outcome"]) for e in mine] == [("help", "ok")]
    assert mine[0]["request_id"] == answer["headers"]["X-Request-Id"]
    assert not [e for e in events if e["activity_id"] == later["id"]]  # refused: never reached the bot
    # The post cut off by the shutdown is given back at once (not left to its lease), its attempt not counted.
    assert (row.status, row.claimed_by, row.attempts) == ("pending", None, 0)
    lines = [json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")]
    assert any(line.get("request_id") == mine[0]["request_id"] for line in lines)
    assert any("gave back 1 unsent" in line["message"] for line in lines)
    stopped = [datetime.fromisoformat(line["time"]) for line in lines if line["message"] == "opsroom stopped"]
    assert stopped and (stopped[0] - signalled).total_seconds() < 8, "shutdown overran its timeout"
    assert connector.activities()[-1].get("text")  # the reply reached Teams


def test_serving_freezes_start_up_and_collects_the_young_generation_less_often() -> None:
    from bot import __main__ as entry

    before = gc.get_threshold()
    try:
        entry._collect_less()
        assert gc.get_threshold() == entry.GC_THRESHOLD
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
