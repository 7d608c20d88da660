"""Where things are in a Cedar policy file: cedarpy's errors carry no line, so we find it.

The file is split into its statements (each ends at a `;` outside strings and comments), in
file order, which is also the order of Cedar's positional policy ids (`policy0`, `policy1`...).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

_QUOTED = re.compile(r"`([^`]+)`")
_WORD = re.compile(r"[@A-Za-z_][\w.:@]*")
_END = "unexpected end of input"


@dataclass(frozen=True)
class Statement:
    """One policy's text, with the offsets and the first line it spans."""

    start: int
    end: int
    line: int
    text: str


def statements(text: str) -> list[Statement]:
    """The file's statements in order; an unterminated tail counts as one."""
    found: list[Statement] = []
    start: int | None = None
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "/" and text.startswith("//", i):
            newline = text.find("\n", i)
            i = n if newline < 0 else newline
            continue
        if start is None and not c.isspace():
            start = i
        if c == '"':
            i += 1
            while i < n and text[i] != '"':
                i += 2 if text[i] == "\\" else 1
        elif c == ";" and start is not None:
            found.append(_statement(text, start, i + 1))
            start = None
        i += 1
    if start is not None:
        found.append(_statement(text, start, n))
    return found


def _statement(text: str, start: int, end: int) -> Statement:
    return Statement(start, end, text.count("\n", 0, start) + 1, text[start:end])


def line_of(text: str, offset: int) -> int:
    """The 1-based line of an offset."""
    return text.count("\n", 0, offset) + 1


def last_line(statement: Statement) -> int:
    """The line of the statement's last character."""
    return statement.line + statement.text.rstrip().count("\n")


def mention_line(statement: Statement, message: str, skip: frozenset[str] = frozenset()) -> int | None:
    """The first line of the statement naming what the message quotes (`name`), if any."""
    names = [q for q in _QUOTED.findall(message) if q not in skip and any(c.isalnum() for c in q)]
    tail = message.rsplit(": ", 1)[-1].strip()
    if _WORD.fullmatch(tail) and tail not in skip:
        names.append(tail)
    for name in names:
        pattern = re.escape(name)
        if _WORD.fullmatch(name):  # a whole word, or an attribute after a dot
            pattern = rf"(?<![\w]){pattern}(?!\w)"
        found = re.search(pattern, statement.text)
        if found is not None:
            return statement.line + statement.text.count("\n", 0, found.start())
    return None


def parse_error_line(text: str, parse: Callable[[str], object]) -> tuple[int, str] | None:
    """The line and message of the first statement that `parse` refuses, None if none does.

    An LR parser stops at the first token that cannot continue a valid prefix, so the error's
    line is the first line whose prefix of the statement already fails the same way.
    """
    for statement in statements(text):
        message = _error(parse, statement.text)
        if message is None:
            continue
        if message == _END:
            return last_line(statement), message
        lines = statement.text.split("\n")
        for count in range(1, len(lines) + 1):
            if _error(parse, "\n".join(lines[:count])) == message:
                line = statement.line + count - 1
                if line == last_line(statement) and "unexpected token" not in message:
                    line = mention_line(statement, message) or line
                return line, message
        return statement.line, message
    return None


def _error(parse: Callable[[str], object], text: str) -> str | None:
    try:
        parse(text)
    except ValueError as exc:
        return str(exc)
    return None
