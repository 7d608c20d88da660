"""The outbox store: enqueue with the action, claim once across workers, mark only while holding the claim."""

from __future__ import annotations

import json
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlmodel import Session

from core.db import Database
from core.outbox import service as outbox
from core.outbox.models import OutboxMessage, OutboxStatus

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
LEASE = timedelta(seconds=60)
SERVICE_URL = "https://smba.trafficmanager.net/emea/"
CHANNEL = "19:ops@thread.tacv2;messageid=1700000000001"
OTHER = "19:other@thread.tacv2;messageid=1700000000002"


def reference(conversation_id: str = CHANNEL, *, tenant: str | None = "tenant-1",
              service_url: str = SERVICE_URL) -> str:  # fmt: skip
    """A stored ConversationReference, as ConversationReference.serialize() writes it."""
    conversation: dict[str, Any] = {"id": conversation_id, "isGroup": True, "conversationType": "channel"}
    if tenant:
        conversation["tenantId"] = tenant
    return json.dumps({"activityId": "1", "bot": {"id": "28:bot"}, "channelId": "msteams",
                       "serviceUrl": service_url, "conversation": conversation})  # fmt: skip


def notice(text: str) -> dict[str, Any]:
    return {"type": "message", "text": text}


def enqueue(
    db: Database, conversation_id: str = CHANNEL, text: str = "hello", **kw: Any
) -> OutboxMessage | None:
    kw.setdefault("now", T0)
    return db.transaction(lambda s: outbox.enqueue(session=s, kind="notice", reference=reference(conversation_id),
                                                   activity=notice(text), **kw))  # fmt: skip


def claim(
    db: Database, worker: str = "w1", now: datetime = T0, limit: int = 100, **kw: Any
) -> list[OutboxMessage]:
    return db.transaction(
        lambda s: outbox.claim(session=s, worker=worker, now=now, lease=LEASE, limit=limit, **kw)
    )


def row(db: Database, message_id: int | None) -> OutboxMessage:
    assert message_id is not None
    found = db.transaction(lambda s: outbox.get(session=s, message_id=message_id), readonly=True)
    assert found is not None
    return found


def ids(rows: list[OutboxMessage]) -> list[int]:
    return [r.id for r in rows if r.id is not None]


# -- enqueue -----------------------------------------------------------------------------------------


def test_enqueue_takes_the_target_from_the_reference(db: Database) -> None:
    message = enqueue(db, text="Room OP-LANTERN is closed")
    assert message is not None
    stored = row(db, message.id)
    assert (stored.conversation_id, stored.service_url, stored.tenant_id) == (
        CHANNEL,
        SERVICE_URL,
        "tenant-1",
    )
    assert json.loads(stored.activity) == notice("Room OP-LANTERN is closed")
    assert json.loads(stored.reference)["conversation"]["id"] == CHANNEL
    assert (stored.status, stored.attempts, stored.not_before, stored.created_at) == ("pending", 0, T0, T0)


def test_the_tenant_is_read_as_the_sdk_writes_it(db: Database) -> None:
    """ConversationReference.serialize() writes the conversation's tenant as `tenantID`."""
    written = json.loads(reference())
    written["conversation"]["tenantID"] = written["conversation"].pop("tenantId")
    with_sdk_key = json.dumps(written)

    message = db.transaction(lambda s: outbox.enqueue(session=s, kind="notice", reference=with_sdk_key,
                                                      activity=notice("hi"), now=T0))  # fmt: skip

    assert message is not None and row(db, message.id).tenant_id == "tenant-1"


def test_an_explicit_tenant_wins_over_the_reference(db: Database) -> None:
    message = enqueue(db, tenant_id="tenant-2")
    assert message is not None and row(db, message.id).tenant_id == "tenant-2"


def test_a_second_enqueue_with_the_same_dedupe_key_does_nothing(db: Database) -> None:
    first = enqueue(db, text="digest", dedupe_key="digest:7:2026-12-01")
    second = enqueue(db, text="digest again", dedupe_key="digest:7:2026-12-01")
    other = enqueue(db, text="next day", dedupe_key="digest:7:2026-12-02")

    assert first is not None and other is not None
    assert second is None
    assert [json.loads(r.activity)["text"] for r in claim(db)] == ["digest", "next day"]


