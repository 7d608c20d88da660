"""bot.activity_json against msrest: the same Activity, attribute by attribute, or the same exception.

The comparison walks both object graphs itself: msrest models compare by __dict__, and datetimes by
instant only, so `==` alone would pass a "+01:00" time given as the equal UTC time, or a tzinfo of the
wrong class. Each parity check also asserts whether the fast path was taken, so a converter that always
fell back to msrest (and so always "agreed") would fail here.
"""

from __future__ import annotations

import copy
import json
import math
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from botbuilder.schema import (
    Activity,
    Attachment,
    CardAction,
    ChannelAccount,
    ConversationAccount,
    ConversationReference,
    Entity,
    MessageReaction,
    SemanticAction,
    SuggestedActions,
    TextHighlight,
)
from hypothesis import event, given, settings
from hypothesis import strategies as st
from msrest.exceptions import DeserializationError
from msrest.serialization import Model

from bot.activity_json import _compile, _Unsupported, activity_from_json, fast_activity
from tests import fixtures

SERVICE_URL = "https://smba.trafficmanager.net/uk/"
FIXTURE_FILES = sorted(fixtures.FIXTURES_DIR.glob("*.json"))


# --- the comparison ----------------------------------------------------------------------------------


def _containers(value: Any, into: set[int]) -> set[int]:
    """The ids of every dict and list inside value (to see which results share the input's objects)."""
    if isinstance(value, dict):
        into.add(id(value))
        for item in value.values():
            _containers(item, into)
    elif isinstance(value, list):
        into.add(id(value))
        for item in value:
            _containers(item, into)
    return into


def assert_same(fast: Any, sdk: Any, shared: set[int], path: str = "activity") -> None:
    """fast is sdk's equal in every attribute, type, tzinfo and sharing of the input's containers."""
    assert type(fast) is type(sdk), f"{path}: {type(fast).__name__} vs {type(sdk).__name__}"
    if isinstance(sdk, dict | list):
        # msrest copies `object` fields and keeps unknown keys' values as they came: the same here.
        assert (id(fast) in shared) == (id(sdk) in shared), f"{path}: shared with the input in one only"
    if isinstance(sdk, Model):
        assert vars(fast).keys() == vars(sdk).keys(), path
        for name, value in vars(sdk).items():
            assert_same(vars(fast)[name], value, shared, f"{path}.{name}")
    elif isinstance(sdk, dict):
        assert fast.keys() == sdk.keys(), path
        for key, value in sdk.items():
            assert_same(fast[key], value, shared, f"{path}[{key!r}]")
    elif isinstance(sdk, list):
        assert len(fast) == len(sdk), path
        for i, (one, other) in enumerate(zip(fast, sdk, strict=True)):
            assert_same(one, other, shared, f"{path}[{i}]")
    elif isinstance(sdk, datetime):
        # Wall-clock fields and zone, not just the instant.
        assert fast.timetuple()[:6] == sdk.timetuple()[:6], path
        assert (fast.microsecond, fast.fold) == (sdk.microsecond, sdk.fold), path
        assert type(fast.tzinfo) is type(sdk.tzinfo), f"{path}: {fast.tzinfo!r} vs {sdk.tzinfo!r}"
        if sdk.tzinfo is not None:
            assert fast.utcoffset() == sdk.utcoffset(), path
            assert fast.tzname() == sdk.tzname(), path
            assert fast.dst() == sdk.dst(), path
    elif isinstance(sdk, float) and math.isnan(sdk):
        assert math.isnan(fast), path
    else:
        assert fast == sdk, f"{path}: {fast!r} vs {sdk!r}"


def check(data: Any, *, fast: bool | None = None) -> Activity | None:
    """activity_from_json(data) is what msrest makes of data, or raises what msrest raises.

    fast: whether the fast path must (True) or must not (False) have built it; None for either.
    Returns msrest's activity (None when msrest refused the data).
    """
    before = copy.deepcopy(data)
    try:
        expected = Activity().deserialize(data)
    except Exception as exc:
        with pytest.raises(type(exc)):
            activity_from_json(data)
        assert fast is not True, "msrest refused data the fast path must take"
        assert fast_activity(data) is None
        return None
    built = fast_activity(data)
    if fast is not None:
        assert (built is not None) is fast, f"fast path {'not ' if fast else ''}expected"
    shared = _containers(data, set())
    assert_same(activity_from_json(data), expected, shared)
    if built is not None:
        assert_same(built, expected, shared)
    assert data == before, "the input was changed"
    return expected


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


