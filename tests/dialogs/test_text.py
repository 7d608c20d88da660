"""What people typed is shown literally: in card Markdown, message Markdown and code spans.

`render` is a small reference renderer for the Markdown Teams shows: it does what a renderer does with
backslash escapes, entities and code spans, and it treats every other character that can start
formatting (emphasis, links, strikethrough, tables, headings, lists, quotes, HTML, autolinks, card date
functions, text Teams hides between braces) as formatting, which is not shown as typed. So
render(escape(s)) == s says that nothing in s can be read as anything but text.
"""

from __future__ import annotations

import html
import re
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dialogs.cards import facts, text_block
from dialogs.text import Markdown, card_markdown, code, escape_card, escape_message, message_markdown

PUNCTUATION = set(string.punctuation)
_BREAK = re.compile(r"(\r\n|\r|\n)")
_BLOCK = re.compile(r"[ \t]*(?:#{1,6}(?=[ \t]|$)|[-+*](?=[ \t]|$)|\d{1,9}[.)](?=[ \t]|$)|>)")
_RULE = re.compile(r"[ \t]*(?:([-*_])(?:[ \t]*\1){2,}|=+|-+)[ \t]*")
_AUTOLINK = re.compile(r"<([A-Za-z][A-Za-z0-9+.-]{1,31}:[^<>\s]*)>")
_TAG = re.compile(r"</?[A-Za-z][^<>]*>|<![^<>]*>|<\?[^<>]*>")
_COMMONMARK_ENTITY = re.compile(r"&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});")
_HTML_ENTITY = re.compile(r"&(?:#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[A-Za-z][A-Za-z0-9]*;?)")
FORMATTING = set("*_~|[]")


def render(markdown: str, *, target: str, entities: bool = True) -> str:
    """The visible text. target: "card" (Adaptive Card TextBlock) or "message" (Teams message Markdown,
    HTML entities decoded as HTML does); entities: whether a card renderer decodes CommonMark entities."""
    parts = _BREAK.split(markdown)
    out = []
    for index, part in enumerate(parts):
        if index % 2:
            out.append(part)  # the line break itself
        elif _RULE.fullmatch(part) and part.strip():
            out.append("")  # a thematic break or a setext underline
        else:
            block = _BLOCK.match(part)  # a heading, list item or quote: its marker is not text
            text = part[block.end() :].lstrip(" \t") if block else part
            out.append(_inline(text, target=target, entities=entities))
    return "".join(out)


def _inline(line: str, *, target: str, entities: bool) -> str:
    out, at = [], 0
    while at < len(line):
        ch, rest = line[at], line[at:]
        if ch == "\\" and at + 1 < len(line) and line[at + 1] in PUNCTUATION:
            out.append(line[at + 1])
            at += 2
        elif ch == "`":
            fence = re.match(r"`+", rest).group()  # type: ignore[union-attr]
            closing = re.compile(rf"(?<!`){fence}(?!`)").search(line, at + len(fence))
            if closing is None:
                at += len(fence)  # a stray fence: formatting, not text
                continue
            inner = line[at + len(fence) : closing.start()]
            if inner.startswith(" ") and inner.endswith(" ") and inner.strip(" "):
                inner = inner[1:-1]
            out.append(inner)  # literal: no escapes, no entities
            at = closing.end()
        elif ch == "&" and (target == "message" or entities):
            found = (_HTML_ENTITY if target == "message" else _COMMONMARK_ENTITY).match(rest)
            decoded = html.unescape(found.group()) if found else "&"
            out.append(decoded)
            at += len(found.group()) if found and decoded != found.group() else 1
        elif ch == "<" and (link := _AUTOLINK.match(rest)):
            out.append(link.group(1))
            at += link.end()
        elif ch == "<" and (tag := _TAG.match(rest)):
            at += tag.end()  # markup, not text
        elif ch in FORMATTING or (ch == "{" and target == "card") or (ch in "{}" and target == "message"):
            at += 1
        else:
            out.append(ch)
            at += 1
    return "".join(out)


