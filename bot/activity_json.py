"""An inbound activity's JSON as botbuilder's Activity, without msrest's generic deserializer.

`Activity().deserialize(data)` walks every model's attribute map through msrest's key extractors,
copying each attribute description and coercing each value through a chain of type lookups: some 9%
of the bot's CPU per request, over ten times what building the objects directly costs. The fast path
here makes the same objects from the same attribute maps, compiled once at import, but only for values
it reproduces exactly. Any other value (one msrest would coerce, such as `"isGroup": "true"` or a
number where text belongs; a timestamp in a rarer ISO 8601 form; a type it parses loosely) sends the
whole activity to msrest, so the result is always the SDK's own, and so is the exception when msrest
refuses the data.

What msrest does, and the fast path therefore does too (these surprise readers of the Teams JSON):

* Keys are matched exactly, case included, and a key a model does not declare is kept, uncopied, in
  that model's `additional_properties`. So `conversation.tenantId` (the SDK declares `tenantID`)
  leaves `conversation.tenant_id` None and lands in `conversation.additional_properties`; a mention's
  `mentioned` and `text` are in its Entity's `additional_properties` (msrest makes every entity a
  plain Entity); Teams' `from.userRole` and the like too.
* `object` fields (`channel_data`, `value`, an attachment's `content`, `properties`) are deep copies
  of the JSON, so `channel_data.tenant.id` is a plain dict path.
* Timestamps are isodate's: "Z" gives isodate's UTC tzinfo (named "UTC"), "+01:00" a FixedOffset
  named "+01:00", no zone a naive datetime; fractions past six digits are cut, not rounded.
  Datetimes compare by instant only, so the tests compare tzinfo separately.

Deserializing drops nothing of the JSON, but msrest's serialize() leaves `additional_properties` out:
an activity serialized again has lost `conversation.tenantId` and its mentions' `mentioned`.

The one difference from msrest's result is in no value: the fast path shares one FixedOffset per zone
name between activities, where msrest makes a new one each time.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from functools import cache
from typing import Any

from botbuilder.schema import Activity
from isodate.tzinfo import UTC, FixedOffset  # type: ignore[import-untyped]

__all__ = ["activity_from_json", "fast_activity"]

Converter = Callable[[Any], Any]


class _Unsupported(Exception):
    """A value the fast path does not reproduce exactly: msrest deserializes the whole activity."""


def activity_from_json(data: dict[str, Any]) -> Activity:
    """What `Activity().deserialize(data)` returns, built directly when the data allows.

    Raises what that call raises (msrest's DeserializationError) for data msrest refuses.
    """
    activity = fast_activity(data)
    return activity if activity is not None else Activity().deserialize(data)


def fast_activity(data: dict[str, Any]) -> Activity | None:
    """The Activity built without msrest, or None when the data holds a value only msrest reproduces."""
    try:
        return _ACTIVITY(data)
    except (_Unsupported, RecursionError):
        return None


# --- values ------------------------------------------------------------------------------------------
# Each converter takes a value that is not None (msrest turns None into None for every type) and
# returns what msrest's Deserializer.deserialize_data returns for it, or raises _Unsupported.


def _unsupported(value: Any) -> Any:
    raise _Unsupported


def _str(value: Any) -> str:
    if type(value) is str:
        return value
    raise _Unsupported  # msrest would store str(value): 5 -> "5", True -> "True", {} -> "{}"


def _bool(value: Any) -> bool:
    if type(value) is bool:
        return value
    raise _Unsupported  # msrest takes 1, 0, 1.0, "true", "FALSE", "1"... and refuses the rest


def _int(value: Any) -> int:
    if type(value) is int:
        return value
    raise _Unsupported  # msrest would store int(value): True -> 1, 2.7 -> 2, "3" -> 3


def _copy(value: Any) -> Any:
    """msrest's deserialize_object on JSON: containers copied, scalars kept (the same objects)."""
    kind = type(value)
    if kind is str or kind is int or kind is float or kind is bool or value is None:
        return value
    if kind is dict:
        return {key: _copy(item) for key, item in value.items()}
    if kind is list:
        return [_copy(item) for item in value]
    raise _Unsupported  # not JSON: msrest raises its own error


_ISO_8601 = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]+))?"
    r"(Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])?"
)
"""The forms Teams sends. msrest (through isodate) also takes lower case, a comma before the fraction,
+hhmm and +hh zones and offsets past 23:59 (refused later, or not); those take msrest's path."""


@cache  # at most 2 * 24 * 60 names pass _ISO_8601; isodate's FixedOffset is never changed once made
def _offset(name: str) -> FixedOffset:
    sign = -1 if name[0] == "-" else 1
    return FixedOffset(sign * int(name[1:3]), sign * int(name[4:6]), name)


