"""Declaring commands and parsing their arguments."""

from __future__ import annotations

from typing import ClassVar, Literal

import pytest

from dialogs.commands import build_router
from dialogs.context import CommandContext, Reply
from dialogs.parsing import Args, ParseError, parse_args, tokenize
from dialogs.registry import CommandParseError, Router, UnknownCommand


class AddArgs(Args):
    positional: ClassVar[tuple[str, ...]] = ("title",)
    title: str
    assign: str | None = None
    priority: Literal["high", "normal", "low"] = "normal"
    urgent: bool = False


def make_router() -> Router:
    router = Router()

    @router.command("task add", action="task.add", args=AddArgs)
    async def task_add(ctx: CommandContext, args: AddArgs) -> Reply:
        """Add a task."""
        return Reply(text=args.title)

    return router


def test_rest_of_words_and_flags() -> None:
    parsed = make_router().parse('task add Visit 12 "Acacia Avenue" --priority high --urgent')
    assert parsed.command.action == "task.add"
    assert parsed.args == AddArgs(title="Visit 12 Acacia Avenue", priority="high", urgent=True)


def test_flag_with_equals_and_quotes() -> None:
    parsed = make_router().parse("task add 'door knock' --assign=ann@force.police.uk")
    assert parsed.args == AddArgs(title="door knock", assign="ann@force.police.uk")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("task add", "title: Field required"),
        ("task add x --priority urgent", "priority: Input should be 'high', 'normal' or 'low'"),
        ("task add x --colour red", "unknown option `--colour`"),
        ("task add x --assign", "--assign needs a value"),
        ("task add x --assign a --assign b", "--assign given twice"),
        ("task add x --urgent y", "--urgent takes no value: put `y` before the options"),
    ],
)
def test_malformed_arguments_name_the_problem(text: str, message: str) -> None:
    with pytest.raises(CommandParseError) as caught:
        make_router().parse(text)
    assert message in caught.value.message
    assert caught.value.command.usage == "/task add <title> [--assign ASSIGN] [--priority high|normal|low] [--urgent]"


def test_unknown_command_suggests_the_closest() -> None:
    with pytest.raises(UnknownCommand) as caught:
        make_router().parse("tsk add x")
    assert caught.value.suggestion == "task add"


def test_duplicate_command_fails_at_registration() -> None:
    router = make_router()
    with pytest.raises(ValueError, match="declared twice"):

        @router.command("task add", action="task.add")
        async def again(ctx: CommandContext, args: object) -> Reply:
            """Again."""
            return Reply()


def test_non_coroutine_handler_fails_at_registration() -> None:
    with pytest.raises(TypeError, match="not a coroutine"):

        @Router().command("task add", action="task.add")
        def plain(ctx: CommandContext, args: object) -> Reply:  # type: ignore[arg-type]
            """Plain."""
            return Reply()


def test_handler_without_docstring_fails() -> None:
    with pytest.raises(ValueError, match="docstring"):

        @Router().command("x", action="x")
        async def bare(ctx: CommandContext, args: object) -> Reply:
            return Reply()


def test_tokenize_keeps_backslashes_and_an_unclosed_quote() -> None:
    assert tokenize(r"path C:\temp 'a b'") == ["path", "C:\\temp", "a b"]
    assert tokenize('"open') == ['"open']


def test_bool_flag_cannot_take_positional_words() -> None:
    # Words after a bool flag that follows the positional words would be moved: refused instead.
    with pytest.raises(ParseError, match="--urgent takes no value"):
        parse_args(AddArgs, ["a", "--urgent", "b"])
    assert parse_args(AddArgs, ["--urgent", "a", "b"]) == AddArgs(title="a b", urgent=True)


def test_real_router_has_every_feature() -> None:
    words = [c.words for c in build_router().commands()]
    assert words == sorted(words)
    assert {"agency add", "agency list", "agency show", "audit verify", "help", "room close", "room lead",
            "room list", "room open", "room reopen", "room status"} <= set(words)
