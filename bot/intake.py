"""What an inbound body must look like before the SDK sees it: odd input is a 400, never a 500.

The SDK's models and Teams helpers assume shapes that nothing checks (a `channelData.tenant` that is
an object, a mention that names who it mentions, strings that encode as UTF-8); a body that breaks
one of those assumptions would otherwise surface as an exception deep inside a turn.
"""

from __future__ import annotations

import json
from typing import Any

MAX_DEPTH = 32
"""No Teams activity nests anywhere near this deep."""


class Malformed(ValueError):
    """The body is not an activity this bot can take; the message says why (safe to show)."""


def parse(body: bytes) -> dict[str, Any]:
    """The activity JSON, checked for what later code relies on; Malformed otherwise."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise Malformed("body is not valid JSON") from exc
    if not isinstance(data, dict):
        raise Malformed("body is not an activity")
    _walk(data, 0, texts=_may_hold_surrogates(body))
    _shape(data)
    return data


def _may_hold_surrogates(body: bytes) -> bool:
    """Whether a decoded string could hold a lone surrogate: only from a `\\uD800`-`\\uDFFF` escape, or,
    in UTF-8, from bytes ED A0-BF (json.loads decodes with surrogatepass). Most bodies hold neither, and
    then no string needs checking. Other encodings (json.loads detects UTF-16 and -32) are checked."""
    if json.detect_encoding(body) != "utf-8":
        return True
    return b"\\ud" in body or b"\\uD" in body or b"\xed" in body


def _walk(value: Any, depth: int, *, texts: bool) -> None:
    if depth > MAX_DEPTH:
        raise Malformed(f"body nests deeper than {MAX_DEPTH} levels")
    if isinstance(value, str):
        if texts:
            _text(value)
    elif isinstance(value, dict):
        for key, item in value.items():
            if texts:
                _text(key)
            if isinstance(item, dict | list) or texts:
                _walk(item, depth + 1, texts=texts)
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, dict | list) or texts:
                _walk(item, depth + 1, texts=texts)


def _text(value: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:  # a lone surrogate (\ud800) decodes from JSON but is not text
        raise Malformed("body holds a string that is not valid Unicode") from exc


def _object(data: dict[str, Any], name: str, *, required: bool = False) -> dict[str, Any] | None:
    value = data.get(name)
    if value is None:
        if required:
            raise Malformed(f"activity has no {name}")
        return None
    if not isinstance(value, dict):
        raise Malformed(f"{name} is not an object")
    return value


def _string(data: dict[str, Any], name: str, where: str) -> None:
    value = data.get(name)
    if value is not None and not isinstance(value, str):
        raise Malformed(f"{where}{name} is not a string")


def _shape(data: dict[str, Any]) -> None:
    for name in ("type", "id", "channelId", "serviceUrl", "text", "name", "action", "replyToId"):
        _string(data, name, "")
    conversation = _object(data, "conversation", required=True)
    assert conversation is not None
    _string(conversation, "id", "conversation.")
    for name in ("from", "recipient"):
        account = _object(data, name)
        if account is not None:
            for field in ("id", "name", "aadObjectId"):
                _string(account, field, f"{name}.")
    channel_data = _object(data, "channelData")
    if channel_data is not None:
        for name in ("tenant", "team", "channel"):
            part = _object(channel_data, name)
            if part is not None:
                _string(part, "id", f"channelData.{name}.")
    entities = data.get("entities")
    if entities is not None and not isinstance(entities, list):
        raise Malformed("entities is not a list")
    for entity in entities or []:
        if not isinstance(entity, dict):
            raise Malformed("an entity is not an object")
        if entity.get("type") == "mention":
            mentioned = _object(entity, "mentioned")
            if mentioned is None or not isinstance(mentioned.get("id"), str):
                raise Malformed("a mention does not say who it mentions")
    for name in ("membersAdded", "membersRemoved", "attachments"):
        items = data.get(name)
        if items is not None and not (isinstance(items, list) and all(isinstance(i, dict) for i in items)):
            raise Malformed(f"{name} is not a list of objects")
