"""Turning command text into words and a typed argument model."""

from __future__ import annotations

import types
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from core import text as safe
from dialogs.text import code


class ParseError(Exception):
    """The words do not fit the command's grammar; the message (Markdown) says why."""


class Args(BaseModel):
    """Base of every command's argument model.

    `positional` names the fields filled from bare words, in order; the last one takes the rest of
    the words when `rest` is true (titles, notes, names). Every other field is a `--flag VALUE`, or a
    bare `--flag` for a bool. `labels` names a flag's value in the usage line (`--purpose TEXT`).

    How the words are read:

    - The positional words come first and stop at the first `--flag`.
    - A flag's value is every word after it up to the next `--flag`, quotes or not:
      `--purpose covert surveillance of 12 Acacia Ave`. `--flag=value` is the same as `--flag value`.
    - A bool flag takes no words. Words after one are positional if no positional word came before
      it (`/task add --urgent Visit 12`); otherwise they are an error (`/task add Visit --urgent 12`).
    - A word starting with `--` that is not one of the command's flags is an error; to have such
      a word in a value, quote it: `--reason "the --all option"`.
    - Quotes are allowed, never required (see `tokenize`). Nothing is dropped or moved: every word
      lands in the field it was typed in, or the command is refused with its usage.
    - No text field may hold control characters or bidi overrides (text that displays as
      something else); the command is refused.

    `private` names free-text fields (notes) that the append-only audit log keeps only the length
    of: it holds what was asked, never what people wrote to each other (see `audited`).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    positional: ClassVar[tuple[str, ...]] = ()
    rest: ClassVar[bool] = True
    labels: ClassVar[dict[str, str]] = {}
    private: ClassVar[frozenset[str]] = frozenset()
    hidden: ClassVar[frozenset[str]] = frozenset()
    """Flags left out of the usage line: set by the bot's own buttons (paging), not for typing."""

    @field_validator("*")
    @classmethod
    def _printable(cls, value: Any) -> Any:
        if isinstance(value, str) and safe.has_control_chars(value):
            raise ValueError("cannot contain control characters or bidi overrides")
        return value

    def value(self, name: str) -> Any:
        """The named field's value, or None when this command has no such field: a plain look-up, where
        getattr on a name the model lacks goes through pydantic's slow missing-attribute path (and every
        request asks for `room`)."""
        return self.__dict__.get(name)

    def audited(self) -> dict[str, Any]:
        """The arguments as the audit event records them: a private field as its length only."""
        out: dict[str, Any] = {}
        for key, value in self.model_dump(exclude_none=True).items():
            if key in self.private:
                out[f"{key}_length"] = len(value) if isinstance(value, str) else None
            else:
                out[key] = value
        return out


class NoArgs(Args):
    """For commands that take nothing."""

    rest: ClassVar[bool] = False


class Word(str):
    """A word of command text; `quoted` when it was a quoted span (never an option, then)."""

    quoted: bool = False

    def __new__(cls, text: str, quoted: bool = False) -> Word:
        word = super().__new__(cls, text)
        word.quoted = quoted
        return word


_QUOTES = {'"': '"', "'": "'", "\u201c": "\u201d", "\u2018": "\u2019"}  # straight and curly


def _is_space(ch: str) -> bool:
    # Control characters that Python counts as space (\x1c-\x1f, \x85, \u2028) stay in the word,
    # so that a text field refuses them rather than having them vanish.
    return ch in " \t\n\r\f\v" or (ch.isspace() and not safe.has_control_chars(ch))


def _closing(text: str, start: int, quote: str) -> int | None:
    """Where a quoted span opened before `start` ends: its closing quote followed by a space or the end."""
    at = text.find(quote, start)
    while at != -1:
        if at + 1 == len(text) or _is_space(text[at + 1]):
            return at
        at = text.find(quote, at + 1)
    return None


