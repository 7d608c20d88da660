"""One bot process of the replica tests: `python -m tests.replicas.worker --port N --clock FILE`.

The real application (bot.app.create_app, settings from the environment, the audit signing key attached
as `serve` does), with two things a test needs: its clock is read from FILE (one simulated time shared by
every process), and its scheduled ticks run when `POST /test/tick` asks rather than on the scheduler's
real-time intervals (paused), so that a test steps all processes through a simulated month together.
The route exists only in this test program.
"""

from __future__ import annotations

import argparse
import logging
from datetime import datetime
from pathlib import Path

from aiohttp import web

from bot import logs
from bot.app import ACCESS, DIGESTS, OVERSIGHT, SCHEDULER, SERVER_OPTIONS, create_app
from bot.config import load
from core.audit import signing
from core.db import Database


class FileClock:
    """The simulated time: ISO text in a file, read on every call."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __call__(self) -> datetime:
        return datetime.fromisoformat(self.path.read_text().strip())


def build(clock: Path) -> web.Application:
    settings = load(env_file=None)
    db = Database(settings.database_url)
    app = create_app(settings, db=db, clock=FileClock(clock))
    key = signing.load_or_create(Path(settings.audit_signing_key_file), create=False)
    signing.attach(db.engine, key.signer)

    async def pause(app: web.Application) -> None:
        app[SCHEDULER].pause()  # ticks run on POST /test/tick, at the simulated time

    async def tick(request: web.Request) -> web.Response:
        digests = await app[DIGESTS].run()
        access = await app[ACCESS].run()
        alerts = await app[OVERSIGHT].run()
        return web.json_response({"digests": len(digests), "ended": len(access.ended),
                                  "reminders": len(access.reminders), "oversight": len(alerts)})  # fmt: skip

    async def close(app: web.Application) -> None:
        db.close()

    app.on_startup.append(pause)
    app.on_cleanup.append(close)
    app.router.add_post("/test/tick", tick)
    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--clock", type=Path, required=True)
    args = parser.parse_args()
    logs.configure("WARNING")
    logging.getLogger("bot").setLevel(logging.WARNING)
    web.run_app(build(args.clock), host="127.0.0.1", port=args.port, print=None, access_log=None,
                **SERVER_OPTIONS)  # fmt: skip


if __name__ == "__main__":
    main()
