"""/task add | list | show | done | assign | note | reopen: the room's tasking.

The task a command numbers is loaded before the policy decides (fact `task:number`); one the caller
may not see is answered like one that does not exist. Whom a task is given to is resolved to an Entra
object id or an agency key (fact `assignee:FIELD`), never kept as typed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlmodel import Session

from core import text as safe
from core.agencies import service as agencies
from core.errors import Refused
from core.rooms import service as rooms
from core.rooms.models import Room, RoomMember
from core.tasks import service
from core.tasks.models import SHARE_ALL, Task, TaskEvent
from core.tasks.service import Actor
from core.tasks.when import WhenError, describe_due, parse_when
from dialogs.audience import more_tasks, not_here, view
from dialogs.context import CommandContext, Later, Reply
from dialogs.parsing import Args, usage
from dialogs.registry import Router
from dialogs.task_args import SHARE_EVERYONE, AddArgs, AssignArgs, DoneArgs, ListArgs, NoteArgs, TaskArgs
from dialogs.task_cards import LIST_MAX, Buttons, Listing, list_card, list_key, shared, task_card
from dialogs.text import Markdown, escape_message, for_message, message_markdown
from policies import Resource

router = Router()


@router.command("task add", action="task.add", args=AddArgs, needs_room=True, facts=("assignee:assign",))
async def task_add(ctx: CommandContext, args: AddArgs) -> Reply | Later:
    """Add a task to the room: /task add Visit 12 Acacia Ave --assign @Ben --due tomorrow 17:00.

    WHO is an @mention, an email, or an agency key; WHEN is today, tomorrow, +3d, +2w, a weekday,
    YYYY-MM-DD or YYYY-MM-DD HH:MM, in the room's time; --share gives partner agencies sight of it.
    """
    room, now = _room(ctx), ctx.now()
    refuse = _refuser(ctx, "task add", AddArgs)
    if args.assign and ctx.facts.assignee is None:
        return refuse(Markdown(ctx.facts.unresolved or "I can't find whom to assign it to."))
    due_at = None
    if args.due:
        zone = ZoneInfo(room.timezone)
        try:
            due_at = parse_when(args.due, now=now, tz=zone)
        except WhenError as exc:
            return refuse(str(exc))
        if due_at <= now:
            when = describe_due(due_at, now=now, tz=zone)
            return refuse(f"That is in the past: {when}. A new task is due later than now.")
    shares = args.shares()
    wanted = [key for key in shares if key != SHARE_EVERYONE]
    if wanted:
        known = await ctx.db.run(lambda s: agencies.known(s, wanted), readonly=True)
        unknown = [key for key in wanted if key not in known]
        if unknown:
            names = escape_message(", ".join(unknown))
            return refuse(Markdown(f"No agency is registered as {names}. A supervisor registers agencies "
                                   "with `/agency add`."))  # fmt: skip
    room_id, by, chosen = _room_id(ctx), _actor(ctx), ctx.facts.assignee

    def add(session: Session) -> Reply:
        task = service.add(session, room_id, title=args.title, by=by, now=now, due_at=due_at,
                           priority=args.priority, assignee=chosen, share=shares)  # fmt: skip
        _touched(ctx, task)
        added = message_markdown("Added **#{number}** to {key}: {title}.", number=str(task.number),
                                 key=room.key, title=_title(task))  # fmt: skip
        lines: list[str] = [added]
        details = []
        if due_at is not None:
            details.append(f"due {describe_due(due_at, now=now, tz=ZoneInfo(room.timezone))}")
        if chosen is not None:  # whom the caller named, as identity resolved them
            details.append(f"assigned to {chosen.label()}")
        if args.priority != "normal":
            details.append(f"{args.priority} priority")
        if shares:
            details.append(f"shared with {shared({SHARE_ALL} if shares == (SHARE_EVERYONE,) else shares)}")
        if details:
            said = "; ".join(details)
            lines.append(escape_message(f"{said[:1].upper()}{said[1:]}."))
        return Reply(text=" ".join(lines))

    return ctx.work.reply_from(add)


@router.command("task list", action="task.list", args=ListArgs, needs_room=True)
async def task_list(ctx: CommandContext, args: ListArgs) -> Reply:
    """List the room's open tasks, overdue first (--mine: yours, --overdue, --all: done ones too).

    In the room's own thread or channel, where everyone in the room reads the answer, it lists the tasks
    every member may see and counts the rest; in your chat with Opsroom it lists all you may see.
    """
    room, room_id, now = _room(ctx), _room_id(ctx), ctx.now()
    mine = ctx.principal.aad_id if args.mine else None

    def read(session: Session) -> tuple[list[Task], Mapping[int, frozenset[str]], Sequence[RoomMember]]:
        found = service.in_room(session, room_id, now=now, include_done=True, overdue_only=args.overdue,
                                assigned_to=mine)  # fmt: skip
        shares = service.shares(session, [task.id for task in found if task.id is not None])
        return found, shares, list(rooms.members(session=session, room_id=room_id))

    state = None
    if args.all:  # done tasks too: from the table (a room keeps only its open ones, core/rooms/states.py)
        found, shares, members = await ctx.db.run(read, readonly=True)
    else:
        state = await ctx.states.of(ctx.db, room)
        found, shares, members = state.open_tasks(now=now, overdue_only=args.overdue,
                                                  assigned_to=mine), state.shares, state.members  # fmt: skip
    seen = view(ctx, members, found, shares, kept=state)
    facts = {mine: replace(ctx.resource, shared_with_caller=mine) for mine in (False, True)}  # not per task
    visible = [(task, facts[_mine(ctx, task, shares.get(task.id or 0, frozenset()))]) for task in found
               if task.id in seen.shown.tasks]  # fmt: skip
    kind = "overdue" if args.overdue else ("open or done" if args.all else "open")
    whose = " assigned to you" if args.mine else ""
    held = len(seen.held)
    footer = more_tasks(held, room.key) if held else None
    if not visible:
        ctx.note.detail = "shown none" + (f"; {held} only some members may see" if held else "")
        everyone = " that everyone here may see" if held else ""
        text = message_markdown("No {kind} tasks{whose}{everyone} in {key}.", kind=kind, whose=whose,
                                everyone=everyone, key=room.key)  # fmt: skip
        return Reply(text=f"{text} {footer}" if footer else text)
    rows = [(task, allowed) for (task, _), allowed in zip(visible, _buttons(ctx, visible[:LIST_MAX]),
                                                          strict=False)]  # fmt: skip
    rows += [(task, Buttons()) for task, _ in visible[len(rows) :]]
    heading, flag, hint = f"{room.key}: {kind} tasks{whose} ({len(visible)})", _room_flag(ctx), LIST_HINT

    def build() -> Listing:
        return list_card(room, rows, heading=heading, now=now, room_flag=flag, names=seen.names,
                         more_hint=hint, footer=footer)  # fmt: skip

    if state is None:
        listing = build()
    else:  # the same card for whoever asks for it while the room's state is kept, with its JSON
        key = list_key(room, rows, heading=heading, now=now, room_flag=flag, names=seen.names, more_hint=hint,
                       footer=footer)  # fmt: skip
        listing = state.derive(key, lambda: _encoded(build()))
    numbers = " ".join(f"#{number}" for number in listing.shown)
    ctx.note.detail = f"shown {numbers} ({len(listing.shown)} of {len(visible)})" + (
        f"; {held} only some members may see" if held else "")  # fmt: skip
    return Reply(card=listing.card, card_json=listing.encoded)


LIST_HINT = "/task list --overdue or /task show <number>."


def _encoded(listing: Listing) -> Listing:
    """A listing to keep: with its JSON, so that no request encodes it again. Kept cards are shared by
    the replies that show them: nothing changes a reply's card once it is made."""
    return listing if listing.encoded is not None else replace(listing, encoded=json.dumps(listing.card))


