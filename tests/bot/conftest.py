"""Fixtures of the outbox sender tests (tests/bot/test_sender*.py): the fake connector, the app's
outbound session, and a running sender."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.outbound import Outbound
from bot.sender import OutboxSender
from core.db import Database
from tests.bot.sender_support import make_sender
from tests.fakes.connector import FakeConnector


@pytest.fixture
async def connector() -> AsyncIterator[FakeConnector]:
    async with FakeConnector() as fake:
        yield fake


@pytest.fixture
async def outbound() -> AsyncIterator[Outbound]:
    running = Outbound()
    await running.start()
    yield running
    await running.close()


@pytest.fixture
async def sender(db: Database, outbound: Outbound) -> AsyncIterator[OutboxSender]:
    running = make_sender(db, outbound)
    await running.start()
    yield running
    await running.stop()


# -- delivery ----------------------------------------------------------------------------------------
