"""core.text.clean: user text made safe to store and log."""

from __future__ import annotations

import pytest

from core.text import DEFAULT_CAP, clean, has_control_chars


def test_none_stays_none() -> None:
    assert clean(None) is None


@pytest.mark.parametrize(
    "value",
    ["", "plain text", "Zoë Ellis — DS, Ελλάδα, 東京, 🚓", "quotes \" ' and \\ backslash", "<b>*x*</b>"],
)
def test_safe_text_is_unchanged(value: str) -> None:
    assert clean(value) == value
    assert not has_control_chars(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("a\nb", "a\\nb"),
        ("a\r\nb", "a\\r\\nb"),
        ("a\tb", "a\\tb"),
        ("nul\x00", "nul\\u0000"),
        ("esc\x1b[31mred", "esc\\u001b[31mred"),
        ("del\x7f", "del\\u007f"),
        ("c1\x85\x9f", "c1\\u0085\\u009f"),
        ("line\u2028para\u2029", "line\\u2028para\\u2029"),
        ("bidi\u202eevil\u202c", "bidi\\u202eevil\\u202c"),
        ("isolate\u2066x\u2069", "isolate\\u2066x\\u2069"),
    ],
)
def test_control_characters_are_escaped(value: str, expected: str) -> None:
    assert has_control_chars(value)
    cleaned = clean(value)
    assert cleaned == expected
    assert cleaned is not None and not has_control_chars(cleaned)


def test_text_at_the_cap_is_kept_whole() -> None:
    assert clean("x" * 10, 10) == "x" * 10
    assert clean("x" * DEFAULT_CAP) == "x" * DEFAULT_CAP


def test_long_text_is_cut_and_says_how_much() -> None:
    # The marker counts towards the cap, so the result always fits a column of that width.
    assert clean("x" * 40, 30) == "x" * 16 + "...[+24 chars]"
    assert clean("y" * (DEFAULT_CAP + 500)) == "y" * (DEFAULT_CAP - 16) + "...[+516 chars]"
    # A cap too small for the marker cuts without one.
    assert clean("x" * 11, 10) == "x" * 10


def test_cap_counts_escaped_characters() -> None:
    # Six characters of input become twelve once escaped.
    assert clean("\n" * 6, 10) == "\\n" * 5
    # A cut never splits an escape: "\\u001b" is kept whole or dropped whole.
    cut = clean("ab" + "\x1b" * 10, 24)
    assert cut == "ab\\u001b...[+54 chars]"
