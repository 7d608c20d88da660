"""Misuse monitoring over HTTP: /oversight here, each rule's alert posted once to the supervisors' chat,
normal traffic quiet, mutes, refusals, a restart and two processes.

Audit events carry the real time (the rules' windows run on it); the monitor's lease runs on the test
clock. Each rule is tried alone (a rules file with that rule only, its threshold small), so that what
one scenario does cannot raise another rule's alert. The scheduler's tick is set to an hour: the tests
run it by hand.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bot.app import OVERSIGHT
from core.db import Database
from tests import fixtures
from tests.fakes.connector import FakeConnector
from tests.scenarios.access_support import events, lantern, say, texts
from tests.scenarios.conftest import BASE_SETTINGS, Clock, Harness, serving
from tests.scenarios.rooms_support import BEN, SAM, SAM_EMAIL, SUPERVISOR, open_room, room_thread, rows

SUPERVISORS_CHAT = fixtures.GROUP_CHAT_CONVERSATION_ID
RULES = {
    "denial-burst": 'threshold = 3\nwindow = "10m"\ncooldown = "1h"',
    "guest-after-hours": 'threshold = 1\ncooldown = "12h"\ngrace = "0m"',
    "many-rooms": 'threshold = 2\nwindow = "24h"\ncooldown = "24h"',
    "bulk-consultation": 'threshold = 3\nwindow = "1h"\ncooldown = "4h"',
    "after-end": 'threshold = 1\ncooldown = "24h"',
    "room-probing": 'threshold = 2\nwindow = "1h"\ncooldown = "6h"',
    "supervisor-self": 'threshold = 1\ncooldown = "1h"',
}


def rules_file(tmp_path: Path, *rule_ids: str) -> str:
    """A rules file running only these rules, with small thresholds."""
    path = tmp_path / "oversight.toml"
    path.write_text("\n".join(f'[rules.{r}]\ntitle = "Rule {r}"\n{RULES[r]}\n' for r in rule_ids))
    return str(path)


@contextlib.asynccontextmanager
async def monitored(db: Database, connector: FakeConnector, clock: Clock, oversight_file: str = "",
                    ) -> AsyncIterator[Harness]:  # fmt: skip
    settings = replace(BASE_SETTINGS, oversight_file=oversight_file, oversight_seconds=3600)
    async with serving(settings, connector, db, clock=clock) as running:
        yield running


async def tick(harness: Harness) -> None:
    """This process's misuse monitor tick, run now (the scheduler runs it every few seconds)."""
    await harness.server.app[OVERSIGHT].run()


async def in_group(harness: Harness, text_: str, **overrides: Any) -> Any:
    """A command in the supervisors' group chat (Sue, the supervisor, unless from_ says otherwise)."""
    return await harness.say("group_chat_message", text_, **{"from_": SUPERVISOR, **overrides})


async def watch(harness: Harness) -> None:
    """Sue sends alerts to the group chat; the first tick makes the cursor (the past is not alerted on)."""
    exchange = await in_group(harness, "oversight here")
    assert "Misuse alerts will be posted in this chat." in exchange.texts[0]
    await tick(harness)


def lines_of(card: dict[str, Any]) -> list[str]:
    """A card's TextBlocks, then its facts as `title: value` (Containers' too)."""
    return texts(card) + facts_of(card["body"])


def facts_of(blocks: list[dict[str, Any]]) -> list[str]:
    found: list[str] = []
    for block in blocks:
        if block.get("type") == "FactSet":
            found += [f"{fact['title']}: {fact['value']}" for fact in block["facts"]]
        found += facts_of(block.get("items", []))
    return found


