"""Command words: flag values take their words, quotes are optional, nothing typed is lost."""

from __future__ import annotations

from typing import ClassVar

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.text import has_control_chars
from dialogs.parsing import Args, ParseError, parse_args, tokenize, usage
from dialogs.rooms import CloseArgs, ListArgs, OpenArgs


class NoteArgs(Args):
    positional: ClassVar[tuple[str, ...]] = ("title",)
    title: str | None = None
    purpose: str | None = None
    reason: str | None = None
    basis: str | None = None
    urgent: bool = False


VALUE_FLAGS = ("purpose", "reason", "basis")
QUOTES = "\"'\u201c\u2018"


def parse(model: type[Args], text: str) -> Args:
    return parse_args(model, tokenize(text))


def _plain_word(word: str) -> bool:
    return (not word.startswith("--") and word[0] not in QUOTES and not has_control_chars(word)
            and not any(ch.isspace() for ch in word))  # fmt: skip


# Words as people type them: any printable text, apostrophes, quotes inside words, angle brackets.
WORDS = st.one_of(
    st.text(st.characters(exclude_categories=("Cs", "Cc", "Zs", "Zl", "Zp")), min_size=1, max_size=12),
    st.sampled_from(["St", "Mary's", "O'Brien's", "house", "<b>", "a>b", "<", "&amp;", "it's'", '5"', "x'y'z",
                     "-", "--", "-x", "\\", "*Op*", "[x](http://evil)", "12", "Ave."]),
).filter(_plain_word)


@st.composite
def typed(draw: st.DrawFn) -> tuple[list[str], list[tuple[str, list[str]]], bool]:
    """Positional words, then some flags (each value flag with its words), and whether to use --flag=value."""
    positional = draw(st.lists(WORDS, max_size=5))
    flags = draw(st.permutations([*VALUE_FLAGS, "urgent"]))[: draw(st.integers(0, 4))]
    given_flags = [(flag, [] if flag == "urgent" else draw(st.lists(WORDS, min_size=1, max_size=6)))
                   for flag in flags]  # fmt: skip
    return positional, given_flags, draw(st.booleans())


def _text(positional: list[str], flags: list[tuple[str, list[str]]], inline: bool) -> str:
    parts = list(positional)
    for flag, words in flags:
        if inline and words:
            parts += [f"--{flag}={words[0]}", *words[1:]]
        else:
            parts += [f"--{flag}", *words]
    return " ".join(parts)


@given(typed())
def test_every_word_lands_in_the_field_it_was_typed_in(case: tuple[list[str], list[tuple[str, list[str]]], bool]) -> None:
    positional, flags, inline = case
    args = parse(NoteArgs, _text(positional, flags, inline))
    assert isinstance(args, NoteArgs)
    assert args.title == (" ".join(positional) or None)
    for flag, words in flags:
        assert getattr(args, flag) == (True if flag == "urgent" else " ".join(words))
    for flag in {*VALUE_FLAGS} - {f for f, _ in flags}:
        assert getattr(args, flag) is None
    # Nothing lost, nothing moved: the fields' words, in the order typed, are the words typed (less the flags).
    got = (args.title or "").split() + [w for flag, words in flags if words for w in getattr(args, flag).split(" ")]
    assert got == positional + [w for _, words in flags for w in words]


@given(st.lists(WORDS.filter(lambda w: not set(w) & set(QUOTES)), min_size=1, max_size=6),
       st.sampled_from(['"', "'", "\u201c", "\u2018"]))  # fmt: skip
def test_a_quoted_value_is_the_words_between_the_quotes(words: list[str], quote: str) -> None:
    closing = {"\u201c": "\u201d", "\u2018": "\u2019"}.get(quote, quote)
    spoken = " ".join(words)
    args = parse(NoteArgs, f"Visit {quote}--not a flag{closing} --reason {quote}{spoken}{closing} --urgent")
    assert args == NoteArgs(title="Visit --not a flag", reason=spoken, urgent=True)
    assert parse(NoteArgs, f"--reason={quote}{spoken}{closing}") == NoteArgs(reason=spoken)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Lantern --purpose covert surveillance of 12 Acacia Ave",
         OpenArgs(name="Lantern", purpose="covert surveillance of 12 Acacia Ave")),
        ("Operation Lantern --digest 07:00 --purpose check St Mary's and O'Brien's house",
         OpenArgs(name="Operation Lantern", digest="07:00", purpose="check St Mary's and O'Brien's house")),
        ("*Op* [x](http://evil) <b>", OpenArgs(name="*Op* [x](http://evil) <b>")),
        ("'Lantern' --purpose=watch <the> 'back' door", OpenArgs(name="Lantern", purpose="watch <the> back door")),
        ("\"St Mary's\" --channel private", OpenArgs(name="St Mary's", channel="private")),
        ("Lantern --purpose 'tis the season", OpenArgs(name="Lantern", purpose="'tis the season")),
        ('Lantern --purpose "never closed', OpenArgs(name="Lantern", purpose='"never closed')),
        ("Lantern -- --purpose a - b", OpenArgs(name="Lantern --", purpose="a - b")),
    ],
)  # fmt: skip
def test_room_open_words(text: str, expected: OpenArgs) -> None:
    assert parse(OpenArgs, text) == expected


