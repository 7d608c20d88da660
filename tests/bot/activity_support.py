"""Comparing bot.activity_json with msrest: the same Activity, attribute by attribute, or the same exception.

The comparison walks both object graphs itself: msrest models compare by __dict__, and datetimes by
instant only, so `==` alone would pass a "+01:00" time given as the equal UTC time, or a tzinfo of the
wrong class. Each parity check also asserts whether the fast path was taken, so a converter that always
fell back to msrest (and so always "agreed") would fail.
"""

from __future__ import annotations

import copy
import math
from datetime import datetime
from typing import Any

import pytest
from botbuilder.schema import Activity
from msrest.serialization import Model

from bot.activity_json import activity_from_json, fast_activity

SERVICE_URL = "https://smba.trafficmanager.net/uk/"


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
