"""Three bot processes on one PostgreSQL database and one fake Bot Connector, stepped together through a
simulated month that crosses both clock changes: London's spring-forward (28 March 2027) for one room,
Sydney's fall-back (4 April 2027) for the other. Requests go to the processes in turn, as a load balancer
would send them; every process runs every tick at every step. One process is killed in the middle of a
digest fan-out (Teams throttling it at the time) and never comes back.

What must hold: exactly one digest per room per local day; each ended access cleaned up once; one weekly
access reminder per lead; the misuse alert raised once; and one gapless audit chain from all three that
verifies with its signatures.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import text

from bench.procs import free_port
from core.audit import service, signing
from core.db import Database
from tests import fixtures
from tests.fakes.connector import FakeConnector
from tests.scenarios.rooms_support import BEN, SAM, SAM_EMAIL, SUPERVISOR, register_agencies

ROOT = Path(__file__).resolve().parents[2]
START = datetime(2027, 3, 14, 10, 0, tzinfo=UTC)  # a Sunday; both rooms' first digest is the next morning
DAYS = 30
STEP = timedelta(hours=4)
KILL_AT = START + timedelta(days=9, hours=22)  # 08:00 UTC on 24 March: London's digest is being sent

pytestmark = pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)


class Replicas:
    """The processes, the shared clock and the connector."""

    def __init__(self, connector: FakeConnector, clock: Path, env: dict[str, str], logs: Path) -> None:
        self.connector, self.clock, self.env, self.logs = connector, clock, env, logs
        self.procs: list[subprocess.Popen[bytes]] = []
        self.ports: list[int] = []
        self.turn = 0
        self.session: aiohttp.ClientSession | None = None

    def set_clock(self, now: datetime) -> None:
        self.clock.write_text(now.isoformat())

    async def start(self, count: int) -> None:
        self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60))
        for n in range(count):
            port = free_port()
            log = (self.logs / f"worker-{n}.log").open("wb")
            self.procs.append(subprocess.Popen([sys.executable, "-m", "tests.replicas.worker", "--port", str(port),
                                                "--clock", str(self.clock)], cwd=ROOT, env=self.env,
                                               stdout=log, stderr=subprocess.STDOUT))  # fmt: skip
            self.ports.append(port)
        for port in self.ports:
            await self._healthy(port)

    async def _healthy(self, port: int) -> None:
        assert self.session is not None
        for _ in range(300):
            try:
                async with self.session.get(f"http://127.0.0.1:{port}/healthz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
        raise AssertionError(f"a worker did not start: see {self.logs}")

    def live(self) -> list[int]:
        return [n for n, proc in enumerate(self.procs) if proc.poll() is None]

    async def send(self, activity: dict[str, Any]) -> dict[str, Any]:
        """POST an activity to the next live process (round robin)."""
        assert self.session is not None
        live = self.live()
        port = self.ports[live[self.turn % len(live)]]
        self.turn += 1
        async with self.session.post(f"http://127.0.0.1:{port}/api/messages", json=activity) as response:
            assert response.status in (200, 201), await response.text()
            return activity

    async def tick(self, n: int) -> dict[str, int]:
        assert self.session is not None
        async with self.session.post(f"http://127.0.0.1:{self.ports[n]}/test/tick") as response:
            assert response.status == 200, await response.text()
            found: dict[str, int] = await response.json()
            return found

    async def tick_all(self) -> list[dict[str, int]]:
        return list(await asyncio.gather(*(self.tick(n) for n in self.live())))

    async def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        if self.session is not None:
            await self.session.close()


@asynccontextmanager
async def replicas(db_url: str, tmp_path: Path, count: int = 3) -> AsyncIterator[Replicas]:
    connector = FakeConnector().start_sync()
    connector.set_team(fixtures.TEAM_ID, fixtures.TEAM_NAME, fixtures.TEAM_AAD_GROUP_ID)
    for person in fixtures.team_members():
        for conversation in (fixtures.TEAM_ID, fixtures.PERSONAL_CONVERSATION_ID,
                             fixtures.GROUP_CHAT_CONVERSATION_ID):  # fmt: skip
            connector.add_member(conversation, person)
    key = tmp_path / "audit-signing-key.pem"
    signing.load_or_create(key, create=True)
    clock = tmp_path / "clock.txt"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPSROOM_", "Microsoft"))}
    env.update({"DATABASE_URL": db_url, "OPSROOM_AUDIT_SIGNING_KEY_FILE": str(key),
                "OPSROOM_HOME_TENANT_ID": fixtures.HOME_TENANT, "OPSROOM_HOME_DOMAINS": "opsroom.example",
                "OPSROOM_SUPERVISORS": fixtures.SUPERVISOR_AAD, "OPSROOM_OVERSIGHT_SECONDS": "3600",
                "OPSROOM_LOG_LEVEL": "WARNING"})  # fmt: skip
    running = Replicas(connector, clock, env, tmp_path)
    running.set_clock(START)
    try:
        await running.start(count)
        yield running
    finally:
        await running.close()
        connector.stop_sync()


def load(running: Replicas, name: str, text_: str, **overrides: Any) -> dict[str, Any]:
    return fixtures.load(name, service_url=running.connector.url, text=text_, **overrides)


def in_thread(running: Replicas, thread: str, text_: str, **overrides: Any) -> dict[str, Any]:
    activity = load(running, "channel_message_mention", text_, **overrides)
    activity["conversation"] = {**activity["conversation"], "id": thread}
    return activity


def rows(db: Database, sql: str) -> list[tuple[Any, ...]]:
    return db.transaction(lambda s: [tuple(r) for r in s.execute(text(sql))], readonly=True)


async def drained(db: Database, timeout: float = 20.0) -> None:
    """Every outbox row sent (or given up): what the processes' senders had to post, posted."""
    for _ in range(int(timeout / 0.05)):
        if rows(db, "SELECT count(*) FROM outbox_message WHERE status IN ('pending', 'sending')") == [(0,)]:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(rows(db, "SELECT id, kind, status, attempts, last_error FROM outbox_message "
                                  "WHERE status IN ('pending', 'sending')"))  # fmt: skip