def _datetime(value: Any) -> datetime:
    """msrest's deserialize_iso: isodate's parse, fractions cut to microseconds, isodate's tzinfo."""
    match = _ISO_8601.fullmatch(value) if type(value) is str else None
    if match is None:
        raise _Unsupported
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    if year in ("0001", "9999"):  # msrest refuses these when the zone moves UTC out of 1..9999
        raise _Unsupported
    # isodate floors the fraction to microseconds (msrest first cuts it to six digits).
    micro = int(fraction[:6].ljust(6, "0")) if fraction else 0
    tzinfo = None if zone is None else UTC if zone == "Z" else _offset(zone)
    try:
        return datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), micro, tzinfo)
    except ValueError as exc:  # 2023-02-30, 24:00, a leap second: msrest raises DeserializationError
        raise _Unsupported from exc


def _list_of(item: Converter) -> Converter:
    def convert(value: Any) -> list[Any]:
        if type(value) is not list:
            raise _Unsupported
        return [None if entry is None else item(entry) for entry in value]

    return convert


# --- models ------------------------------------------------------------------------------------------


class _Model:
    """One msrest model, compiled: its JSON keys, with the attribute and converter each fills."""

    __slots__ = ("cls", "fields", "template")

    def __init__(self, cls: type) -> None:
        self.cls = cls
        self.fields: dict[str, tuple[str, Converter]] = {}
        self.template: dict[str, Any] = {}
        """The instance __dict__ before data: what the model's __init__ leaves (checked by _plain)."""

    def __call__(self, data: Any) -> Any:
        if type(data) is not dict:
            raise _Unsupported  # msrest fails on anything but a mapping
        attrs = self.template.copy()
        extra = {}
        fields = self.fields
        for key, value in data.items():
            field = fields.get(key)
            if field is None:
                extra[key] = value  # as msrest: kept as it came, not copied
            elif value is not None:
                attrs[field[0]] = field[1](value)
        attrs["additional_properties"] = extra
        # msrest calls __init__ with every attribute; _plain checked that it only stores them.
        obj: Any = object.__new__(self.cls)
        obj.__dict__ = attrs
        return obj


def _plain(cls: Any) -> dict[str, Any] | None:
    """The model's bare __dict__ when msrest builds it by plain assignment, None otherwise.

    Plain: no readonly or constant attributes, no subtypes, no flattened or catch-all keys, and an
    __init__ that stores each keyword as given and nothing else. A model that is not (a later SDK)
    makes every activity using it take msrest's path instead of a wrong fast result.
    """
    attribute_map: dict[str, dict[str, Any]] = cls._attribute_map
    if cls._validation or cls.__dict__.get("_subtype_map") or "additional_properties" in attribute_map:
        return None
    if any(not desc["key"] or "." in desc["key"] for desc in attribute_map.values()):
        return None
    probe = {attr: object() for attr in attribute_map}
    try:
        stored: dict[str, Any] = vars(cls(**probe))
        bare: dict[str, Any] = vars(cls())
    except Exception:
        return None
    expected = {"additional_properties", *attribute_map}
    if set(stored) != expected or any(stored[attr] is not probe[attr] for attr in attribute_map):
        return None
    if set(bare) != expected or bare["additional_properties"] != {}:
        return None
    if any(bare[attr] is not None for attr in attribute_map):
        return None
    return bare


def _compile(root: str, classes: dict[str, Any]) -> Converter:
    """The converter of model `root`, from msrest's attribute maps, resolving names as msrest does."""
    models: dict[str, Converter] = {}

    def model(name: str) -> Converter:
        if name in models:
            return models[name]
        bare = _plain(classes[name])
        if bare is None:
            models[name] = _unsupported
            return _unsupported
        compiled = models[name] = _Model(classes[name])
        compiled.template = bare
        for attr, desc in classes[name]._attribute_map.items():
            compiled.fields[desc["key"]] = (attr, converter(desc["type"]))
        return compiled

    def converter(type_name: str) -> Converter:
        # msrest's order in deserialize_data: basic types, named types, [list], {dict}, then models.
        simple = {"str": _str, "bool": _bool, "int": _int, "iso-8601": _datetime, "object": _copy}
        if type_name in simple:
            return simple[type_name]
        if type_name[:1] == "[" and type_name[-1:] == "]":
            return _list_of(converter(type_name[1:-1]))
        target = classes.get(type_name)
        if isinstance(target, type) and hasattr(target, "_attribute_map"):
            return model(type_name)
        return _unsupported  # float, long, duration, {dict}, enums...: rare, so msrest's

    return model(root)


# The name table msrest's own Activity().deserialize resolves types with.
_ACTIVITY = _compile("Activity", Activity._infer_class_models())