async def alerts_posted(harness: Harness, count: int = 1, wait: float = 2.0) -> list[list[str]]:
    """The alert cards posted to the supervisors' chat (each as its TextBlocks), once `count` are there."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    while True:
        posted = [a for a in harness.connector.activities() if a.conversation_id == SUPERVISORS_CHAT
                  and a.kind == "send" and a.get("attachments")]  # fmt: skip
        shown = [lines_of(a["attachments"][0]["content"]) for a in posted]
        found = [lines for lines in shown if any(line.startswith("Misuse alert:") for line in lines)]
        if len(found) >= count or loop.time() > deadline:
            return found
        await asyncio.sleep(0.02)


async def once(harness: Harness, rule_id: str) -> list[str]:
    """Tick, and the one alert of rule_id posted (and no other)."""
    await tick(harness)
    [card] = await alerts_posted(harness)
    assert card[1] == f"Misuse alert: **Rule {rule_id}**"
    await tick(harness)  # reading its own alert event raises nothing
    assert len(await alerts_posted(harness, 2, wait=0.3)) == 1
    return card


def stored(db: Database) -> list[tuple[Any, ...]]:
    return rows(db, "SELECT rule, subject, outcome FROM oversight_alert ORDER BY id")


async def test_a_burst_of_refusals(db: Database, connector: FakeConnector, clock: Clock, tmp_path: Path) -> None:
    async with monitored(db, connector, clock, rules_file(tmp_path, "denial-burst")) as bot:
        await watch(bot)
        for _ in range(4):  # the fourth is within the cooldown
            await bot.say("channel_message_mention", "agency add health NHS Trust", from_=BEN)
        card = await once(bot, "denial-burst")
    assert f"Who: {fixtures.OFFICER2_NAME} (Entra id {fixtures.OFFICER2_AAD})" in card
    assert any(line.startswith(f"What: {fixtures.OFFICER2_NAME} (officer) was refused 3 times") for line in card)
    assert stored(db) == [("denial-burst", fixtures.OFFICER2_AAD, "queued")]
    [event] = events(bot, "oversight.alert")
    assert (event["actor_kind"], event["outcome"], event["recipients"]) == ("system", "queued", [SUPERVISORS_CHAT])
    assert event["arguments"]["subject"] == fixtures.OFFICER2_AAD


async def test_a_guest_outside_the_rooms_working_hours(
    db: Database, connector: FakeConnector, clock: Clock, tmp_path: Path
) -> None:
    hour = datetime.now(UTC).astimezone(ZoneInfo("Europe/London")).hour
    closed_now = f"{(hour + 6) % 24:02d}:00-{(hour + 7) % 24:02d}:00"  # hours that are not now
    async with monitored(db, connector, clock, rules_file(tmp_path, "guest-after-hours")) as bot:
        thread = await lantern(bot, db)
        await say(bot, thread, f"invite socialcare {SAM_EMAIL} --isa ISA-1 --expires 2026-12-20")
        set_hours = await say(bot, thread, f"room hours {closed_now}")
        await watch(bot)
        await say(bot, thread, "room status", from_=SAM)
        await say(bot, thread, "task list", from_=SAM)  # within the cooldown
        card = await once(bot, "guest-after-hours")
    assert f"is worked `{closed_now}`" in set_hours.texts[0]
    assert rows(db, "SELECT working_hours FROM room") == [(closed_now,)]
    assert any(f"outside working hours ({closed_now})" in line for line in card)
    assert stored(db) == [("guest-after-hours", fixtures.GUEST_AAD, "queued")]


async def test_the_rooms_own_hours_keep_a_guest_quiet(
    db: Database, connector: FakeConnector, clock: Clock, tmp_path: Path
) -> None:
    async with monitored(db, connector, clock, rules_file(tmp_path, "guest-after-hours")) as bot:
        thread = await lantern(bot, db)
        await say(bot, thread, f"invite socialcare {SAM_EMAIL} --isa ISA-1 --expires 2026-12-20")
        await say(bot, thread, "room hours always")
        await watch(bot)
        await say(bot, thread, "room status", from_=SAM)
        await tick(bot)
        assert await alerts_posted(bot, wait=0.3) == []
        refused = await say(bot, thread, "room hours 09:00-17:00 Mon-Fri", from_=BEN)  # not the lead
    assert refused.texts and stored(db) == []


async def test_one_person_across_many_rooms(
    db: Database, connector: FakeConnector, clock: Clock, tmp_path: Path
) -> None:
    async with monitored(db, connector, clock, rules_file(tmp_path, "many-rooms")) as bot:
        await watch(bot)
        await open_room(bot, "room open Operation Lantern")
        await open_room(bot, "room open Operation Heron")
        await say(bot, room_thread(bot), "room status")
        card = await once(bot, "many-rooms")
    assert any("touched 2 different rooms" in line for line in card)
    assert "Rooms: OP-HERON, OP-LANTERN" in card


async def test_bulk_consultation(db: Database, connector: FakeConnector, clock: Clock, tmp_path: Path) -> None:
    async with monitored(db, connector, clock, rules_file(tmp_path, "bulk-consultation")) as bot:
        thread = await lantern(bot, db)
        await watch(bot)
        for _ in range(4):
            await say(bot, thread, "task list")
        card = await once(bot, "bulk-consultation")
    assert any("made 3 reads" in line for line in card)
    assert stored(db) == [("bulk-consultation", fixtures.OFFICER_AAD, "queued")]


async def test_an_attempt_after_access_ended(
    db: Database, connector: FakeConnector, clock: Clock, tmp_path: Path
) -> None:
    async with monitored(db, connector, clock, rules_file(tmp_path, "after-end")) as bot:
        thread = await lantern(bot, db)
        await say(bot, thread, f"invite socialcare {SAM_EMAIL} --isa ISA-1 --expires 2026-12-02")
        await say(bot, thread, "room status", from_=SAM)
        await watch(bot)
        clock.now = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
        await say(bot, thread, "task list", from_=SAM)
        await say(bot, thread, "room status", from_=SAM)
        card = await once(bot, "after-end")
    assert any("after their access had expired" in line for line in card)
    assert stored(db) == [("after-end", fixtures.GUEST_AAD, "queued")]


async def test_probing_for_rooms(db: Database, connector: FakeConnector, clock: Clock, tmp_path: Path) -> None:
    async with monitored(db, connector, clock, rules_file(tmp_path, "room-probing")) as bot:
        await watch(bot)
        for key in ("OP-NOPE", "OP-GUESS", "OP-THIRD"):
            await bot.say("channel_message_mention", f"room status --room {key}", from_=BEN)
        card = await once(bot, "room-probing")
    assert any("named 2 room keys that do not exist or are hidden from them" in line for line in card)


async def test_a_supervisor_auditing_themselves(
    db: Database, connector: FakeConnector, clock: Clock, tmp_path: Path
) -> None:
    async with monitored(db, connector, clock, rules_file(tmp_path, "supervisor-self")) as bot:
        await watch(bot)
        await bot.say("personal_message", f"audit --user {fixtures.SUPERVISOR_AAD}", from_=SUPERVISOR)
        card = await once(bot, "supervisor-self")
    assert any("ran audit.query on their own activity" in line for line in card)
    assert stored(db) == [("supervisor-self", fixtures.SUPERVISOR_AAD, "queued")]


async def test_normal_traffic_under_the_shipped_rules_raises_nothing(
    db: Database, connector: FakeConnector, clock: Clock
) -> None:
    async with monitored(db, connector, clock) as bot:
        await watch(bot)
        thread = await lantern(bot, db)
        await say(bot, thread, f"invite socialcare {SAM_EMAIL} --isa ISA-1 --expires 2026-12-20")
        await say(bot, thread, "room hours always")
        await say(bot, thread, "task add Visit 12 Acacia Avenue --share socialcare")
        for text_ in ("task list", "room status", "task show 1"):
            await say(bot, thread, text_)
            await say(bot, thread, text_, from_=SAM)
        await say(bot, thread, "task done 1 visited, all safe", from_=SAM)
        await bot.say("channel_message_mention", "agency add health NHS Trust", from_=BEN)  # one refusal
        await bot.say("channel_message_mention", "room status --room OP-LANTRN", from_=BEN)  # one typo
        await tick(bot)
        rules = await in_group(bot, "oversight rules")
    assert await alerts_posted(bot, wait=0.3) == [] and stored(db) == []
    shown = lines_of(rules.replies[0]["attachments"][0]["content"])
    assert "Rule: denial-burst" in shown and "Alerts: Alerts when one person reaches 5 refusals within 10 minutes; then stays " \
        "quiet about that person for 1 hour." in shown  # fmt: skip


async def test_a_mute_is_audited_with_its_reason_and_silences_the_rule(
    db: Database, connector: FakeConnector, clock: Clock, tmp_path: Path
) -> None:
    async with monitored(db, connector, clock, rules_file(tmp_path, "denial-burst")) as bot:
        await watch(bot)
        muted = await in_group(bot, "oversight mute denial-burst 2h --reason tabletop exercise today")
        listed = await in_group(bot, "oversight rules")
        unknown = await in_group(bot, "oversight mute denial-storm 2h --reason typo")
        no_reason = await in_group(bot, "oversight mute denial-burst 2h")
        for _ in range(3):
            await bot.say("channel_message_mention", "agency add health NHS Trust", from_=BEN)
        await tick(bot)
        assert await alerts_posted(bot, wait=0.3) == []
    assert "Muted `denial-burst` for 2 hours, until Mon 30 Nov 2026 11:00." in muted.texts[0]
    event = events(bot, "oversight.mute")[0]
    assert (event["outcome"], event["decision"], event["justification"]) == ("ok", "allow", "tabletop exercise today")
    assert event["arguments"]["rule"] == "denial-burst" and event["arguments"]["duration"] == "2h"
    state = lines_of(listed.replies[0]["attachments"][0]["content"])
    assert f"State: muted until Mon 30 Nov 2026 11:00 by {fixtures.SUPERVISOR_NAME}: tabletop exercise today" in state
    assert "There is no rule `denial-storm`. The rules: `denial-burst`." in unknown.texts[0]
    assert "reason" in no_reason.texts[0]
    assert stored(db) == [("denial-burst", fixtures.OFFICER2_AAD, "muted")]
    assert [e["outcome"] for e in events(bot, "oversight.alert")] == ["muted"]


async def test_only_supervisors_run_oversight(db: Database, connector: FakeConnector, clock: Clock) -> None:
    async with monitored(db, connector, clock) as bot:
        here = await in_group(bot, "oversight here", from_=BEN)
        mute = await in_group(bot, "oversight mute denial-burst 2h --reason quiet", from_=BEN)
        personal = await bot.say("personal_message", "oversight here", from_=SUPERVISOR)
    assert [e["decision"] for e in events(bot, "oversight.here")] == ["deny", "allow"]
    assert [e["decision"] for e in events(bot, "oversight.mute")] == ["deny"]
    assert here.texts and mute.texts and rows(db, "SELECT count(*) FROM oversight_target") == [(0,)]
    assert "a personal chat would leave them to one person" in personal.texts[0]


async def test_a_restart_repeats_no_alert(db: Database, connector: FakeConnector, clock: Clock, tmp_path: Path) -> None:
    rules = rules_file(tmp_path, "denial-burst")
    async with monitored(db, connector, clock, rules) as bot:
        await watch(bot)
        for _ in range(3):
            await bot.say("channel_message_mention", "agency add health NHS Trust", from_=BEN)
        await once(bot, "denial-burst")
    clock.now += timedelta(minutes=2)  # the stopped process's lease has run out
    async with monitored(db, connector, clock, rules) as again:
        await tick(again)
        await again.say("channel_message_mention", "agency add health NHS Trust", from_=BEN)  # cooling down
        await tick(again)
        assert len(await alerts_posted(again, 2, wait=0.5)) == 1
    assert stored(db) == [("denial-burst", fixtures.OFFICER2_AAD, "queued")]


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
async def test_two_processes_post_each_alert_once(
    db: Database, db_url: str, connector: FakeConnector, clock: Clock, tmp_path: Path
) -> None:
    rules = rules_file(tmp_path, "denial-burst", "room-probing")
    other_db = Database(db_url)
    try:
        async with monitored(db, connector, clock, rules) as one, monitored(other_db, connector, clock, rules) as two:
            await watch(one)
            for n in range(3):
                await one.say("channel_message_mention", "agency add health NHS Trust", from_=BEN)
                await two.say("channel_message_mention", f"room status --room OP-NOPE{n}", from_=BEN)
                await asyncio.gather(tick(one), tick(two), tick(two))
                clock.now += timedelta(minutes=2)  # leases run out: either may read on
            await asyncio.gather(tick(one), tick(two))
            posted = await alerts_posted(one, 2, wait=10.0)
            assert len(await alerts_posted(one, 3, wait=0.5)) == 2
    finally:
        other_db.close()
    assert sorted(card[1] for card in posted) == ["Misuse alert: **Rule denial-burst**",
                                                  "Misuse alert: **Rule room-probing**"]  # fmt: skip
    assert sorted(rule for rule, _, _ in stored(db)) == ["denial-burst", "room-probing"]
    assert len(events(one, "oversight.alert")) == 2
