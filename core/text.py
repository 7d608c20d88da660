"""Making user text safe to store and log."""

from __future__ import annotations

import re

# C0/C1 controls, DEL, line/paragraph separators and bidi overrides: anything
# that can break a log line or make stored text display as something else.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")

DEFAULT_CAP = 2000
_PARTIAL_ESCAPE = re.compile(r"\\(u[0-9a-f]{0,3})?")


def _escape(match: re.Match[str]) -> str:
    ch = match.group(0)
    return {"\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(ch, f"\\u{ord(ch):04x}")


def clean(value: str | None, cap: int = DEFAULT_CAP) -> str | None:
    """Escape control characters and cap the length at `cap`, saying how much was cut.

    The result, marker included, is never longer than cap (so it fits a column
    of that width), and a cut never splits an escape sequence.
    """
    if value is None:
        return None
    escaped = _UNSAFE.sub(_escape, value)
    if len(escaped) <= cap:
        return escaped
    marker_room = len(f"...[+{len(escaped)} chars]")
    if marker_room >= cap:
        return escaped[:cap]
    kept = escaped[: cap - marker_room]
    tail = kept.rfind("\\", max(0, len(kept) - 5))
    if tail != -1 and _PARTIAL_ESCAPE.fullmatch(kept[tail:]):
        kept = kept[:tail]
    return f"{kept}...[+{len(escaped) - len(kept)} chars]"


def has_control_chars(value: str) -> bool:
    """True when value holds characters clean() would escape."""
    return _UNSAFE.search(value) is not None
