"""Smoke test: the pinned Microsoft 365 Agents Playground (tools/playground) against the running bot.

Both run as real processes: `python -m bot serve` in local mode on SQLite in a tmp folder, with the
settings `make playground-bot` uses (tools/playground/bot.env), and the playground, headless, pointed
at it. The test then uses the playground as its web page does: it posts what a person types to the
playground's own conversation API and reads the conversation stream (WebSocket) the page renders. So
the activities that reach the bot are the playground's, and what is read back is what the bot sent the
playground's connector. Skipped, saying why, where Node.js is missing or the package cannot be had.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from dotenv import dotenv_values

ROOT = Path(__file__).resolve().parents[2]
TOOL = ROOT / "tools" / "playground"
PACKAGE = "@microsoft/m365agentsplayground"
CLI = Path("node_modules") / "@microsoft" / "m365agentsplayground" / "cli.js"
REPLY_SECONDS = 15.0


def pinned_version() -> str:
    """The exact version tools/playground/package.json pins."""
    version = str(json.loads((TOOL / "package.json").read_text())["devDependencies"][PACKAGE])
    assert re.fullmatch(r"\d+\.\d+\.\d+", version), f"{PACKAGE} must be pinned exactly, not {version!r}"
    return version


def installed_version(folder: Path) -> str | None:
    """The playground version installed under folder/node_modules, if any."""
    manifest = folder / "node_modules" / "@microsoft" / "m365agentsplayground" / "package.json"
    return str(json.loads(manifest.read_text())["version"]) if manifest.exists() else None


def free_port() -> int:
    """An ephemeral port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop a process this test started: SIGTERM, then SIGKILL if it lingers."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def wait_for(check: Callable[[], bool], proc: subprocess.Popen[bytes], what: str, log: Path,
             timeout: float = 45.0) -> None:  # fmt: skip
    """Poll check() until true; fail with the process's log when it dies or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"{what} exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        with contextlib.suppress(OSError):
            if check():
                return
        time.sleep(0.1)
    pytest.fail(f"{what} not ready within {timeout:.0f} s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def playground_cli(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The pinned playground's cli.js: tools/playground's own install, or one made in a tmp folder."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js is not installed (node not on PATH): the playground needs Node.js 18 or newer")
    major = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30).stdout
    if not re.match(r"v(1[89]|[2-9]\d)\.", major):
        pytest.skip(f"the playground needs Node.js 18 or newer, this is {major.strip() or 'unknown'}")
    version = pinned_version()
    if installed_version(TOOL) == version:
        return TOOL / CLI
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("npm is not installed: cannot install the playground")
    folder = tmp_path_factory.mktemp("playground")
    for name in ("package.json", "package-lock.json"):
        shutil.copy(TOOL / name, folder / name)
    try:
        done = subprocess.run([npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund"], cwd=folder,
                              capture_output=True, text=True, timeout=120)  # fmt: skip
    except subprocess.TimeoutExpired:
        pytest.skip(f"npm ci of {PACKAGE}@{version} took over 120 s (no network?)")
    if done.returncode != 0 or installed_version(folder) != version:
        pytest.skip(f"cannot install {PACKAGE}@{version} (no network?): {done.stderr.strip()[-400:]}")
    return folder / CLI


def playground_bot_env(port: int, folder: Path) -> dict[str, str]:
    """The environment `make playground-bot` gives the bot, on this port and SQLite file."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("OPSROOM_", "Microsoft")) and k != "DATABASE_URL"}  # fmt: skip
    env.update({k: v or "" for k, v in dotenv_values(TOOL / "bot.env").items()})
    env.update(PORT=str(port), DATABASE_URL=f"sqlite:///{folder / 'opsroom.db'}", OPSROOM_LOG_LEVEL="WARNING")
    return env


