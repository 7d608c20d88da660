"""Showing what people typed literally: one escaping function per place text is shown.

Three targets, three rules (CommonMark's, limited to what Teams renders or may render):

- **Card Markdown** (`escape_card`): Adaptive Card TextBlock text and Fact values. Teams renders a
  Markdown subset there (bold, italic, lists, links) and no HTML; entities are not decoded by every
  renderer, so `&lt;` is no escape. Backslash escapes: always before \\ ` * _ [ ] < > ~ | { (`{` also
  keeps `{{DATE(...)}}` from being read as a date function), before `&` when it would start an entity
  (`&amp;`), and at the start of a line before # - + = and the `.` or `)` of `1.`.
- **Message Markdown** (`escape_message`): the text of a message sent with textFormat markdown. Teams
  reads it as Markdown with HTML in it, and decodes entities: & < > become `&amp; &lt; &gt;`, and
  { } `&#123; &#125;` (Teams hides text between braces); the other characters are escaped as for cards.
- **Code spans** (`code`): inside one nothing is escaped and nothing is interpreted, so the fence is a
  run of backticks longer than any inside the text, padded with spaces when the text starts or ends
  with a backtick (or with spaces at both ends). Line breaks inside become spaces; keep it to one line.

`Markdown` marks text that is Markdown already (our own constants, or built by `card_markdown`,
`message_markdown` and `code`); the card builders escape everything else.
"""

from __future__ import annotations

import re

_BREAK = re.compile(r"\r\n|\r|\n")
_LINE_START = re.compile(r"([ \t]*)(?:([#+=-])|(\d{1,9})([.)]))")
_ENTITY_LIKE = re.compile(r"&(?=#?[0-9A-Za-z]+;)")
_CARD = str.maketrans({ch: "\\" + ch for ch in "\\`*_[]<>~|{"})
_MESSAGE = str.maketrans({**{ch: "\\" + ch for ch in "\\`*_[]~|"}, "&": "&amp;", "<": "&lt;", ">": "&gt;",
                          "{": "&#123;", "}": "&#125;"})  # fmt: skip
_BACKTICKS = re.compile(r"`+")


class Markdown(str):
    """Text that is Markdown already: shown as written, never escaped again."""


def _line_start(line: str) -> tuple[str, str]:
    """A line's block marker (a heading, a list item, a setext underline) escaped, and the rest."""
    found = _LINE_START.match(line)
    if found is None:
        return "", line
    space, mark, digits, dot = found.groups()
    head = f"{space}\\{mark}" if mark else f"{space}{digits}\\{dot}"
    return head, line[found.end() :]


def _escape_line(line: str, table: dict[int, str], entities: bool) -> str:
    head, rest = _line_start(line)
    body = rest.translate(table)
    if entities and "&" in body:
        # `&` is not in the card table and what translate adds is never a letter, digit, # or ;, so
        # an `&` that starts an entity in the text still starts one here.
        body = _ENTITY_LIKE.sub(r"\\&", body)
    return head + body


def _escape(text: str, table: dict[int, str], *, entities: bool) -> str:
    if "\n" not in text and "\r" not in text:  # one line, nearly always: nothing to split
        return _escape_line(text, table, entities)
    parts = _BREAK.split(text)
    breaks = [*_BREAK.findall(text), ""]
    return "".join(_escape_line(line, table, entities) + brk for line, brk in zip(parts, breaks, strict=True))


def escape_card(text: str) -> str:
    """Text shown literally in an Adaptive Card TextBlock or Fact value."""
    return _escape(text, _CARD, entities=True)


def escape_message(text: str) -> str:
    """Text shown literally in a message's Markdown."""
    return _escape(text, _MESSAGE, entities=False)


def code(text: str) -> Markdown:
    """Text shown literally as a code span (one line); empty text gives no span."""
    if not text:
        return Markdown("")
    longest = max((len(run) for run in _BACKTICKS.findall(text)), default=0)
    fence = "`" * (longest + 1)
    pad = text[0] == "`" or text[-1] == "`" or (text[0] == " " and text[-1] == " " and text.strip(" ") != "")
    space = " " if pad else ""
    return Markdown(f"{fence}{space}{text}{space}{fence}")


def for_card(text: str) -> str:
    """Card Markdown for text: as written if it is Markdown already, else escaped."""
    return str(text) if isinstance(text, Markdown) else escape_card(text)


def for_message(text: str) -> str:
    """Message Markdown for text: as written if it is Markdown already, else escaped."""
    return str(text) if isinstance(text, Markdown) else escape_message(text)


def card_markdown(template: str, **values: str) -> Markdown:
    """Our card Markdown with people's text filled in escaped: card_markdown("**{who}** leads", who=name)."""
    return Markdown(template.format_map({key: for_card(value) for key, value in values.items()}))


def message_markdown(template: str, **values: str) -> Markdown:
    """Our message Markdown with people's text filled in escaped (Markdown values as they are)."""
    return Markdown(template.format_map({key: for_message(value) for key, value in values.items()}))
