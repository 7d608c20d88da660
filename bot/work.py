"""The request's unit of work as the pipeline runs it, and the activities its replies become."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from botbuilder.schema import Activity, ActivityTypes, InvokeResponse
from sqlmodel import Session

from bot.turn import Turn
from core.errors import Refused
from core.groupcommit import savepoint
from core.rooms import flows as rooms
from core.rooms.models import Room
from dialogs.context import Reply, Work
from dialogs.text import code, escape_message
from policies import Principal


def failed(turn: Turn, exc: BaseException) -> None:
    """Nothing the request did is kept; it is recorded as an error, and a re-send may try again."""
    turn.outcome, turn.detail = "error", type(exc).__name__
    turn.claim = None
    turn.work, turn.on_commit = Work(), []
    turn.reply_json = None
    turn.reply = Reply(text="Sorry, something went wrong and nothing was changed. "
                            f"Reference: {code(turn.activity.id or 'unknown')}.")  # fmt: skip


def run_staged(session: Session, turn: Turn) -> None:
    """The handler's staged writes, in a savepoint: a Refused undoes them and is recorded as a refusal."""
    try:
        with savepoint(session):
            turn.work.run(session)
    except Refused as exc:
        message = str(exc).rstrip(". ")
        turn.note.outcome, turn.note.detail = "refused", message
        turn.reply = Reply(text=escape_message(f"{message[:1].upper()}{message[1:]}."))


def joiner(room: Room, principal: Principal, now: datetime) -> Callable[[Session], None]:
    assert room.id is not None and principal.aad_id is not None
    room_id, aad_id = room.id, principal.aad_id
    return lambda s: rooms.join(s, room_id, aad_id=aad_id, tenant_id=principal.tenant_id,
                                name=principal.name, now=now)  # fmt: skip


def invoke_answer(activity: Activity, reply: Reply | None) -> Activity:
    """The invoke response of an invoke activity: a file consent answer takes a plain 200 (Teams shows
    nothing from it; the bot's FileInfoCard or message is the answer), a card action a short message."""
    if activity.name == "fileConsent/invoke":
        return Activity(type=ActivityTypes.invoke_response, value=InvokeResponse(status=200))
    return invoke_ack(reply)


def invoke_ack(reply: Reply | None) -> Activity:
    """The answer to an Adaptive Card Action.Execute: a short message shown on the card.

    A plain dict body: the SDK's AdaptiveCardInvokeResponse types `value` as a
    dict and fails to serialise the message form Teams documents.
    """
    text = reply.text if reply is not None and reply.text else "Done."
    body = {"statusCode": 200, "type": "application/vnd.microsoft.activity.message", "value": text[:500]}
    return Activity(type=ActivityTypes.invoke_response, value=InvokeResponse(status=200, body=body))
