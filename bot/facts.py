"""Loaders for the facts commands declare (dialogs.registry.Command.facts), run before the policy step."""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import replace

from sqlmodel import Session

from bot.pipeline import Loader
from bot.turn import Turn
from core import text as safe
from core.agencies import service as agencies
from core.audit.models import AuditExport
from core.db import Database
from core.tasks import service as tasks
from core.tasks.models import Task
from core.tasks.service import Assignee
from dialogs.context import Named
from dialogs.text import escape_message

_AGENCY_KEY = re.compile(r"[a-z][a-z0-9-]{1,31}")


async def person(turn: Turn, field: str) -> None:
    """The person an argument names (an @mention, email or UPN, or an object id), classified by identity;
    the policy sees their kind as `target_kind`."""
    who = getattr(turn.route.args if turn.route else None, field, None)
    if not isinstance(who, str) or not who.strip() or turn.teams is None:
        return
    found = await turn.teams.resolve(who)
    if found is None:  # the policy decides on an unknown person; a refusal says why
        named = escape_message(safe.clean(who, 80) or "")
        turn.facts.notes.append(f"I can't find {named} here: mention them or use their email")
        turn.resource = replace(turn.resource, target_kind="unknown")
        return
    turn.facts.person = found
    turn.resource = replace(turn.resource, target_kind=found.kind)
    if turn.route is not None:  # who was meant, as Entra knows them, not only what was typed
        turn.route.arguments[f"{field}_aad_id"] = found.aad_id


async def justification(turn: Turn, field: str) -> None:
    """The argument justifying the request (a reason): recorded, and `has_justification` for the policy."""
    value = getattr(turn.route.args if turn.route else None, field, None)
    given = isinstance(value, str) and bool(value.strip())
    if given:
        turn.note.justification = str(value).strip()
    turn.resource = replace(turn.resource, has_justification=given)


async def task(turn: Turn, field: str, *, db: Database) -> None:
    """The room's task an argument numbers, and `shared_with_caller` for the policy. The authorise step
    answers "There is no task #N" alike when there is none and when the caller may not see it."""
    number = getattr(turn.route.args if turn.route else None, field, None)
    room, principal = turn.room, turn.principal
    if not isinstance(number, int) or room is None or room.id is None or principal is None:
        return
    room_id = room.id

    def read(session: Session) -> tuple[Task | None, frozenset[str]]:
        found = tasks.get(session, room_id, number)
        if found is None or found.id is None:
            return None, frozenset()
        return found, tasks.shares(session, [found.id])[found.id]

    found, shares = await db.run(read, readonly=True)
    absent = f"There is no task #{number} in {escape_message(room.key)}."
    turn.facts.named = Named(absent, see="task.show", exists=found is not None)
    if found is None:
        return
    turn.facts.task, turn.facts.shares = found, shares
    shared = tasks.shared_with(found, shares, aad_id=principal.aad_id, agency=principal.agency)
    turn.resource = replace(turn.resource, shared_with_caller=shared)
    if turn.route is not None:
        turn.route.arguments["task_id"] = found.id


async def assignee(turn: Turn, field: str, *, db: Database) -> None:
    """Whom an argument gives a task to: a registered agency by its key, else a person of this team or
    chat (an @mention, email or UPN), by their Entra object id. Recorded as resolved; one not found is
    left for the handler to answer (it is no reason to refuse the request as such)."""
    who = getattr(turn.route.args if turn.route else None, field, None)
    if not isinstance(who, str) or not who.strip() or turn.route is None:
        return
    if turn.facts.named is not None and not turn.facts.named.exists:
        return  # the answer is that there is no such task: no need to look anyone up
    key = who.strip().lower()
    agency = None
    if _AGENCY_KEY.fullmatch(key):
        agency = await db.run(lambda s: agencies.get(s, key), readonly=True)
    if agency is not None:
        turn.facts.assignee = Assignee(agency=agency.key)
        turn.route.arguments[f"{field}_agency"] = agency.key
        return
    found = await turn.teams.resolve(who) if turn.teams is not None else None
    if found is None:
        named = escape_message(safe.clean(who, 80) or "")
        turn.facts.unresolved = f"I can't find {named} here: mention them, use their email, or an agency key."
        return
    turn.facts.assignee = Assignee(aad_id=found.aad_id, tenant_id=found.tenant_id, name=found.name)
    turn.route.arguments[f"{field}_aad_id"] = found.aad_id


async def export(turn: Turn, field: str, *, db: Database) -> None:
    """The audit export a file consent answer is about: found only when it is the caller's own and still on
    offer (an answer to someone else's offer, or a second answer, gets one reply either way). Its
    recorded reason is the request's justification."""
    number = getattr(turn.route.args if turn.route else None, field, None)
    principal = turn.principal
    if not isinstance(number, int) or principal is None or not principal.aad_id:
        return
    found = await db.run(lambda s: s.get(AuditExport, number), readonly=True)
    mine = found is not None and found.requested_by == principal.aad_id.lower() and found.state == "offered"
    absent = "That export is no longer on offer: ask for it again with `/audit export`."
    turn.facts.named = Named(absent, see="audit.export", exists=mine, usage=False)
    if mine and found is not None:
        turn.facts.export = found
        turn.note.justification = found.reason
        turn.resource = replace(turn.resource, has_justification=bool(found.reason.strip()))


def loaders(db: Database) -> Mapping[str, Loader]:
    """Every fact kind's loader; those that read the store get it here."""
    return {"person": person, "justification": justification, "task": functools.partial(task, db=db),
            "assignee": functools.partial(assignee, db=db),
            "export": functools.partial(export, db=db)}  # fmt: skip
