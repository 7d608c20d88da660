"""Commands declared once: words, argument model, policy action, help (the docstring)."""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from dialogs.context import CommandContext, Later, Reply
from dialogs.parsing import Args, NoArgs, ParseError, parse_args, tokenize, usage

FACT_KINDS = frozenset({"person", "justification", "task", "assignee", "export"})

Handler = Callable[[CommandContext, Any], Awaitable[Reply | Later]]


@dataclass(frozen=True)
class Command:
    """A registered command."""

    words: str
    action: str
    args: type[Args]
    handler: Handler
    summary: str
    description: str
    needs_room: bool = False
    action_for: Callable[[Any], str] | None = None
    facts: tuple[str, ...] = ()
    """Facts its decision needs beyond the room, loaded before the policy step: `person:FIELD` (the
    person an argument names), `justification:FIELD` (the argument that justifies the request),
    `task:FIELD` (the room's task an argument numbers), `assignee:FIELD` (whom an argument gives a
    task to: a person or an agency)."""

    def action_of(self, args: Any) -> str:
        """The policy action for these arguments (some options need more rights)."""
        return self.action_for(args) if self.action_for is not None and args is not None else self.action

    @property
    def usage(self) -> str:
        """The usage line."""
        return usage(self.words, self.args)


@dataclass(frozen=True)
class Parsed:
    """A message matched to a command, with its arguments."""

    command: Command
    args: Args


class UnknownCommand(Exception):
    """No command starts with these words."""

    def __init__(self, words: str, suggestion: str | None) -> None:
        super().__init__(words)
        self.words = words
        self.suggestion = suggestion


class CommandParseError(Exception):
    """The command was recognised but its arguments were not."""

    def __init__(self, command: Command, message: str) -> None:
        super().__init__(message)
        self.command = command
        self.message = message


class Router:
    """Collects commands; registration fails loudly on duplicates and non-coroutines."""

    def __init__(self) -> None:
        self._commands: dict[str, Command] = {}

    def command(
        self,
        words: str,
        *,
        action: str,
        args: type[Args] = NoArgs,
        needs_room: bool = False,
        action_for: Callable[[Any], str] | None = None,
        facts: tuple[str, ...] = (),
    ) -> Callable[[Handler], Handler]:
        """Declare a command; the decorated coroutine's docstring is its help.

        needs_room: it acts on a room (the one it is typed in, or --room KEY).
        action_for: the policy action when it depends on the arguments (`/room list --all`).
        facts: what else the decision needs, as `kind:field` (see Command.facts).
        """

        def attach(handler: Handler) -> Handler:
            key = " ".join(words.lower().split())
            if not inspect.iscoroutinefunction(handler):
                raise TypeError(f"command {key!r}: handler {handler.__name__} is not a coroutine")
            if key in self._commands:
                raise ValueError(f"command {key!r} is declared twice")
            for fact in facts:
                kind, _, name = fact.partition(":")
                if kind not in FACT_KINDS or name not in args.model_fields:
                    raise ValueError(f"command {key!r}: fact {fact!r} is not kind:field of its arguments")
            doc = inspect.getdoc(handler)
            if not doc:
                raise ValueError(f"command {key!r}: handler needs a docstring (its help text)")
            summary, _, description = doc.partition("\n")
            self._commands[key] = Command(key, action, args, handler, summary, description.strip(),
                                          needs_room, action_for, tuple(facts))  # fmt: skip
            return handler

        return attach

    def include(self, other: Router) -> None:
        """Take every command of another router (one per feature module)."""
        for command in other.commands():
            if command.words in self._commands:
                raise ValueError(f"command {command.words!r} is declared twice")
            self._commands[command.words] = command

    def commands(self) -> list[Command]:
        """All commands, sorted by their words."""
        return [self._commands[k] for k in sorted(self._commands)]

    def get(self, words: str) -> Command | None:
        """A command by its words."""
        return self._commands.get(" ".join(words.lower().split()))

    def parse(self, text: str, given: Mapping[str, str] | None = None) -> Parsed:
        """Match the longest command prefix and parse the rest into its model (given: fields a card's
        inputs filled, taken literally)."""
        words = text.split()
        lowered = [w.lower() for w in words]
        for size in range(min(3, len(words)), 0, -1):
            command = self._commands.get(" ".join(lowered[:size]))
            if command is not None:
                rest = text.split(None, size)[size] if len(words) > size else ""
                try:
                    return Parsed(command, parse_args(command.args, tokenize(rest), given))
                except ParseError as exc:
                    raise CommandParseError(command, str(exc)) from exc
        raise UnknownCommand(" ".join(words[:2]), self.suggest(lowered))

    def suggest(self, lowered: list[str]) -> str | None:
        """The closest known command to what was typed."""
        lowered = [word[:32] for word in lowered[:2]]  # difflib is quadratic: compare command-sized words
        names = list(self._commands)
        for size in (2, 1):
            guess = " ".join(lowered[:size])
            close = difflib.get_close_matches(guess, names, n=1, cutoff=0.6)
            if close:
                return close[0]
        firsts = {name.split()[0]: name for name in names}
        if lowered:
            close = difflib.get_close_matches(lowered[0], list(firsts), n=1, cutoff=0.6)
            if close:
                return firsts[close[0]]
        return None