def test_the_renderer_sees_formatting() -> None:
    # If these failed, the properties below would prove nothing.
    assert render("*Op* [x](http://evil) <b>", target="card") == "Op x(http://evil) "
    assert render("# Heading\n- item\n12. twelve\n> quote", target="card") == "Heading\nitem\ntwelve\nquote"
    assert render("&lt;b&gt; `<b>` <http://x>", target="message") == "<b> <b> http://x"
    assert render("&lt;b&gt;", target="card", entities=False) == "&lt;b&gt;"
    assert render("a {{DATE(2017-02-14T06:08:00Z)}}", target="card") == "a DATE(2017-02-14T06:08:00Z)}}"
    assert render("\\*x\\* \\a", target="message") == "*x* \\a"


TEXT = st.text(st.characters(exclude_categories=("Cs",)))
NASTY = st.lists(st.sampled_from(["*", "_", "**", "`", "``", "[", "]", "(", ")", "<", ">", "&", "&amp;", "&lt;",
                                  "&#42;", "&copy", "#", "-", "+", "=", "1.", "2)", "\\", "~", "|", "{{", "}}",
                                  "{", "}", " ", "\n", "\r\n", "\r", "\t", "x", "!", "<b>", "<http://x>"]),
                 max_size=20).map("".join)  # fmt: skip


@given(st.one_of(TEXT, NASTY))
def test_card_text_shows_literally(text: str) -> None:
    escaped = escape_card(text)
    assert render(escaped, target="card", entities=True) == text
    assert render(escaped, target="card", entities=False) == text


@given(st.one_of(TEXT, NASTY))
def test_message_text_shows_literally(text: str) -> None:
    assert render(escape_message(text), target="message") == text


@given(st.one_of(TEXT, NASTY).filter(lambda t: "\n" not in t and "\r" not in t))
def test_a_code_span_shows_its_text_literally_and_cannot_be_broken_out_of(text: str) -> None:
    shown = f"before {code(text)} after"
    for target in ("card", "message"):
        assert render(shown, target=target) == f"before {text} after"


def test_code_spans_per_commonmark() -> None:
    assert code("/help") == "`/help`"
    assert code("a`b") == "``a`b``"
    assert code("`x") == "`` `x ``"
    assert code(" a ") == "`  a  `"
    assert code("``") == "``` `` ```"
    assert code("") == ""


def test_the_help_hint_and_a_hostile_room_name() -> None:
    assert escape_message("<command>") == "&lt;command&gt;"
    assert escape_card("*Op* [x](http://evil) <b>") == "\\*Op\\* \\[x\\](http://evil) \\<b\\>"
    assert escape_message("*Op* [x](http://evil) <b>") == "\\*Op\\* \\[x\\](http://evil) &lt;b&gt;"
    assert escape_card("A & B, R&D, &amp;") == "A & B, R&D, \\&amp;"  # & only where it would start an entity
    assert escape_card("OP-LANTERN 12. x") == "OP-LANTERN 12. x"  # list markers only at the start of a line


def test_builders_escape_unless_given_markdown() -> None:
    assert text_block("**x**")["text"] == "\\*\\*x\\*\\*"
    assert text_block(Markdown("**x**"))["text"] == "**x**"
    assert text_block(card_markdown("**{who}** leads", who="_Ann_"))["text"] == "**\\_Ann\\_** leads"
    assert facts([("Lead", "<b>Ann</b>"), ("Key", Markdown("`K`"))])["facts"] == [
        {"title": "Lead", "value": "\\<b\\>Ann\\</b\\>"}, {"title": "Key", "value": "`K`"}]  # fmt: skip
    assert message_markdown("There is no template {name}.", name=code("a`b")) == "There is no template ``a`b``."
    assert message_markdown("**{key}**", key="<x>") == "**&lt;x&gt;**"


@pytest.mark.parametrize("text", ["- a", "1) a", "# a", "+ a", "=", "  - a", "> a", "***", "a\n---"])
def test_line_starts(text: str) -> None:
    assert render(escape_card(text), target="card") == text
    assert render(escape_message(text), target="message") == text
