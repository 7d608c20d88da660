"""/help: what the caller may run, and how."""

from __future__ import annotations

import functools
from dataclasses import replace
from typing import ClassVar

from dialogs.context import CommandContext, Reply
from dialogs.parsing import Args
from dialogs.registry import Command, Router
from dialogs.text import code, escape_message, message_markdown
from policies import Resource


class HelpArgs(Args):
    """`/help [command]`."""

    positional: ClassVar[tuple[str, ...]] = ("command",)
    command: str | None = None


def register(root: Router) -> None:
    """Add /help to root; it lists root's commands, so it is registered last."""

    listings: dict[tuple[int, ...], str] = {}
    """The listing of each set of allowed commands, written once (there are a few per kind of caller;
    the commands live as long as the router, so their ids name them)."""
    asked: list[tuple[list[Command], tuple[tuple[str, tuple[bool, bool]], ...]]] = []
    """The router's commands and what /help asks the policy about each (its action, and which facts it
    is listed under), worked out on the first /help: every command is registered by then."""

    @root.command("help", action="help", args=HelpArgs)
    async def help_command(ctx: CommandContext, args: HelpArgs) -> Reply:
        """Show the commands you may run, or how to use one: /help audit verify."""
        if not asked:
            commands = root.commands()
            asked.append((commands, tuple((c.action, _kind(c.facts)) for c in commands)))
        commands, questions = asked[0]

        def requests() -> list[tuple[str, Resource]]:
            variants: Variants = {}  # a few facts objects, not one per command
            return [(c.action, _as_if_valid(ctx, c, variants)) for c in commands]

        # The same questions on the same facts get the same answers: the list is remembered per caller kind.
        name = ("help", questions, ctx.resource)
        decisions = ctx.may_list(name, requests) if ctx.may_list is not None else ctx.may_all(requests())
        allowed = [c for c, decision in zip(commands, decisions, strict=True) if decision.allowed]
        if not args.command:
            key = tuple(id(c) for c in allowed)
            text = listings.get(key)
            if text is None:
                if len(listings) >= 256:
                    listings.clear()
                text = listings[key] = _listing(allowed, heading="Commands you can run here:")
            return Reply(text=text)
        wanted = " ".join(args.command.lower().lstrip("/").split())
        match = next((c for c in allowed if c.words == wanted), None)
        if match is not None:
            parts = [f"**{escape_message(match.usage)}**", escape_message(match.summary)]
            if match.description:  # docstrings are plain text
                parts.append(escape_message(match.description))
            return Reply(text="\n\n".join(parts))
        group = [c for c in allowed if c.words.startswith(wanted + " ")]
        if group:
            heading = message_markdown("**/{words}** commands you can run:", words=wanted)
            return Reply(text=_listing(group, heading=heading))
        return Reply(text=f"There is no command {code('/' + wanted)} you can run here. Try `/help`.")


Variants = dict[tuple[bool, bool], Resource]


def _as_if_valid(ctx: CommandContext, command: Command, variants: Variants) -> Resource:
    """The facts to list a command under: the request's, and for a command that names a person, as if it
    named an officer, for one that names a task, as if it were shared with the caller (whom or what it
    names is only known once it is run). variants: those made so far in this request, by kind."""
    kind = _kind(command.facts)
    resource = variants.get(kind)
    if resource is None:
        resource = ctx.resource
        if kind[0]:
            resource = replace(resource, target_kind="officer")
        if kind[1]:
            resource = replace(resource, shared_with_caller=True)
        variants[kind] = resource
    return resource


@functools.cache
def _kind(facts: tuple[str, ...]) -> tuple[bool, bool]:
    """Whether a command's facts name a person, and a task."""
    return any(f.startswith("person:") for f in facts), any(f.startswith("task:") for f in facts)


def _listing(commands: list[Command], *, heading: str) -> str:
    """Message Markdown. `<command>` is outside the code span, as `&lt;command&gt;`: some clients (Agents
    Playground) escape `<` in a message before reading its Markdown, so in a code span it would show as
    `&lt;command&gt;`; an entity outside one shows as `<` everywhere."""
    lines = [heading, ""]
    lines += [f"- {code('/' + c.words)}: {escape_message(c.summary)}" for c in commands]
    lines += ["", f"Type `/help` {escape_message('<command>')} for its options."]
    return "\n".join(lines)
