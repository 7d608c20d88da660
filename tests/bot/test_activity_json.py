"""bot.activity_json against msrest over the fixtures, odd values and models msrest builds otherwise (the
comparison is tests/bot/activity_support.py; generated activities are in test_activity_json_generated.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from botbuilder.schema import (
    Activity,
)
from msrest.exceptions import DeserializationError
from msrest.serialization import Model

from bot.activity_json import _compile, _Unsupported
from tests import fixtures
from tests.bot.activity_support import SERVICE_URL, assert_same, check

FIXTURE_FILES = sorted(fixtures.FIXTURES_DIR.glob("*.json"))


def test_the_comparison_sees_a_different_zone_at_the_same_instant() -> None:
    data = fixtures.load("personal_message", service_url=SERVICE_URL)
    data["timestamp"] = "2023-11-14T22:13:20Z"
    utc = Activity().deserialize(data)
    data["timestamp"] = "2023-11-14T23:13:20+01:00"
    paris = Activity().deserialize(data)
    assert utc == paris  # msrest's own equality would not notice
    with pytest.raises(AssertionError):
        assert_same(paris, utc, set())


# --- the fixtures --------------------------------------------------------------------------------------


def test_every_fixture_is_listed() -> None:
    assert {path.stem for path in FIXTURE_FILES} == set(fixtures.FIXTURE_NAMES)


@pytest.mark.parametrize("path", FIXTURE_FILES, ids=lambda path: path.stem)
def test_fixture_file_as_stored(path: Path) -> None:
    """The stored JSON, with its seven-digit fractions as Teams sends them."""
    check(json.loads(path.read_text(encoding="utf-8")), fast=True)


@pytest.mark.parametrize("name", fixtures.FIXTURE_NAMES)
def test_fixture_as_loaded(name: str) -> None:
    check(fixtures.load(name, service_url=SERVICE_URL), fast=True)
    check(fixtures.load(name, service_url=SERVICE_URL, text="<at>Opsroom</at> room open «Ünïcode» ✓ 🚓",
                        tenant=fixtures.GUEST_TENANT, from_={"userRole": "guest"}), fast=True)  # fmt: skip


def test_what_msrest_makes_of_a_teams_message() -> None:
    """The SDK's quirks the fast path keeps (bot code reading these must know them)."""
    data = json.loads((fixtures.FIXTURES_DIR / "channel_message_mention.json").read_text(encoding="utf-8"))
    data["localTimestamp"] = "2023-11-14T22:13:20.1234567-05:30"
    activity = check(data, fast=True)
    assert activity is not None
    # The SDK declares "tenantID": Teams' "tenantId" is an unknown key.
    assert activity.conversation.tenant_id is None
    assert activity.conversation.additional_properties == {"tenantId": fixtures.HOME_TENANT}
    assert activity.entities[0].type == "mention"
    assert activity.entities[0].additional_properties["mentioned"]["id"] == fixtures.BOT_ID
    assert activity.channel_data["tenant"]["id"] == fixtures.HOME_TENANT
    # Seven digits of fraction cut (not rounded) to six; isodate's zones, named as written.
    assert activity.timestamp.microsecond == 123456
    assert activity.timestamp.tzname() == "UTC"
    assert activity.local_timestamp.tzname() == "-05:30"
    assert activity.local_timestamp.utcoffset().total_seconds() == -(5 * 3600 + 30 * 60)


# --- odd values: msrest's path, and its result ----------------------------------------------------------


def _with(path: str, value: Any) -> dict[str, Any]:
    data = fixtures.load("channel_message_mention", service_url=SERVICE_URL)
    *parents, last = path.split(".")
    target: Any = data
    for part in parents:
        target = target[int(part)] if isinstance(target, list) else target[part]
    target[last] = value
    return data


ODD = [
    ("conversation.isGroup", "true"),  # msrest: True
    ("conversation.isGroup", 1),  # msrest: True
    ("from.id", 29),  # msrest: "29"
    ("text", ["a"]),  # msrest: "['a']"
    ("timestamp", "2023-11-14T22:13:20+0100"),  # basic-format zone
    ("timestamp", "2023-11-14T22:13:20+01"),
    ("timestamp", "2023-11-14t22:13:20.5z"),  # msrest upper-cases
    ("timestamp", "2023-11-14T22:13:20,5Z"),  # isodate takes a comma
    ("timestamp", "2023-11-14T22:13:20+00:75"),  # isodate: a 1:15 offset named "+00:75"
    ("timestamp", "2023-11-14T22:13:20"),  # naive: the fast path takes it, see below
    ("timestamp", "0001-01-01T00:00:00Z"),
    ("expiration", "9999-12-31T23:59:59.999999Z"),
    ("textHighlights", [{"text": "help", "occurrence": "2"}]),
    ("textHighlights", [{"text": "help", "occurrence": True}]),
    ("semanticAction", {"id": "a", "entities": {"x": {"type": "thing"}}}),  # a {dict} type
    ("historyDisclosed", 0),
]

REFUSED = [
    ("timestamp", "2023-02-30T22:13:20Z"),
    ("timestamp", "2023-11-14T24:00:00Z"),
    ("timestamp", "2023-11-14T22:13:60Z"),
    ("timestamp", "2023-11-14T22:13:20+24:00"),
    ("timestamp", "0001-01-01T00:00:00+01:00"),
    ("timestamp", "yesterday"),
    ("timestamp", 1700000000),
    ("from", "Ada"),
    ("from", []),
    ("membersAdded", {"id": "29:x"}),
    ("conversation.isGroup", "maybe"),
    ("channelData", {"x": {1, 2}}),  # not JSON
]


@pytest.mark.parametrize(("path", "value"), ODD, ids=[f"{p}={v!r}" for p, v in ODD])
def test_odd_values_get_msrest_s_result(path: str, value: Any) -> None:
    check(_with(path, value), fast=path == "timestamp" and value == "2023-11-14T22:13:20")


@pytest.mark.parametrize(("path", "value"), REFUSED, ids=[f"{p}={v!r}" for p, v in REFUSED])
def test_values_msrest_refuses_raise_its_error(path: str, value: Any) -> None:
    data = _with(path, value)
    with pytest.raises(DeserializationError):
        Activity().deserialize(data)
    check(data, fast=False)


def test_not_an_object_raises_msrest_s_error() -> None:
    for data in ([], "text", 5):
        with pytest.raises(DeserializationError):
            Activity().deserialize(data)
        check(data, fast=False)


def test_json_text_goes_to_msrest_which_parses_it() -> None:
    text = json.dumps(fixtures.load("personal_message", service_url=SERVICE_URL))
    check(text, fast=False)


class Stripped(Model):
    """A model whose __init__ changes what it is given, as a later SDK's might."""

    _attribute_map = {"x": {"key": "x", "type": "str"}}

    def __init__(self, *, x: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.x = x.strip() if x else x


class Readonly(Model):
    _attribute_map = {"x": {"key": "x", "type": "str"}}
    _validation = {"x": {"readonly": True}}

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.x = None


@pytest.mark.parametrize("model", [Stripped, Readonly])
def test_a_model_msrest_builds_otherwise_is_left_to_msrest(model: type[Model]) -> None:
    convert = _compile(model.__name__, {model.__name__: model})
    with pytest.raises(_Unsupported):
        convert({"x": " a "})