@pytest.fixture
def bot(tmp_path: Path) -> Iterator[str]:
    """The bot as `make playground-bot` runs it; yields its messaging endpoint."""
    port, log = free_port(), tmp_path / "bot.log"
    env = playground_bot_env(port, tmp_path)
    # cwd: var/ (the local signing key) lands in tmp, and no developer's .env is read
    migrate = subprocess.run([sys.executable, "-m", "bot", "db", "upgrade"], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=60)  # fmt: skip
    assert migrate.returncode == 0, migrate.stderr
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "bot", "serve"], cwd=tmp_path, env=env,
                                stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        ready = f"http://127.0.0.1:{port}/readyz"
        wait_for(lambda: urllib.request.urlopen(ready, timeout=1).status == 200, proc, "the bot", log)
        yield f"http://127.0.0.1:{port}/api/messages"
    finally:
        stop(proc)


@pytest.fixture
def playground(playground_cli: Path, bot: str, tmp_path: Path) -> Iterator[str]:
    """The playground, headless, against the bot; yields its base URL."""
    log = tmp_path / "playground.out"
    env = dict(os.environ, TEAMSAPPTESTER_BROWSER="none", TEAMSAPPTESTER_LOGFILE=str(tmp_path / "tool.log"))
    command = ["node", str(playground_cli), "start", "--app-endpoint", bot, "--channel-id", "msteams",
               "--port", str(free_port()), "--disable-telemetry"]  # fmt: skip
    work = tmp_path / "playground-cwd"  # where it looks for a config file: none, so its built-in one
    work.mkdir()
    with log.open("wb") as out:
        proc = subprocess.Popen(command, cwd=work, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        # it moves to a random port when the one asked for was taken meanwhile, and says which
        wait_for(lambda: "Listening on" in log.read_text(), proc, "the playground", log, timeout=30)
        port = re.search(r"Listening on (\d+)", log.read_text())
        assert port, log.read_text()
        yield f"http://127.0.0.1:{port.group(1)}"
    finally:
        stop(proc)


class Playground:
    """The playground's web page, reduced to what a person does: type, click, read."""

    def __init__(self, http: aiohttp.ClientSession, base: str, stream: aiohttp.ClientWebSocketResponse,
                 config: dict[str, Any]) -> None:  # fmt: skip
        self.http, self.base, self.stream, self.config = http, base, stream, config
        self.bot = config["bot"]
        self.me = config["currentUser"]
        self.seen: list[dict[str, Any]] = []

    async def type(self, conversation: str, text: str, *, mention: bool = False) -> dict[str, Any]:
        """Send a message as the playground's user; in a channel the bot hears only an @mention."""
        body: dict[str, Any] = {"from": {"id": self.me["id"]}, "text": text, "textFormat": "plain"}
        if mention:
            tag = f"<at>{self.bot['name']}</at>"
            body.update(text=f"{tag} {text}", mentions=[{"mentioned": {"id": self.bot["id"]}, "text": tag}])
        url = f"{self.base}/_conversation/v1/conversations/{conversation}/messages"
        async with self.http.post(url, json=body) as response:
            assert response.status == 200, await response.text()
            return dict(await response.json())

    async def click(self, conversation: str, card_message_id: str, data: dict[str, Any]) -> None:
        """Press an Action.Submit button of a card the bot posted."""
        body = {"conversation": {"id": conversation}, "from": {"id": self.me["id"]},
                "replyToId": card_message_id, "value": data}  # fmt: skip
        async with self.http.post(f"{self.base}/_conversation/v1/submit", json=body) as response:
            assert response.status == 200, await response.text()

    async def reply(self, conversation: str, matches: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        """The first message from the bot shown in conversation that matches; fails after a while."""
        deadline = time.monotonic() + REPLY_SECONDS
        while True:
            for event in self.seen:
                message = event["message"]
                if event.get("actionConversationId") == conversation and matches(message):
                    self.seen.remove(event)
                    return dict(message)
            left = deadline - time.monotonic()
            if left <= 0:
                shown = [(e.get("actionConversationId"), shown_text(e["message"])[:200]) for e in self.seen]
                pytest.fail(f"no matching reply in {conversation} within {REPLY_SECONDS:.0f} s; shown: {shown}")
            with contextlib.suppress(TimeoutError):
                frame = await self.stream.receive(timeout=left)
                assert frame.type == aiohttp.WSMsgType.TEXT, frame
                event = json.loads(frame.data)
                if event.get("action") == "createMessage" and event["message"]["from"]["id"] == self.bot["id"]:
                    self.seen.append(event)


def shown_text(message: dict[str, Any]) -> str:
    """Everything a message shows: its text and its cards' JSON."""
    return " ".join([str(message.get("text") or "")] + [json.dumps(a) for a in message.get("attachments", [])])


@pytest.fixture
async def page(playground: str) -> AsyncIterator[Playground]:
    """The playground's page, connected to its conversation stream."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
        async with http.get(f"{playground}/_internal/v1/config") as response:
            config = (await response.json())["config"]
        async with http.ws_connect(f"{playground}/_ws_conversation/v1/conversations/stream") as stream:
            yield Playground(http, playground, stream, config)


def test_bot_env_names_the_playgrounds_own_people() -> None:
    """make playground-bot's settings make the pinned playground's user an officer (and supervisor)."""
    settings = dotenv_values(TOOL / "bot.env")
    makefile = (ROOT / "Makefile").read_text()
    assert settings["MicrosoftAppId"] == "" and settings["OPSROOM_ENV"] == "local"
    assert settings["OPSROOM_HOME_TENANT_ID"] == "00000000-0000-0000-0000-0000000000001"
    assert settings["OPSROOM_HOME_DOMAINS"] == "example.com"
    assert "PLAYGROUND_USER_AAD_ID := 00000000-0000-0000-0000-0000000000020" in makefile


async def test_playground_reaches_the_bot_and_shows_its_replies(page: Playground) -> None:
    # the settings name the playground's people (a new playground version may change them)
    settings = dotenv_values(TOOL / "bot.env")
    assert page.config["tenantId"] == settings["OPSROOM_HOME_TENANT_ID"]
    assert page.me["userPrincipleName"].endswith("@" + str(settings["OPSROOM_HOME_DOMAINS"]))
    assert page.me["aadObjectId"] in (ROOT / "Makefile").read_text()

    # a 1:1 chat: /help lists what an officer may run
    personal = page.config["personalChat"]["id"]
    await page.type(personal, "/help")
    help_text = shown_text(await page.reply(personal, lambda m: "Commands you can run here" in shown_text(m)))
    assert "`/room open`" in help_text and "`/room list`" in help_text
    assert "`/agency add`" not in help_text  # not a supervisor

    # a team channel: an @mention opens a room; its card starts a new thread, the answer goes to ours
    general = page.config["teams"][0]["channels"][0]["id"]
    sent = await page.type(general, "room open Operation Test", mention=True)
    card = await page.reply(general, lambda m: "Operation room: Operation Test" in shown_text(m))
    assert "OP-TEST" in shown_text(card) and card["attachments"][0]["contentType"].endswith("card.adaptive")
    opened = await page.reply(sent["postConversationId"], lambda m: "Opened" in shown_text(m))
    assert "OP-TEST" in opened["text"]

    # in the room's thread: a task, then the card's Tasks button lists it
    thread = card["postConversationId"]
    await page.type(thread, "task add Knock at 12 Acacia Avenue --due tomorrow", mention=True)
    added = await page.reply(thread, lambda m: "Added" in shown_text(m))
    assert "#1" in added["text"] and "Knock at 12 Acacia Avenue" in added["text"]
    await page.click(thread, card["messageId"], {"command": "task list"})
    listed = await page.reply(thread, lambda m: "open tasks" in shown_text(m))
    assert "Knock at 12 Acacia Avenue" in shown_text(listed)
