"""Pathological input against the running bot: while 256 KB messages built to make text handling
backtrack are posted, how long does /healthz take to answer? (Target: within 100 ms throughout.)"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import aiohttp

from bench import procs
from tests import fixtures

BODY = 250 * 1024


def pathological(service_url: str) -> list[bytes]:
    """Messages just under the body limit, each aimed at a different piece of text handling."""
    bodies = []
    mention = fixtures.MENTION_PREFIX
    for filler in ("<", "<at>", "<a", "&lt;", "a" * 31 + " "):
        activity = fixtures.load("channel_message_mention", service_url=service_url, text="help",
                                 attachments=[])  # fmt: skip
        room = BODY - len(json.dumps(activity)) - len(mention)
        activity["text"] = mention + filler * (room // len(filler))
        bodies.append(json.dumps(activity).encode())
    crafted = fixtures.load("channel_message_mention", service_url=service_url, text="help", attachments=[])
    crafted["entities"][0]["text"] = "<at>(a+)+$</at>"
    crafted["text"] = "<at>(a+)+$</at> " + "a" * 60 + "!"
    bodies.append(json.dumps(crafted).encode())
    return bodies


async def _measure(base: str, bodies: list[bytes], rounds: int) -> dict[str, Any]:
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    done = asyncio.Event()
    async with aiohttp.ClientSession() as http:

        async def probe() -> None:
            while not done.is_set():
                began = time.perf_counter()
                async with http.get(f"{base}/healthz") as response:
                    await response.read()
                latencies.append((time.perf_counter() - began) * 1000)
                await asyncio.sleep(0.01)

        async def attack() -> None:
            for _ in range(rounds):
                for body in bodies:
                    headers = {"Content-Type": "application/json"}
                    async with http.post(f"{base}/api/messages", data=body, headers=headers) as response:
                        key = str(response.status)
                        statuses[key] = statuses.get(key, 0) + 1
            done.set()

        began = time.perf_counter()
        await asyncio.gather(probe(), attack())
        wall = time.perf_counter() - began
    latencies.sort()
    return {"messages": len(bodies) * rounds, "bytes_each": BODY, "statuses": statuses,
            "seconds": round(wall, 2), "healthz_probes": len(latencies),
            "healthz_max_ms": round(latencies[-1], 1),
            "healthz_p99_ms": round(latencies[int(len(latencies) * 0.99) - 1], 1)}  # fmt: skip


def run(work: Path, rounds: int = 5) -> dict[str, Any]:
    """Start the bot and a connector, post the pathological messages, probe /healthz meanwhile."""
    database_url = f"sqlite:///{work / 'opsroom-odd.db'}"
    procs.migrate(database_url, work / "migrate.log")
    with procs.Connector("fake") as connector, procs.opsroom_server(database_url, work) as server:
        server.wait_ready()
        base = f"http://127.0.0.1:{server.port}"
        result = asyncio.run(_measure(base, pathological(connector.url), rounds))
    size = BODY // 1024
    print(f"  {result['messages']} messages of {size} KB: /healthz max {result['healthz_max_ms']} ms, "
          f"p99 {result['healthz_p99_ms']} ms over {result['healthz_probes']} probes; "
          f"answers {result['statuses']}", flush=True)  # fmt: skip
    return result