async def holding_claims(running: Replicas, db: Database) -> int:
    """The process whose sender holds a digest it is posting (Teams slow to refuse it): mid-fan-out."""
    pids = {str(proc.pid): n for n, proc in enumerate(running.procs)}
    for _ in range(200):
        for (worker,) in rows(db, "SELECT claimed_by FROM outbox_message WHERE status = 'sending' AND kind = "
                                  "'digest'"):  # fmt: skip
            pid = str(worker).split(":")[1]
            if pid in pids:
                return pids[pid]
        await asyncio.sleep(0.05)
    raise AssertionError("no process was seen holding a digest it had not delivered")


async def world(running: Replicas, db: Database) -> dict[str, str]:
    """Two rooms (London and Sydney), guests whose access ends within the month, Ada's chat with the bot,
    the supervisors' conversation, and a burst of refusals by Ben: the conversation ids."""
    register_agencies(db)
    opened: dict[str, str] = {}
    for name, key in (("Operation Lantern", "OP-LANTERN"), ("Operation Kestrel", "OP-KESTREL")):
        await running.send(load(running, "channel_message_mention", f"room open {name}"))
        await drained(db)
        [(conversation,)] = rows(db, f"SELECT conversation_id FROM room WHERE key = '{key}'")
        opened[key] = str(conversation)
    db.transaction(lambda s: s.execute(text("UPDATE room SET timezone = 'Australia/Sydney' "
                                            "WHERE key = 'OP-KESTREL'")))  # fmt: skip
    lantern, kestrel = opened["OP-LANTERN"], opened["OP-KESTREL"]
    await running.send(in_thread(running, lantern, f"invite socialcare {SAM_EMAIL} --isa ISA-1 --expires 2027-03-24"))
    await running.send(in_thread(running, lantern, "invite socialcare kim@socialcare.example --isa ISA-1 "
                                                    "--expires 2027-04-02"))  # fmt: skip
    await running.send(in_thread(running, kestrel, "invite health nia@nhs.example --isa ISA-7 --expires 2027-04-06"))
    await running.send(in_thread(running, lantern, "room status", from_=SAM))  # Sam binds
    await running.send(load(running, "personal_message", "help"))  # Ada's chat: her reminders go there
    supervisors = load(running, "group_chat_message", "oversight here", from_=SUPERVISOR)
    await running.send(supervisors)
    await running.tick_all()  # the misuse monitor starts reading here (it never alerts on what came before)
    for _ in range(6):  # Ben, not the lead, tries to close the room: refused six times in a minute
        await running.send(in_thread(running, lantern, "room close", from_=BEN))
    await drained(db)
    return {**opened, "supervisors": supervisors["conversation"]["id"]}