def test_enqueue_refuses_what_could_never_be_sent(db: Database) -> None:
    def put(ref: str, activity: dict[str, Any], now: datetime = T0) -> Any:
        return db.transaction(lambda s: outbox.enqueue(session=s, kind="notice", reference=ref,
                                                       activity=activity, now=now))  # fmt: skip

    with pytest.raises(ValueError, match=r"conversation\.id"):
        put(json.dumps({"serviceUrl": SERVICE_URL, "conversation": {}}), notice("x"))
    with pytest.raises(ValueError, match="serviceUrl"):
        put(json.dumps({"conversation": {"id": CHANNEL}}), notice("x"))
    with pytest.raises(ValueError, match="type"):
        put(reference(), {"text": "no type"})
    with pytest.raises(ValueError, match="size"):
        put(reference(), notice("x" * 100_001))
    with pytest.raises(ValueError, match="naive"):
        put(reference(), notice("x"), now=datetime(2026, 12, 1, 9, 0))  # noqa: DTZ001 - the point of the test
    assert claim(db) == []


# -- claim -------------------------------------------------------------------------------------------


def test_claim_takes_due_rows_once_in_order(db: Database) -> None:
    later = enqueue(db, OTHER, "later", not_before=T0 + timedelta(seconds=30))
    first = enqueue(db, CHANNEL, "first")
    second = enqueue(db, OTHER, "second")
    assert later is not None and first is not None and second is not None

    claimed = claim(db, "w1")

    assert ids(claimed) == [first.id, second.id]
    for message in claimed:
        assert (message.status, message.claimed_by, message.claimed_until, message.attempts) == (
            "sending", "w1", T0 + LEASE, 1)  # fmt: skip
    assert claim(db, "w2") == []  # held by w1, and `later` is not due yet
    assert ids(claim(db, "w2", now=T0 + timedelta(seconds=30))) == [later.id]  # w1 still holds the others


def test_claim_orders_by_not_before_then_id_and_honours_the_limit(db: Database) -> None:
    a = enqueue(db, "19:a@thread.v2", "a", not_before=T0 - timedelta(minutes=1))
    b = enqueue(db, "19:b@thread.v2", "b", not_before=T0 - timedelta(minutes=3))
    c = enqueue(db, "19:c@thread.v2", "c", not_before=T0 - timedelta(minutes=2))
    assert a and b and c

    assert ids(claim(db, limit=2)) == [b.id, c.id]
    assert ids(claim(db, limit=2)) == [a.id]


def test_one_busy_conversation_does_not_fill_a_claim(db: Database) -> None:
    busy = [enqueue(db, CHANNEL, f"busy {n}") for n in range(30)]
    quiet = enqueue(db, OTHER, "quiet")
    assert quiet is not None

    claimed = claim(db, limit=100, per_conversation=20)

    assert ids(claimed) == [m.id for m in busy[:20] if m] + [quiet.id]


def test_a_conversation_is_delivered_in_id_order_behind_a_retry(db: Database) -> None:
    first, second, third = (enqueue(db, CHANNEL, t) for t in ("one", "two", "three"))
    elsewhere = enqueue(db, OTHER, "elsewhere")
    assert first and second and third and elsewhere
    assert ids(claim(db, limit=1)) == [first.id]
    retry_at = T0 + timedelta(seconds=30)
    assert db.transaction(lambda s: outbox.retry_later(session=s, message_id=first.id, worker="w1",
                                                       not_before=retry_at, error="HTTP 429"))  # fmt: skip

    # `two` and `three` are due, but wait behind `one`; another conversation does not.
    assert ids(claim(db, "w2")) == [elsewhere.id]
    assert sorted(ids(claim(db, "w2", now=retry_at))) == [first.id, second.id, third.id]


def test_rows_held_by_one_worker_hold_back_later_rows_of_their_conversation(db: Database) -> None:
    first = enqueue(db, CHANNEL, "one")
    assert first and ids(claim(db, "w1")) == [first.id]
    second = enqueue(db, CHANNEL, "two")
    assert second

    assert claim(db, "w2") == []
    assert db.transaction(lambda s: outbox.mark_sent(session=s, message_id=first.id, worker="w1", now=T0,
                                                     activity_id="1:a"))  # fmt: skip
    assert ids(claim(db, "w2")) == [second.id]