@router.command("task show", action="task.show", args=TaskArgs, needs_room=True, facts=("task:number",))
async def task_show(ctx: CommandContext, args: TaskArgs) -> Reply:
    """Show a task, whom it is for, and who changed what and when: /task show 12.

    In the room's own thread or channel it shows only a task every member may see; for any other it
    points to your chat with Opsroom.
    """
    task, room, room_id = _task(ctx), _room(ctx), _room_id(ctx)
    task_id = task.id or 0

    def read(session: Session) -> tuple[list[TaskEvent], list[RoomMember]]:
        return service.history(session, task_id), list(rooms.members(session=session, room_id=room_id))

    history, members = await ctx.db.run(read, readonly=True)
    seen = view(ctx, members, [task], {task_id: ctx.facts.shares},
                others=[(event.actor_aad_id, event.actor_name) for event in history])  # fmt: skip
    if task_id not in seen.shown.tasks:
        ctx.note.detail = f"not shown in the room's space: only some members may see #{task.number}"
        return Reply(text=not_here(task.number, room.key))
    [allowed] = _buttons(ctx, [(task, ctx.resource)])
    ctx.note.detail = f"shown #{task.number}"
    return Reply(card=task_card(room, task, shares=ctx.facts.shares, history=history, allowed=allowed,
                                now=ctx.now(), room_flag=_room_flag(ctx), names=seen.names))  # fmt: skip


