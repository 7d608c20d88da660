"""Supervisors named by Entra group id are recognised through Microsoft Graph."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from core.db import Database
from tests import fixtures
from tests.fakes.connector import FakeConnector
from tests.fakes.graph import FakeGraph
from tests.scenarios.conftest import BASE_SETTINGS, Harness, serving, with_graph_settings

SUPERVISORS_GROUP = "ffffffff-0000-4000-8000-000000000001"


@pytest.fixture
async def graph() -> AsyncIterator[FakeGraph]:
    async with FakeGraph() as fake:
        for aad_id, user_type, upn in fixtures.directory():
            fake.add_user(aad_id, user_type=user_type, upn=upn)
        fake.add_group_member(SUPERVISORS_GROUP, fixtures.OFFICER2_AAD)
        yield fake


@pytest.fixture
async def grouped(db: Database, connector: FakeConnector, graph: FakeGraph) -> AsyncIterator[Harness]:
    settings = with_graph_settings(BASE_SETTINGS, graph, supervisors=frozenset({SUPERVISORS_GROUP}))
    async with serving(settings, connector, db) as running:
        yield running


async def test_a_member_of_the_supervisors_group_is_a_supervisor(grouped: Harness, graph: FakeGraph) -> None:
    ben = {"id": fixtures.OFFICER2_ID, "aadObjectId": fixtures.OFFICER2_AAD, "name": fixtures.OFFICER2_NAME}
    first = await grouped.say("personal_message", "/help", from_=ben)
    again = await grouped.say("personal_message", "/help", from_=ben)
    ada = await grouped.say("personal_message", "/help")
    assert "`/audit verify`" in first.texts[0] and "`/audit verify`" in again.texts[0]
    assert "`/audit verify`" not in ada.texts[0]
    assert [e["actor_kind"] for e in grouped.audit()] == ["supervisor", "supervisor", "officer"]
    assert len(graph.graph_requests("checkMemberGroups")) == 2  # Ben once (then cached), Ada once


async def test_graph_failure_means_not_a_supervisor(grouped: Harness, graph: FakeGraph) -> None:
    graph.fail_next(5, 403, path_contains="checkMemberGroups")
    ben = {"id": fixtures.OFFICER2_ID, "aadObjectId": fixtures.OFFICER2_AAD}
    result = await grouped.say("personal_message", "/help", from_=ben)
    assert "`/audit verify`" not in result.texts[0]
    assert grouped.audit()[-1]["actor_kind"] == "officer"
