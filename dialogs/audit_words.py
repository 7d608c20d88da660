"""Audit events in plain words for the /audit card: who, what, where, the decision and rule, the outcome."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from core.audit.filters import AuditFilter

DOING: dict[str, str] = {
    "help": "asked for help",
    "command.unknown": "typed something that is not a command",
    "room.open": "opened a room", "room.list": "listed their rooms", "room.list_all": "listed every room",
    "room.status": "looked at the room's status", "room.close": "closed the room",
    "room.reopen": "reopened the room", "room.lead": "handed the room's lead to someone",
    "room.join": "joined the room", "room.hours": "set the room's working hours",
    "task.add": "added a task", "task.list": "listed the tasks", "task.show": "looked at a task",
    "task.done": "marked a task done", "task.assign": "assigned a task",
    "task.note": "added a note to a task", "task.reopen": "reopened a task",
    "digest.now": "asked for the digest", "digest.at": "set the digest time",
    "digest.off": "turned the digest off",
    "digest.personal": "asked for their own digest", "digest.queued": "queued the room's digest",
    "digest.delivered": "delivered a digest", "digest.skipped": "skipped a digest missed while down",
    "invite": "invited partner-agency guests", "revoke": "ended guest access",
    "access": "reviewed guest access", "access.ended": "ended an access at its expiry",
    "access.removed": "took a guest out of the room's channel",
    "access.reminder": "reminded the lead to review access",
    "agency.add": "registered a partner agency", "agency.list": "listed partner agencies",
    "agency.show": "looked at a partner agency",
    "audit.query": "searched the audit trail", "audit.verify": "checked the audit trail",
    "audit.export": "exported the audit trail",
    "oversight.alert": "raised a misuse alert", "oversight.here": "chose where misuse alerts go",
    "oversight.rules": "listed the misuse rules", "oversight.mute": "muted a misuse rule",
    "oversight.unmute": "unmuted a misuse rule",
}  # fmt: skip

OUTCOMES: dict[str, str] = {
    "ok": "done", "denied": "refused", "refused": "declined", "no_room": "named a room they cannot see",
    "needs_room": "no room given", "parse_error": "mistyped", "unknown_command": "not a command",
    "error": "failed", "duplicate": "a repeat of an earlier message, ignored", "ignored": "ignored",
}  # fmt: skip

KINDS = {"officer": "officer", "guest": "guest", "supervisor": "supervisor", "system": "Opsroom"}


def who(row: Any) -> str:
    """The actor: name, kind and agency ("Dana Ray (guest, barnardos)"); Opsroom for its own events."""
    if row.actor_kind == "system":
        return "Opsroom"
    name = row.actor_name or (f"id {row.actor_aad_id}" if row.actor_aad_id else "someone unidentified")
    about = [part for part in (KINDS.get(row.actor_kind or ""), row.actor_agency) if part]
    return f"{name} ({', '.join(about)})" if about else name


def _arguments(row: Any) -> dict[str, Any]:
    try:
        found = json.loads(row.arguments or "{}")
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


def what(row: Any) -> str:
    """What they did, with the task number or named room where there is one."""
    doing = DOING.get(row.action)
    if doing is None:
        doing = f"Teams event ({row.action[6:]})" if row.action.startswith("event.") else row.action
    arguments = _arguments(row)
    number = arguments.get("number")
    if isinstance(number, int) and row.action.startswith("task."):
        doing = doing.replace("a task", f"task #{number}")
    if row.room_key:
        doing += f" in {row.room_key}"
    elif isinstance(arguments.get("room"), str):
        doing += f" (named room {str(arguments['room'])[:40]})"
    return doing


def decided(row: Any) -> str:
    """The decision and its rule, and the outcome: "allowed (guest-reads-shared); done"."""
    parts = []
    if row.decision:
        verdict = "allowed" if row.decision == "allow" else "refused"
        parts.append(f"{verdict} ({row.rule})" if row.rule else verdict)
    outcome = OUTCOMES.get(row.outcome, row.outcome)
    if not (row.decision == "deny" and row.outcome == "denied"):
        parts.append(outcome)
    return "; ".join(parts)


def when(row: Any, tz: ZoneInfo) -> str:
    """The event's time in force time."""
    moment = datetime.fromisoformat(str(row.at).replace("Z", "+00:00")).astimezone(tz)
    return moment.strftime("%a %d %b %Y %H:%M:%S")


def described(f: AuditFilter, tz: ZoneInfo, *, user_name: str | None = None) -> str:
    """The filters in plain words: "room OP-LANTERN, by Dana Ray, refusals only, since Mon 23 Nov 09:00"."""
    parts = []
    if f.room_key:
        parts.append(f"room {f.room_key}")
    if f.user:
        parts.append(f"by {user_name or f.user}")
    if f.agency:
        parts.append(f"agency {f.agency}")
    if f.action:
        parts.append(f"action {f.action}")
    if f.denied:
        parts.append("refusals only")
    for label, moment in (("since", f.since), ("until", f.until)):
        if moment is not None:
            parts.append(f"{label} {moment.astimezone(tz).strftime('%a %d %b %Y %H:%M')}")
    return ", ".join(parts) or "every event"