def test_room_close_reason_takes_every_word() -> None:
    assert parse(CloseArgs, "--reason two words") == CloseArgs(reason="two words")
    assert parse(CloseArgs, "--reason operation over --room OP-LANTERN") == CloseArgs(reason="operation over",
                                                                                     room="OP-LANTERN")  # fmt: skip


@pytest.mark.parametrize(
    ("model", "text", "message"),
    [
        (OpenArgs, "Lantern --purpose", "--purpose needs a value"),
        (OpenArgs, "Lantern --purpose a --purpose b", "--purpose given twice"),
        (OpenArgs, "Lantern --colour red", "unknown option `--colour`"),
        (OpenArgs, "Lantern --purpose use the --force", "unknown option `--force`"),
        (OpenArgs, "Lantern --name Other", "unknown option `--name`"),
        (OpenArgs, "--purpose x Lantern", "name: Field required"),  # the name never comes after a flag
        (OpenArgs, "Lantern --digest 07:00 tomorrow", "digest: must be a 24-hour time"),  # not silently cut
        (OpenArgs, "Lantern --channel private please", "channel: Input should be"),
        (ListArgs, "--all rooms", "--all takes no value: put `rooms` before the options"),
        (ListArgs, "everything", "unexpected words: `everything`"),
        (NoteArgs, "Visit --urgent now", "--urgent takes no value"),
        (CloseArgs, "--reason a\u202eb", "reason: cannot contain control characters or bidi overrides"),
        (OpenArgs, "Lantern --purpose x\u2066y", "purpose: cannot contain control characters"),
        (OpenArgs, "Lan\x1ctern", "name: cannot contain control characters"),  # not taken for a space
        (OpenArgs, "Lantern --template a\u2028b", "template: cannot contain control characters"),
    ],
)
def test_what_cannot_be_read_is_refused_with_the_reason(model: type[Args], text: str, message: str) -> None:
    with pytest.raises(ParseError) as caught:
        parse(model, text)
    assert message in str(caught.value)


@given(st.text(st.characters(exclude_categories=("Cs",)), max_size=40))
def test_tokenize_loses_no_character_but_spaces_and_the_quotes_it_reads(text: str) -> None:
    words = tokenize(text)
    kept = "".join(ch for ch in text if not (ch in " \t\n\r\f\v" or (ch.isspace() and not has_control_chars(ch))))
    joined = "".join(words)
    # Every character of a word is kept, in order; only quotes that delimited a span are removed.
    removed = list(kept)
    for ch in joined:
        assert ch in removed
        while removed[0] != ch:
            assert removed.pop(0) in QUOTES + "\u201d\u2019"
        removed.pop(0)
    assert all(ch in QUOTES + "\u201d\u2019" for ch in removed)


def test_usage_names_what_a_flag_takes() -> None:
    assert usage("room open", OpenArgs) == (
        "/room open <name> [--template T] [--classification OFFICIAL|OFFICIAL-SENSITIVE] [--purpose TEXT] "
        "[--digest HH:MM] [--channel thread|private|shared]"
    )
    assert usage("room close", CloseArgs) == "/room close [--room ROOM] [--reason TEXT]"
    assert usage("room list", ListArgs) == "/room list [--all]"


def test_value_is_a_fields_value_or_none_when_the_command_has_no_such_field() -> None:
    args = parse(NoteArgs, "Visit 12 Acacia Avenue --urgent")
    assert args.value("title") == "Visit 12 Acacia Avenue" and args.value("urgent") is True
    assert args.value("room") is None and args.value("__class__") is None