def tokenize(text: str) -> list[Word]:
    """Split on spaces. A quote at the start of a word (or just after `--flag=`) opens a quoted span that
    ends at the same quote at the end of a word: `"Acacia Avenue"`, `'door knock'`, `--reason="a b"`. Any
    other quote is text: `St Mary's`, `O'Brien's house`, `5" pipe`; so is an opening quote that is never
    closed. Backslashes are text too."""
    words: list[Word] = []
    i, end = 0, len(text)
    while i < end:
        if _is_space(text[i]):
            i += 1
            continue
        j = i
        while j < end and not _is_space(text[j]):
            j += 1
        word = text[i:j]
        prefix, opening = "", i
        if word.startswith("--") and "=" in word:
            prefix = word[: word.index("=") + 1]
            opening = i + len(prefix)
        if opening < end and text[opening] in _QUOTES:
            close = _closing(text, opening + 1, _QUOTES[text[opening]])
            if close is not None:
                inner = text[opening + 1 : close]
                words.append(Word(prefix + inner) if prefix else Word(inner, quoted=True))
                i = close + 1
                continue
        words.append(Word(word))
        i = j
    return words


def _is_bool(annotation: Any) -> bool:
    if annotation is bool:
        return True
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        return bool in get_args(annotation)
    return False


def _choices(annotation: Any) -> tuple[Any, ...] | None:
    if get_origin(annotation) is Literal:
        return get_args(annotation)
    if get_origin(annotation) in (Union, types.UnionType):
        for part in get_args(annotation):
            if get_origin(part) is Literal:
                return get_args(part)
    return None


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _is_option(word: str) -> bool:
    return not getattr(word, "quoted", False) and word.startswith("--") and len(word) > 2


def parse_args(model: type[Args], words: Sequence[str], given: Mapping[str, str] | None = None) -> Args:
    """Fill model from the words after the command words (see Args for the rules).

    given: values for fields taken literally, not as words (what a card's input fields submit: a note
    typed into a card is text, its quotes and `--` included); empty ones count as not given.
    """
    fields = model.model_fields
    values: dict[str, Any] = {}
    collected: dict[str, list[str]] = {}  # each value flag's words, in order
    bare: list[str] = []
    current: str | None = None  # the value flag taking the words that follow
    last_bool: str | None = None
    closed = False  # an option came after the positional words: they are over
    for word in words:
        if _is_option(word):
            closed = closed or bool(bare)
            name, equals, inline = word[2:].partition("=")
            key = name.replace("-", "_").lower()
            if key not in fields or key in model.positional:
                raise ParseError(f"unknown option {code(word.partition('=')[0])}")
            if key in values or key in collected:
                raise ParseError(f"{_flag(key)} given twice")
            if _is_bool(fields[key].annotation):
                values[key] = inline if equals else True
                current, last_bool = None, key
            else:
                collected[key] = [inline] if inline else []
                current = key
        elif current is not None:
            collected[current].append(word)
        elif last_bool is not None and (closed or not model.positional):
            raise ParseError(f"{_flag(last_bool)} takes no value: put {code(word)} before the options")
        else:
            bare.append(word)
    for key, taken in collected.items():
        if not taken:
            raise ParseError(f"{_flag(key)} needs a value")
        values[key] = " ".join(taken)
    names = model.positional
    for index, name in enumerate(names):
        if not bare:
            break
        if index == len(names) - 1 and model.rest:
            values[name] = " ".join(bare)
            bare = []
        else:
            values[name] = bare.pop(0)
    if bare:
        raise ParseError(f"unexpected words: {code(' '.join(bare))}")
    for key, value in (given or {}).items():
        if key not in fields:
            raise ParseError(f"this command has no field {code(key)}")
        if key in values:
            raise ParseError(f"{key.replace('_', '-')} given twice")
        if value.strip():
            values[key] = value
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        raise ParseError(_explain(exc)) from exc


def _explain(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"]) or "arguments"
        label = where if where in ("arguments",) else where.replace("_", "-")
        message = str(error["msg"]).removeprefix("Value error, ")  # our validators' own words
        problems.append(f"{label}: {message}")
    return "; ".join(problems)


def usage(words: str, model: type[Args]) -> str:
    """A usage line built from the model: `/room open <name> [--purpose TEXT] [--channel thread|private]`."""
    parts = [f"/{words}"]
    for name in model.positional:
        info = model.model_fields[name]
        label = name.replace("_", "-")
        parts.append(f"<{label}>" if info.is_required() else f"[{label}]")
    for name, info in model.model_fields.items():
        if name in model.positional or name in model.hidden:
            continue
        flag = _flag(name)
        choices = _choices(info.annotation)
        value = model.labels.get(name) or ("|".join(map(str, choices)) if choices else name.upper())
        shown = flag if _is_bool(info.annotation) else f"{flag} {value}"
        parts.append(shown if info.is_required() else f"[{shown}]")
    return " ".join(parts)