async def test_three_processes_through_a_month_do_everything_once(db: Database, db_url: str,
                                                                  tmp_path: Path) -> None:  # fmt: skip
    async with replicas(db_url, tmp_path) as running:
        where = await world(running, db)
        now, killed = START, False
        while now < START + timedelta(days=DAYS):
            now += STEP
            running.set_clock(now)
            if now >= KILL_AT and not killed:
                rule = running.connector.fail_next(10_000, 429, retry_after=1, path_contains="/activities",
                                                   method="POST", delay=5.0)  # fmt: skip
                ticking = asyncio.ensure_future(running.tick_all())
                victim = await holding_claims(running, db)  # a process with digests claimed, not yet posted
                running.procs[victim].kill()  # SIGKILL: no clean-up of any kind
                running.procs[victim].wait()
                killed = True
                await asyncio.gather(ticking, return_exceptions=True)
                with running.connector._lock:  # Teams lets posts through again
                    running.connector._failures.remove(rule)
                continue  # the rest is posted at later steps, by the two processes left
            await running.tick_all()
            await drained(db)
        assert killed and len(running.live()) == 2
        await drained(db)
        posts = running.connector.activities()

    # One digest per room per local day: a claim for every day (each at most once: the claim is unique), and
    # as many digests reached Teams as were queued (a skip is a day whose time passed beyond the grace window).
    for key in ("OP-LANTERN", "OP-KESTREL"):
        claims = rows(db, f"SELECT local_date, outcome FROM digest_run JOIN room ON room.id = digest_run.room_id "
                          f"WHERE room.key = '{key}' AND audience = '' ORDER BY local_date")  # fmt: skip
        dates = [datetime.fromisoformat(c[0]).date() for c in claims]
        assert dates == [dates[0] + timedelta(days=n) for n in range(len(dates))] and len(dates) >= DAYS, key
        sent = [p for p in posts if p.conversation_id == where[key] and p.kind == "send" and "summary" in p]
        queued = [c for c in claims if c[1] == "queued"]
        assert len(sent) == len(queued) >= DAYS - 1, (key, len(sent), claims)
    # Each ended access cleaned up once.
    ended = Counter(email for (arguments,) in rows(db, "SELECT arguments FROM audit_event WHERE action = "
                                                       "'access.ended'") for email in json.loads(arguments)["emails"])
    assert ended == Counter({SAM_EMAIL: 1, "kim@socialcare.example": 1, "nia@nhs.example": 1})
    assert rows(db, "SELECT count(*) FROM invitation WHERE ended_at IS NULL") == [(0,)]
    # One weekly reminder per lead: Ada leads both rooms.
    reminders = rows(db, "SELECT lead_aad_id, week, outcome FROM access_reminder ORDER BY week")
    weeks = [int(r[1][-2:]) for r in reminders]
    assert {r[0] for r in reminders} == {fixtures.OFFICER_AAD} and weeks == list(range(weeks[0], weeks[0] + 5))
    weekly = [p for p in posts if p.conversation_id == fixtures.PERSONAL_CONVERSATION_ID and
              "Weekly access review" in json.dumps(p)]  # fmt: skip
    assert len(weekly) == sum(1 for r in reminders if r[2] == "queued") >= 2
    # The burst of refusals: one alert, posted once.
    assert rows(db, "SELECT rule, subject, outcome FROM oversight_alert") == [
        ("denial-burst", fixtures.OFFICER2_AAD, "queued")]
    alerts = [p for p in posts if p.conversation_id == where["supervisors"] and p.kind == "send"]
    assert len(alerts) == 1
    # One chain, from all three processes, gapless and signed.
    keys = signing.load_or_create(tmp_path / "audit-signing-key.pem", create=False).signer.keyring()
    result = db.transaction(lambda s: service.verify(s, keys=keys), readonly=True)
    [(count, head)] = rows(db, "SELECT count(*), max(seq) FROM audit_event")
    assert result.ok and result.count == count == head, result