def test_a_lease_that_ran_out_is_taken_over_and_the_stale_worker_cannot_mark(db: Database) -> None:
    message = enqueue(db)
    assert message is not None and message.id is not None
    mid = message.id
    assert ids(claim(db, "dead-worker")) == [mid]
    assert claim(db, "w2", now=T0 + LEASE) == []  # not before the lease has run out

    taken = claim(db, "w2", now=T0 + LEASE + timedelta(seconds=1))

    assert ids(taken) == [mid]
    assert (taken[0].claimed_by, taken[0].attempts) == ("w2", 2)

    def as_stale(session: Session) -> list[bool]:
        return [
            outbox.mark_sent(session=session, message_id=mid, worker="dead-worker", now=T0, activity_id="x"),
            outbox.retry_later(
                session=session, message_id=mid, worker="dead-worker", not_before=T0, error="e"
            ),
            outbox.mark_failed(session=session, message_id=mid, worker="dead-worker", error="e"),
            outbox.mark_dead(session=session, message_id=mid, worker="dead-worker", error="e"),
            outbox.release(session=session, worker="dead-worker", message_ids=[mid]) == 1,
            mid
            in outbox.renew(session=session, worker="dead-worker", message_ids=[mid], now=T0, lease=LEASE),
        ]

    assert db.transaction(as_stale) == [False] * 6
    assert (row(db, mid).status, row(db, mid).claimed_by) == ("sending", "w2")
    assert db.transaction(lambda s: outbox.mark_sent(session=s, message_id=mid, worker="w2",
                                                     now=T0 + LEASE, activity_id="1:abc"))  # fmt: skip
    sent = row(db, mid)
    assert (sent.status, sent.sent_activity_id, sent.sent_at, sent.claimed_until) == (
        "sent", "1:abc", T0 + LEASE, None)  # fmt: skip


def test_marks_record_the_outcome(db: Database) -> None:
    messages = [enqueue(db, f"19:c{n}@thread.v2", str(n)) for n in range(4)]
    sent, retried, failed, dead = (m.id for m in messages if m and m.id is not None)
    claim(db, "w1")

    def outcomes(session: Session) -> None:
        assert outbox.mark_sent(session=session, message_id=sent, worker="w1", now=T0, activity_id="1:x")
        assert outbox.retry_later(
            session=session,
            message_id=retried,
            worker="w1",
            not_before=T0 + timedelta(seconds=8),
            error="HTTP 503 ServiceUnavailable",
        )
        assert outbox.mark_failed(
            session=session, message_id=failed, worker="w1", error="HTTP 400 BadArgument"
        )
        assert outbox.mark_dead(session=session, message_id=dead, worker="w1", error="HTTP 404 NotFound")

    db.transaction(outcomes)

    assert row(db, sent).status == "sent"
    again = row(db, retried)
    assert (again.status, again.not_before, again.claimed_by, again.claimed_until, again.attempts,
            again.last_error) == ("pending", T0 + timedelta(seconds=8), None, None, 1,
                                  "HTTP 503 ServiceUnavailable")  # fmt: skip
    assert (row(db, failed).status, row(db, failed).last_error) == ("failed", "HTTP 400 BadArgument")
    assert (row(db, dead).status, row(db, dead).last_error) == ("dead", "HTTP 404 NotFound")
    # Terminal rows are never claimed again; the retry is, once due.
    assert ids(claim(db, "w2", now=T0 + timedelta(seconds=8))) == [retried]


def test_release_gives_rows_back_without_counting_an_attempt(db: Database) -> None:
    message = enqueue(db)
    assert message is not None and message.id is not None
    claim(db, "w1")

    assert db.transaction(lambda s: outbox.release(session=s, worker="w1", message_ids=[message.id])) == 1

    back = row(db, message.id)
    assert (back.status, back.claimed_by, back.claimed_until, back.attempts) == ("pending", None, None, 0)
    assert ids(claim(db, "w2")) == [message.id]


def test_renew_extends_only_the_rows_still_held(db: Database) -> None:
    mine, theirs = enqueue(db, CHANNEL), enqueue(db, OTHER)
    assert mine and theirs and mine.id and theirs.id
    claim(db, "w1")
    claim(db, "w2", now=T0 + LEASE + timedelta(seconds=1), limit=1)  # w2 takes `mine` over

    later = T0 + timedelta(seconds=50)
    held = db.transaction(lambda s: outbox.renew(session=s, worker="w1", message_ids=[mine.id, theirs.id],
                                                 now=later, lease=LEASE))  # fmt: skip

    assert held == {theirs.id}
    assert row(db, theirs.id).claimed_until == later + LEASE
    assert row(db, mine.id).claimed_by == "w2"


