"""Turning command text into words and a typed argument model."""

from __future__ import annotations

import shlex
import types
from typing import Any, ClassVar, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, ValidationError


class ParseError(Exception):
    """The words do not fit the command's grammar; the message says why."""


class Args(BaseModel):
    """Base of every command's argument model.

    `positional` names the fields filled from bare words, in order; the last one
    takes the rest of the words when `rest` is true (titles, notes, names).
    Every other field is a `--flag VALUE`, or a bare `--flag` for a bool.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    positional: ClassVar[tuple[str, ...]] = ()
    rest: ClassVar[bool] = True


class NoArgs(Args):
    """For commands that take nothing."""

    rest: ClassVar[bool] = False


def tokenize(text: str) -> list[str]:
    """Split on whitespace, honouring quotes; unbalanced quotes are a parse error."""
    lexer = shlex.shlex(text, posix=True)
    lexer.whitespace_split = True
    lexer.commenters = ""
    lexer.escape = ""  # backslashes are ordinary characters in chat text
    try:
        return list(lexer)
    except ValueError as exc:
        raise ParseError("a quote is not closed") from exc


def _is_bool(annotation: Any) -> bool:
    if annotation is bool:
        return True
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        return bool in get_args(annotation)
    return False


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def parse_args(model: type[Args], words: list[str]) -> Args:
    """Fill model from the words after the command words."""
    fields = model.model_fields
    values: dict[str, Any] = {}
    bare: list[str] = []
    i = 0
    while i < len(words):
        word = words[i]
        if word.startswith("--") and len(word) > 2:
            name, _, inline = word[2:].partition("=")
            key = name.replace("-", "_").lower()
            if key not in fields or key in model.positional:
                raise ParseError(f"unknown option {_flag(key)}")
            if key in values:
                raise ParseError(f"{_flag(key)} given twice")
            if _is_bool(fields[key].annotation) and not inline:
                values[key] = True
            elif inline:
                values[key] = inline
            elif i + 1 < len(words) and not words[i + 1].startswith("--"):
                values[key] = words[i + 1]
                i += 1
            else:
                raise ParseError(f"{_flag(key)} needs a value")
        else:
            bare.append(word)
        i += 1
    names = model.positional
    for index, name in enumerate(names):
        if not bare:
            break
        last = index == len(names) - 1
        if last and model.rest:
            values[name] = " ".join(bare)
            bare = []
        else:
            values[name] = bare.pop(0)
    if bare:
        raise ParseError(f"unexpected words: {' '.join(bare)}")
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
    """A usage line built from the model: `/room open <name> [--digest VALUE]`."""
    parts = [f"/{words}"]
    for name in model.positional:
        info = model.model_fields[name]
        label = name.replace("_", "-")
        parts.append(f"<{label}>" if info.is_required() else f"[{label}]")
    for name, info in model.model_fields.items():
        if name in model.positional:
            continue
        flag = _flag(name)
        shown = flag if _is_bool(info.annotation) else f"{flag} {name.upper()}"
        parts.append(shown if info.is_required() else f"[{shown}]")
    return " ".join(parts)