# --- generated Teams-shaped activities ------------------------------------------------------------------

JSON_SCALAR = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
)
JSON = st.recursive(
    JSON_SCALAR,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
JSON_OBJECT = st.dictionaries(st.text(max_size=12), JSON, max_size=5)
TEXT = st.text(max_size=40)  # any Unicode but lone surrogates, which intake refuses
IDS = st.one_of(st.uuids().map(str), st.from_regex(r"(29|28|19|a|f):[0-9A-Za-z@.;=_-]{0,30}", fullmatch=True))
DIGITS = st.text(alphabet="0123456789", min_size=1, max_size=9)


def _zones(hours: int, minutes: int, form: str) -> st.SearchStrategy[str]:
    return st.builds(form.format, st.sampled_from("+-"), st.integers(0, hours), st.integers(0, minutes))


TEAMS_ZONES = st.one_of(st.just("Z"), st.just(""), _zones(23, 59, "{}{:02d}:{:02d}"))
ODD_ZONES = st.one_of(
    _zones(30, 99, "{}{:02d}{:02d}"),  # +hhmm
    _zones(30, 99, "{}{:02d}:{:02d}"),  # past 23:59
    _zones(30, 0, "{}{:02d}"),  # +hh
    st.sampled_from(["z", "+", "Z+01:00", " Z", "Z\n", "+\u0660\u0661:\u0660\u0660"]),
)
ODD_EDITS = st.sampled_from(
    [
        str.lower,
        lambda s: s.replace(".", ","),
        lambda s: s.replace("T", " "),
        lambda s: s.replace(":", "", 1),
        lambda s: s[:-1],
        lambda s: "\u0662" + s[1:],  # a digit to regex \d, not to isodate
    ]
)


@st.composite
def timestamps(draw: st.DrawFn, odd: bool) -> str:
    """ISO 8601 as Teams writes it: fractions of 0-9 digits, Z or ±hh:mm or no zone; odd adds the rest."""
    m = draw(st.datetimes())
    text = f"{m.year:04d}-{m.month:02d}-{m.day:02d}T{m.hour:02d}:{m.minute:02d}:{m.second:02d}"
    if draw(st.booleans()):
        text += "." + draw(DIGITS)
    text += draw(st.one_of(TEAMS_ZONES, ODD_ZONES) if odd else TEAMS_ZONES)
    if odd and draw(st.booleans()):
        text = draw(ODD_EDITS)(text)
    return text


def shapes(odd: bool) -> st.SearchStrategy[dict[str, Any]]:
    """Teams-shaped activities; odd also puts wrong-typed values in any field (msrest coerces or refuses)."""

    def v(good: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        return st.one_of(good, JSON) if odd else good

    def obj(
        model: type[Model], required: dict[str, Any], **optional: Any
    ) -> st.SearchStrategy[dict[str, Any]]:
        # Unknown keys too (msrest keeps them in additional_properties), some in the wrong case; when
        # not odd, none of the model's own keys (a random value there would be an odd one).
        known = st.fixed_dictionaries(
            {k: v(s) for k, s in required.items()}, optional={k: v(s) for k, s in optional.items()}
        )
        keys = st.text(max_size=10) | st.sampled_from(["ID", "Id", "tenantID", "TenantId", "Type", "From"])
        if not odd:
            declared = {desc["key"] for desc in model._attribute_map.values()}
            keys = keys.filter(lambda key: key not in declared)
        return st.builds(
            lambda extra, data: {**extra, **data}, st.dictionaries(keys, JSON, max_size=3), known
        )

    def listed(item: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        return v(st.lists(item | st.none() if odd else item, max_size=3))

    stamp = timestamps(odd)
    role = st.sampled_from(["user", "bot"])
    account = obj(ChannelAccount, {}, id=IDS, name=TEXT, aadObjectId=IDS, role=role, properties=JSON_OBJECT,
                  userRole=st.sampled_from(["user", "guest"]))  # fmt: skip
    kinds = st.sampled_from(["channel", "personal", "groupChat"])
    conversation = obj(ConversationAccount, {"id": IDS}, isGroup=st.booleans(), conversationType=kinds,
                       tenantId=IDS, tenantID=IDS, name=TEXT, aadObjectId=IDS, role=TEXT,
                       properties=JSON)  # fmt: skip
    entity = st.one_of(
        obj(Entity, {"type": st.just("mention"), "mentioned": account, "text": TEXT}),
        obj(Entity, {"type": st.just("clientInfo")}, locale=TEXT, country=TEXT, timezone=TEXT),
        obj(Entity, {}, type=TEXT),
    )
    content_types = st.sampled_from(["text/html", "application/vnd.microsoft.card.adaptive"])
    attachment = obj(Attachment, {}, contentType=content_types, content=JSON, contentUrl=TEXT, name=TEXT,
                     thumbnailUrl=TEXT)  # fmt: skip
    buttons = st.sampled_from(["imBack", "messageBack"])
    card_action = obj(CardAction, {"type": buttons}, title=TEXT, value=JSON, text=TEXT, displayText=TEXT,
                      image=TEXT, channelData=JSON, imageAltText=TEXT)  # fmt: skip
    reference = obj(ConversationReference, {}, activityId=TEXT, user=account, bot=account,
                    conversation=conversation, channelId=TEXT, locale=TEXT, serviceUrl=TEXT)  # fmt: skip
    states = st.sampled_from(["start", "continue", "done"])
    # A {dict} of entities is a type the fast path leaves to msrest: only among the odd.
    entities = {"entities": st.dictionaries(TEXT, entity, max_size=2)} if odd else {}
    semantic = obj(SemanticAction, {}, id=TEXT, state=states, **entities)
    reaction = obj(MessageReaction, {"type": TEXT})
    highlight = obj(TextHighlight, {"text": TEXT}, occurrence=st.integers())
    types = st.sampled_from(["message", "conversationUpdate", "invoke", "messageReaction", "event"])
    return obj(
        Activity, {"type": types, "conversation": conversation},
        id=IDS, timestamp=stamp, localTimestamp=stamp, localTimezone=TEXT, serviceUrl=TEXT,
        channelId=st.just("msteams"), **{"from": account}, recipient=account,
        textFormat=st.sampled_from(["plain", "markdown", "xml"]), attachmentLayout=TEXT,
        membersAdded=listed(account), membersRemoved=listed(account),
        reactionsAdded=listed(reaction), reactionsRemoved=listed(reaction),
        topicName=TEXT, historyDisclosed=st.booleans(), locale=TEXT, text=TEXT, speak=TEXT,
        inputHint=TEXT, summary=TEXT,
        suggestedActions=obj(SuggestedActions, {}, to=listed(TEXT), actions=listed(card_action)),
        attachments=listed(attachment), entities=listed(entity), channelData=JSON_OBJECT,
        action=TEXT, replyToId=IDS, label=TEXT, valueType=TEXT, value=JSON, name=TEXT,
        relatesTo=reference, code=TEXT, expiration=stamp, importance=TEXT, deliveryMode=TEXT,
        listenFor=listed(TEXT), textHighlights=listed(highlight),
        semanticAction=semantic, callerId=TEXT,
    )  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(shapes(odd=False))
def test_generated_teams_activities_take_the_fast_path(data: dict[str, Any]) -> None:
    stamps = [data.get(k) for k in ("timestamp", "localTimestamp", "expiration")]
    # Years 1 and 9999 go to msrest (whose UTC-year check may refuse them); the rest is fast.
    check(data, fast=not any(s and s[:4] in ("0001", "9999") for s in stamps))


@settings(max_examples=300, deadline=None)
@given(shapes(odd=True))
def test_generated_odd_activities_match_msrest(data: dict[str, Any]) -> None:
    event("fast path" if fast_activity(data) is not None else "msrest's path")
    event("msrest refused" if check(data) is None else "an activity")
