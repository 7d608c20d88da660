"""Kill the server (SIGKILL) in the middle of a load: every acknowledged request's audit event survives."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import aiohttp
from sqlalchemy import text

from core.audit import service
from core.db import Database
from tests import fixtures
from tests.fakes.connector import FakeConnector

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def wait_until_up(url: str, process: subprocess.Popen[bytes]) -> None:
    async with aiohttp.ClientSession() as http:
        for _ in range(200):
            assert process.poll() is None, "the server died while starting"
            try:
                async with http.get(url) as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
    raise AssertionError("the server did not start")


async def test_a_killed_server_loses_no_acknowledged_audit_event(
    db: Database, db_url: str, connector: FakeConnector
) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPSROOM_", "Microsoft"))}
    env.update(DATABASE_URL=db_url, PORT=str(port), OPSROOM_HOME_TENANT_ID=fixtures.HOME_TENANT,
               OPSROOM_LOG_LEVEL="WARNING")  # fmt: skip
    process = subprocess.Popen([sys.executable, "-m", "bot", "serve"], cwd=ROOT, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    acknowledged: list[str] = []
    try:
        await wait_until_up(f"http://127.0.0.1:{port}/healthz", process)
        url = f"http://127.0.0.1:{port}/api/messages"

        async with aiohttp.ClientSession() as http:

            async def one() -> None:
                activity = fixtures.load("channel_message_mention", service_url=connector.url, text="help")
                try:
                    async with http.post(url, data=json.dumps(activity),
                                         headers={"Content-Type": "application/json"}) as response:  # fmt: skip
                        if response.status == 201:
                            acknowledged.append(activity["id"])
                except aiohttp.ClientError:
                    pass  # in flight when the server died: not acknowledged

            async def kill_soon() -> None:
                while len(acknowledged) < 40:
                    await asyncio.sleep(0.005)
                process.send_signal(signal.SIGKILL)

            await asyncio.gather(kill_soon(), *(one() for _ in range(300)))
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)
    assert 40 <= len(acknowledged) < 300  # the kill landed in the middle of the load
    stored = db.transaction(lambda s: {r[0] for r in s.execute(text(
        "SELECT activity_id FROM audit_event WHERE action = 'help'"))}, readonly=True)  # fmt: skip
    assert set(acknowledged) <= stored
    result = db.transaction(service.verify, readonly=True)
    assert result.ok, result