@router.command("task done", action="task.done", args=DoneArgs, needs_room=True, facts=("task:number",))
async def task_done(ctx: CommandContext, args: DoneArgs) -> Reply | Later:
    """Mark a task done, with an optional note: /task done 12 visited, all safe."""
    task = _task(ctx)
    if not task.is_open:
        return _refuser(ctx, "task done", DoneArgs, usage_too=False)(
            message_markdown("#{number} is already done.", number=str(task.number)))
    return await _change(ctx, args.number, lambda s, t, by, now: service.done(s, t, by=by, now=now,
                         note=args.note), "Done: **#{number}** {title}.")  # fmt: skip


@router.command("task assign", action="task.assign", args=AssignArgs, needs_room=True,
                facts=("task:number", "assignee:who"))  # fmt: skip
async def task_assign(ctx: CommandContext, args: AssignArgs) -> Reply | Later:
    """Give a task to someone (an @mention or email) or to an agency (its key): /task assign 12 @Ben."""
    chosen = ctx.facts.assignee
    if chosen is None:
        unresolved = Markdown(ctx.facts.unresolved or "I can't find whom you mean.")
        return _refuser(ctx, "task assign", AssignArgs)(unresolved)
    return await _change(ctx, args.number, lambda s, t, by, now: service.assign(s, t, chosen, by=by, now=now),
                         "**#{number}** {title} is now assigned to {who}.", who=chosen.label())  # fmt: skip


@router.command("task note", action="task.note", args=NoteArgs, needs_room=True, facts=("task:number",))
async def task_note(ctx: CommandContext, args: NoteArgs) -> Later:
    """Add a note to a task's history: /task note 12 spoke to the neighbour."""
    return await _change(ctx, args.number, lambda s, t, by, now: service.add_note(s, t, args.text, by=by,
                         now=now), "Note added to **#{number}** {title}.")  # fmt: skip


@router.command("task reopen", action="task.reopen", args=TaskArgs, needs_room=True, facts=("task:number",))
async def task_reopen(ctx: CommandContext, args: TaskArgs) -> Reply | Later:
    """Open a done task again: /task reopen 12."""
    task = _task(ctx)
    if task.is_open:
        return _refuser(ctx, "task reopen", TaskArgs, usage_too=False)(
            message_markdown("#{number} is still open.", number=str(task.number)))
    return await _change(ctx, args.number, lambda s, t, by, now: service.reopen(s, t, by=by, now=now),
                         "**#{number}** {title} is open again.")  # fmt: skip


