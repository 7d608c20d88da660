"""Starting, watching and stopping the benchmark's server subprocesses."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    """An ephemeral port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_mb(pid: int) -> float:
    """Resident set size (VmRSS) of a process, in MB (MiB)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process (all its threads) has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def wait_healthy(url: str, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """Poll url every 10 ms until it answers 200; raise if the process dies or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.01)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")


def stop(proc: subprocess.Popen[bytes] | subprocess.Popen[str]) -> None:
    """Terminate one process we started, killing it if it lingers."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


class Server:
    """A bot server subprocess with its log file; `url` is its base URL."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], port: int, log: Path) -> None:
        self.name = name
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self._log = log.open("wb")
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                                     stdout=self._log, stderr=subprocess.STDOUT)  # fmt: skip
        self.ready_after = 0.0

    def wait_ready(self) -> float:
        """Seconds from process start until /healthz answered."""
        wait_healthy(f"{self.url}/healthz", self.proc)
        self.ready_after = time.perf_counter() - self.started
        return self.ready_after

    @property
    def pid(self) -> int:
        """The server's process id."""
        return self.proc.pid

    def close(self) -> None:
        """Stop the process and close its log."""
        stop(self.proc)
        self._log.close()

    def __enter__(self) -> Server:
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None,
                 tb: TracebackType | None) -> None:  # fmt: skip
        self.close()


def echo_server(log_dir: Path) -> Server:
    """The sample-style echo bot on a fresh port, in local mode."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("Microsoft")}
    argv = [PYTHON, "-m", "bench.servers", "echo", "--port", str(port)]
    return Server("echo", argv, env, port, log_dir / "echo.log")


def raw_server(log_dir: Path) -> Server:
    """The raw aiohttp bot (no botbuilder) on a fresh port, in local mode."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("Microsoft")}
    argv = [PYTHON, "-m", "bench.servers", "raw", "--port", str(port)]
    return Server("raw", argv, env, port, log_dir / "raw.log")


def opsroom_env(database_url: str, port: int = 0) -> dict[str, str]:
    """The opsroom process environment: local mode, the fixture's tenant as home."""
    from tests import fixtures

    env = {k: v for k, v in os.environ.items() if not k.startswith(("Microsoft", "OPSROOM_"))}
    env.update(DATABASE_URL=database_url, HOST="127.0.0.1", PORT=str(port), OPSROOM_ENV="local",
               OPSROOM_HOME_TENANT_ID=fixtures.HOME_TENANT,
               OPSROOM_HOME_DOMAINS="opsroom.example")  # fmt: skip
    return env


def migrate(database_url: str, log: Path) -> None:
    """`python -m bot db upgrade` against database_url."""
    with log.open("ab") as out:
        subprocess.run([PYTHON, "-m", "bot", "db", "upgrade"], cwd=ROOT, env=opsroom_env(database_url),
                       stdout=out, stderr=subprocess.STDOUT, check=True, timeout=120)  # fmt: skip


def opsroom_server(database_url: str, log_dir: Path) -> Server:
    """`python -m bot serve` on a fresh port (the database must already be migrated)."""
    port = free_port()
    argv = [PYTHON, "-m", "bot", "serve"]
    return Server("opsroom", argv, opsroom_env(database_url, port), port, log_dir / "opsroom.log")


class Connector:
    """A connector subprocess (see bench.servers); ask it how many activities it received."""

    def __init__(self, impl: str, *, limits: bool = False) -> None:
        self.impl = impl
        self.proc = subprocess.Popen(
            [PYTHON, "-m", "bench.servers", "connector", "--impl", impl, *(["--limits"] if limits else [])],
            cwd=ROOT,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1,
        )  # fmt: skip
        assert self.proc.stdout is not None
        first = self.proc.stdout.readline()
        if not first:
            raise RuntimeError(f"{impl} connector did not start")
        self.port = int(json.loads(first)["port"])
        self.url = f"http://127.0.0.1:{self.port}/"

    def ask(self, command: str) -> int:
        """Send one command line, read the one-line answer (a count)."""
        return int(self.ask_json(command))

    def ask_json(self, command: str) -> Any:
        """Send one command line, read the one-line JSON answer."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"{self.impl} connector exited")
        return json.loads(line)

    def activities(self) -> int:
        """Activities (sends and replies) received so far."""
        return self.ask("count")

    def created(self) -> str | None:
        """The id of the newest conversation the bot created (a room's thread), if any."""
        found = self.ask_json("created")
        return None if found is None else str(found)

    def last(self) -> dict[str, Any] | None:
        """The newest activity received: `{"conversation": ID, "activity": {...}}`."""
        found = self.ask_json("last")
        return found if isinstance(found, dict) else None

    @property
    def pid(self) -> int:
        """The connector's process id."""
        return self.proc.pid

    def close(self) -> None:
        """Close its stdin (it exits), then make sure."""
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            stop(self.proc)
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    def __enter__(self) -> Connector:
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None,
                 tb: TracebackType | None) -> None:  # fmt: skip
        self.close()


def measure_startup(work: Path, runs: int = 3, settle: float = 1.0) -> dict[str, dict[str, object]]:
    """Each bot started `runs` times: seconds to /healthz answering, and RSS `settle` s later."""
    database_url = f"sqlite:///{work / 'opsroom-startup.db'}"
    migrate(database_url, work / "migrate.log")
    starters: dict[str, Callable[[], Server]] = {
        "raw": lambda: raw_server(work),
        "echo": lambda: echo_server(work),
        "opsroom": lambda: opsroom_server(database_url, work),
    }
    out: dict[str, dict[str, object]] = {}
    for name, start in starters.items():
        seconds, rss = [], []
        for _ in range(runs):
            with start() as server:
                seconds.append(server.wait_ready())
                time.sleep(settle)
                rss.append(rss_mb(server.pid))
        out[name] = {"seconds": seconds, "rss_idle_mb": rss}
        print(f"  {name:8} start-up {sorted(seconds)[len(seconds) // 2]:.2f} s (median of {runs}), "
              f"idle RSS {sorted(rss)[len(rss) // 2]:.1f} MB", flush=True)  # fmt: skip
    return out
