"""A force adds its own room templates without code; a bad one stops the start, naming file and field."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from bot.app import create_app
from core.db import Database
from core.rooms.templates import TemplateError
from tests.fakes.connector import FakeConnector
from tests.scenarios.conftest import BASE_SETTINGS, serving
from tests.scenarios.rooms_support import rows

GOOD = """
name = "Missing person (high risk)"
classification = "OFFICIAL-SENSITIVE"
digest = "06:00"
agencies = ["social-care"]

[[tasks]]
title = "Search strategy agreed with PolSA"
due = "+0d 12:00"
priority = "high"
"""


async def test_a_force_template_is_used_like_a_shipped_one(
    tmp_path: Path, db: Database, connector: FakeConnector
) -> None:
    (tmp_path / "missing-person.toml").write_text(GOOD)
    async with serving(replace(BASE_SETTINGS, templates_dir=str(tmp_path)), connector, db) as running:
        result = await running.say("channel_message_mention", "room open Op Finch --template missing-person")
    assert "1 tasks from the Missing person (high risk) template" in result.texts[0]
    assert rows(db, "SELECT title, priority FROM task") == [("Search strategy agreed with PolSA", "high")]


def test_a_bad_template_stops_the_start_naming_file_and_field(tmp_path: Path, db: Database) -> None:
    (tmp_path / "broken.toml").write_text(GOOD.replace('digest = "06:00"', 'digest = "25:00"'))
    with pytest.raises(TemplateError) as caught:
        create_app(replace(BASE_SETTINGS, templates_dir=str(tmp_path)), db=db)
    assert str(caught.value).startswith(f"{tmp_path / 'broken.toml'}: digest: ")