Change = Callable[[Session, Task, Actor, datetime], Task]


HIDDEN_TITLE = "(its title is not shown here)"
"""A task's title in a reply in the room's space when only some of its members may see the task."""


async def _change(ctx: CommandContext, number: int, change: Change, template: str, **values: str) -> Later:
    """Stage a change to the room's task `number` (read again in the writing transaction) and answer;
    in the room's space, the answer gives the title only of a task every member may see."""
    room_id, by, now = _room_id(ctx), _actor(ctx), ctx.now()
    titled = await _titled(ctx)

    def write(session: Session) -> Reply:
        task = service.get(session, room_id, number)
        if task is None:  # tasks are never deleted: only a room mix-up could get here
            raise Refused(f"there is no task #{number} here")
        task = change(session, task, by, now)
        _touched(ctx, task)
        title = _title(task) if titled else HIDDEN_TITLE
        return Reply(text=message_markdown(template, number=str(task.number), title=title, **values))

    return ctx.work.reply_from(write)


async def _titled(ctx: CommandContext) -> bool:
    """May a reply to a change name the task's title: anywhere but the room's space; there, if every
    member may see the task."""
    task = _task(ctx)
    if not ctx.resource.in_room_space or task.id is None:
        return True
    room_id, task_id = _room_id(ctx), task.id
    members = await ctx.db.run(lambda s: list(rooms.members(session=s, room_id=room_id)), readonly=True)
    return task_id in view(ctx, members, [task], {task_id: ctx.facts.shares}).shown.tasks


def _refuser(ctx: CommandContext, words: str, model: type[Args], *,
             usage_too: bool = True) -> Callable[[str], Reply]:  # fmt: skip
    """Refusals of one command: the text (literal unless `Markdown`), then its usage; nothing is written
    but the audit event, which records the refusal."""

    def refuse(text: str) -> Reply:
        ctx.note.outcome, ctx.note.detail = "refused", str(text)
        shown = for_message(text)
        if usage_too:
            shown += f"\n\nUsage: **{escape_message(usage(words, model))}**"
        return Reply(text=shown)

    return refuse


def _buttons(ctx: CommandContext, tasks: list[tuple[Task, Resource]]) -> list[Buttons]:
    """What the caller may do to each task from a card, asked of the policy in one go."""
    actions = ("task.done", "task.note", "task.reopen")
    decisions = ctx.may_all([(action, resource) for _, resource in tasks for action in actions])
    allowed = [decision.allowed for decision in decisions]
    return [Buttons(*allowed[i : i + 3]) for i in range(0, len(allowed), 3)]


def _mine(ctx: CommandContext, task: Task, shares: frozenset[str]) -> bool:
    """Whether the task is shared with the caller."""
    return service.shared_with(task, shares, aad_id=ctx.principal.aad_id, agency=ctx.principal.agency)


def _touched(ctx: CommandContext, task: Task) -> None:
    """The audit event names the task changed."""
    ctx.note.detail = f"task #{task.number} (id {task.id})"


def _title(task: Task) -> str:
    return safe.clean(task.title, 200) or ""


def _actor(ctx: CommandContext) -> Actor:
    return Actor(ctx.principal.aad_id, ctx.principal.name)


def _task(ctx: CommandContext) -> Task:
    task = ctx.facts.task
    assert task is not None  # loaded, and seen by the caller, before the policy allowed this
    return task


def _room(ctx: CommandContext) -> Room:
    assert ctx.room is not None
    return ctx.room


def _room_id(ctx: CommandContext) -> int:
    assert ctx.room is not None and ctx.room.id is not None
    return ctx.room.id


def _room_flag(ctx: CommandContext) -> str:
    """What a card's buttons add to their commands: nothing in the room's own space, else --room KEY."""
    room, current = _room(ctx), ctx.conversation.conversation_id
    return "" if current is not None and rooms.in_space(room, current) else f" --room {room.key}"
