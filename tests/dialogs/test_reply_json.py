"""A reply's JSON with its card encoded once: what `Reply.activity_json` writes is `activity()`."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from core.rooms.models import Room
from core.tasks.models import Task
from dialogs.context import Reply
from dialogs.names import Names
from dialogs.task_cards import LIST_BUDGET, Buttons, list_card, size

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
ROOM = Room(key="OP-LANTERN", name="Operation Lantern", classification="OFFICIAL", timezone="Europe/London",
            lead_aad_id="aad-ada", tenant_id="t", space_kind="thread", reference="{}", opened_at=NOW)  # fmt: skip
text = st.text(max_size=40)


def _tasks(titles: list[str]) -> list[tuple[Task, Buttons]]:
    return [(Task(id=n + 1, room_id=1, number=n + 1, title=title, created_by="aad-ada", created_at=NOW,
                  due_at=NOW + timedelta(hours=n - 2), priority="high" if n % 3 else "normal"),
             Buttons(done=True, note=n % 2 == 0)) for n, title in enumerate(titles)]  # fmt: skip


@given(st.dictionaries(text, st.one_of(text, st.integers(), st.lists(text, max_size=3)), max_size=4),
       st.one_of(st.none(), text))  # fmt: skip
def test_the_card_written_in_is_the_activity(card: dict[str, object], message: str | None) -> None:
    reply = Reply(text=message, card=card, card_json=json.dumps(card))
    assert json.loads(reply.activity_json()) == reply.activity()


def test_without_a_cards_json_it_is_the_activity_encoded() -> None:
    for reply in (Reply(text="Done."), Reply(card={"type": "AdaptiveCard"}),
                  Reply(attachment={"contentType": "application/vnd.microsoft.teams.card.file.info"})):  # fmt: skip
        assert reply.activity_json() == json.dumps(reply.activity())


@given(st.lists(st.text(min_size=1, max_size=200), min_size=1, max_size=40))
def test_a_list_card_keeps_its_own_encoding_and_stops_where_the_rows_stop_fitting(titles: list[str]) -> None:
    rows = _tasks(titles)
    listing = list_card(ROOM, rows, heading="OP-LANTERN: open tasks", now=NOW, more_hint="/task list --overdue.",
                        names=Names(), footer="1 more task only some members may see.")  # fmt: skip
    if listing.encoded is not None:
        assert listing.encoded == json.dumps(listing.card)
    shown_rows = [b for b in listing.card["body"] if b.get("type") == "Container" and b.get("separator")]
    assert listing.shown == [task.number for task, _ in rows[: len(shown_rows)]]
    assert sum(size(row) for row in shown_rows) <= LIST_BUDGET or len(shown_rows) == 1
    assert size(listing.card) < 32_000