def test_depth_counts_undelivered_rows_and_their_age(db: Database) -> None:
    assert db.transaction(lambda s: outbox.depth(session=s, now=T0), readonly=True) == (0, 0.0)
    first = enqueue(db, CHANNEL, now=T0)
    enqueue(db, OTHER, now=T0 + timedelta(seconds=30))
    assert first and first.id
    claim(db, "w1", now=T0 + timedelta(seconds=30), limit=1)

    assert db.transaction(lambda s: outbox.depth(session=s, now=T0 + timedelta(seconds=90)),
                          readonly=True) == (2, 90.0)  # fmt: skip
    db.transaction(lambda s: outbox.mark_sent(session=s, message_id=first.id, worker="w1", now=T0,
                                              activity_id=None))  # fmt: skip
    assert db.transaction(lambda s: outbox.depth(session=s, now=T0 + timedelta(seconds=90)),
                          readonly=True) == (1, 60.0)  # fmt: skip


# -- blocked chats -----------------------------------------------------------------------------------

PERSONAL = "a:1personalChatWithSomeone"


def test_a_blocked_chat_kills_what_waits_for_it_and_what_comes_after(db: Database) -> None:
    waiting = enqueue(db, PERSONAL, "reminder")
    elsewhere = enqueue(db, OTHER, "notice")
    assert waiting and waiting.id and elsewhere

    killed = db.transaction(lambda s: outbox.block(session=s, conversation_id=PERSONAL,
                                                   reason="HTTP 403: the user blocked the bot", now=T0))  # fmt: skip
    later = enqueue(db, PERSONAL, "another reminder")

    assert killed == 1
    assert later is not None and later.id is not None
    for message_id in (waiting.id, later.id):
        stored = row(db, message_id)
        assert stored.status == OutboxStatus.DEAD
        assert stored.last_error == "conversation blocked: HTTP 403: the user blocked the bot"
    assert ids(claim(db)) == [elsewhere.id]
    block = db.transaction(lambda s: outbox.blocked(session=s, conversation_id=PERSONAL), readonly=True)
    assert block is not None and block.at == T0


def test_a_row_claimed_after_its_chat_was_blocked_is_killed_unsent(db: Database) -> None:
    message = enqueue(db, PERSONAL)
    assert message and message.id
    claim(db, "dead-worker")
    db.transaction(lambda s: outbox.block(session=s, conversation_id=PERSONAL, reason="403", now=T0))

    assert claim(db, "w2", now=T0 + LEASE + timedelta(seconds=1)) == []
    assert row(db, message.id).status == OutboxStatus.DEAD


def test_unblock_lets_messages_through_again(db: Database) -> None:
    db.transaction(lambda s: outbox.block(session=s, conversation_id=PERSONAL, reason="403", now=T0))
    assert db.transaction(lambda s: outbox.unblock(session=s, conversation_id=PERSONAL))
    assert not db.transaction(lambda s: outbox.unblock(session=s, conversation_id=PERSONAL))

    message = enqueue(db, PERSONAL)

    assert message is not None and ids(claim(db)) == [message.id]


# -- several claimants at once -----------------------------------------------------------------------


def test_concurrent_claims_never_take_a_row_twice(db: Database) -> None:
    conversations = [f"19:c{n}@thread.v2" for n in range(25)]

    def seed(session: Session) -> None:
        for n in range(300):
            outbox.enqueue(session=session, kind="notice", reference=reference(conversations[n % 25]),
                           activity=notice(str(n)), now=T0)  # fmt: skip

    db.transaction(seed)
    taken: Counter[int] = Counter()
    lock = threading.Lock()
    errors: list[BaseException] = []

    def worker(name: str) -> None:
        try:
            while True:
                rows = claim(db, name, limit=7, per_conversation=3)
                with lock:
                    taken.update(ids(rows))
                if not rows:
                    if sum(taken.values()) >= 300:
                        return
                    continue
                for r in rows:
                    assert r.id is not None
                    db.transaction(lambda s, mid=r.id: outbox.mark_sent(
                        session=s, message_id=mid, worker=name, now=T0, activity_id=None))  # fmt: skip
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(f"w{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert not errors
    assert len(taken) == 300 and set(taken.values()) == {1}
    assert db.transaction(lambda s: outbox.depth(session=s, now=T0), readonly=True) == (0, 0.0)
