"""Use cases of the audit store: record a request, with its dedupe claim."""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session

from core.audit import service
from core.audit.models import EventDraft
from core.audit.service import StoredEvent
from core.dedupe import service as dedupe


class DuplicateActivity(Exception):
    """The activity was already acted on by another request; nothing was written."""


@dataclass
class Claim:
    """The activity this transaction acts on."""

    key: str
    activity_id: str
    reply: str | None = None
    """The reply to keep with the claim (activity JSON), so a re-send whose reply never arrived gets it."""


def record(session: Session, draft: EventDraft, *, claim: Claim | None = None) -> StoredEvent | None:
    """Claim the activity (if any) and append its audit event, in the caller's transaction (the event as
    stored; None when a group-commit batch appends it as it commits, see service.append).

    Call it inside the same transaction as the action's state change: both
    commit together or not at all. Raises DuplicateActivity (rolling the caller
    back) when the activity was claimed by someone else.
    """
    if claim is not None and not dedupe.claim(
        session=session, key=claim.key, activity_id=claim.activity_id, at=service.utc_stamp(),
        reply=claim.reply,
    ):
        raise DuplicateActivity(claim.activity_id)
    stored = service.append(session, [draft])
    return stored[0] if stored else None
