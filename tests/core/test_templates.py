"""Room templates: shipped files load, bad files name their file and field, due dates survive clock changes."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from core.rooms.templates import (
    SHIPPED,
    Template,
    TemplateError,
    TemplateTask,
    load_template,
    load_templates,
    resolve_due,
)

LONDON = ZoneInfo("Europe/London")

GOOD = """\
name = "Test op"
description = "For tests"
classification = "OFFICIAL-SENSITIVE"
digest = "07:00"
agencies = ["social-care", "housing"]

[[tasks]]
title = "First task"
due = "+0d"
priority = "high"
share = ["social-care"]

[[tasks]]
title = "Second task"
due = "+1w 09:30"
"""


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


# --- shipped templates -------------------------------------------------------------------------------


def test_shipped_templates_load_and_validate() -> None:
    templates = load_templates(SHIPPED)
    assert set(templates) == {"county-lines", "major-event", "multi-agency-meeting"}
    assert load_templates() == templates  # SHIPPED is the default
    assert templates["county-lines"].classification == "OFFICIAL-SENSITIVE"
    assert templates["multi-agency-meeting"].classification == "OFFICIAL-SENSITIVE"
    assert templates["major-event"].classification == "OFFICIAL"
    assert [t.digest for t in templates.values()] == ["07:00", "06:30", "08:00"]
    for template in templates.values():
        assert template.name and template.description and template.agencies and template.tasks
        for task in template.tasks:
            resolve_due(task.due, now=utc(2026, 6, 1, 9), tz=LONDON)
            assert set(task.share) <= set(template.agencies)


def test_county_lines_shares_safeguarding_with_social_care_on_day_one() -> None:
    county = load_templates()["county-lines"]
    first = county.tasks[0]
    assert "safeguarding" in first.title.lower()
    assert (first.due, first.priority, first.share) == ("+0d", "high", ("social-care",))
    assert any("NRM" in t.title and "social-care" in t.share for t in county.tasks)


def test_a_good_file_reads_into_the_dataclasses(tmp_path: Path) -> None:
    (tmp_path / "test-op.toml").write_text(GOOD)
    assert load_templates(tmp_path) == {
        "test-op": Template(
            key="test-op",
            name="Test op",
            description="For tests",
            classification="OFFICIAL-SENSITIVE",
            digest="07:00",
            agencies=("social-care", "housing"),
            tasks=(
                TemplateTask("First task", "+0d", "high", ("social-care",)),
                TemplateTask("Second task", "+1w 09:30", "normal", ()),
            ),
        )
    }


def test_optional_fields_default(tmp_path: Path) -> None:
    (tmp_path / "bare.toml").write_text('name = "Bare"\nclassification = "OFFICIAL"\ndigest = "23:59"\n')
    bare = load_templates(tmp_path)["bare"]
    assert (bare.description, bare.agencies, bare.tasks) == ("", (), ())


# --- validation: each broken file names its file and field --------------------------------------------

BROKEN = [
    (
        "unknown key",
        GOOD.replace('priority = "high"', 'priorty = "high"'),
        "tasks[1].priorty",
        "unknown key (did you mean 'priority'?)",
    ),
    ("unknown top-level key", 'owner = "DS Smith"\n' + GOOD, "owner", "unknown key (allowed: name, "),
    ("missing title", GOOD.replace('title = "Second task"\n', ""), "tasks[2].title", "is required"),
    ("blank title", GOOD.replace('"Second task"', '"   "'), "tasks[2].title", "must not be empty"),
    ("long title", GOOD.replace("Second task", "x" * 201), "tasks[2].title", "at most 200 characters"),
    ("missing name", GOOD.replace('name = "Test op"\n', ""), "name", "is required"),
    (
        "bad due",
        GOOD.replace('"+0d"', '"soon"'),
        "tasks[1].due",
        "must look like +2d, +1w or +2d 09:00 (got 'soon')",
    ),
    ("bad due time", GOOD.replace('"+1w 09:30"', '"+1w 24:00"'), "tasks[2].due", "got '+1w 24:00'"),
    ("due not a string", GOOD.replace('"+0d"', "2"), "tasks[1].due", "must be a string (got an integer)"),
    (
        "SECRET",
        GOOD.replace('"OFFICIAL-SENSITIVE"', '"SECRET"'),
        "classification",
        "SECRET material does not belong in Teams",
    ),
    (
        "TOP SECRET",
        GOOD.replace('"OFFICIAL-SENSITIVE"', '"top secret"'),
        "classification",
        "SECRET material does not belong in Teams",
    ),
    (
        "other classification",
        GOOD.replace('"OFFICIAL-SENSITIVE"', '"RESTRICTED"'),
        "classification",
        "must be one of OFFICIAL, OFFICIAL-SENSITIVE",
    ),
    ("bad digest", GOOD.replace('"07:00"', '"25:00"'), "digest", "24-hour time HH:MM"),
    ("bare TOML time digest", GOOD.replace('"07:00"', "07:00:00"), "digest", "quoted string"),
    (
        "bad priority",
        GOOD.replace('"high"', '"urgent"'),
        "tasks[1].priority",
        "must be one of high, normal, low (got 'urgent')",
    ),
    (
        "bad agency slug",
        GOOD.replace('"housing"]', '"Social Care"]'),
        "agencies[2]",
        "agency keys are [a-z0-9-]{2,32}",
    ),
    ("repeated agency", GOOD.replace('"housing"]', '"social-care"]'), "agencies[2]", "listed twice"),
    (
        "share outside agencies",
        GOOD.replace('share = ["social-care"]', 'share = ["health"]'),
        "tasks[1].share",
        "'health' is not in this template's agencies list",
    ),
    (
        "agencies not an array",
        GOOD.replace('["social-care", "housing"]', '"housing"'),
        "agencies",
        "must be an array",
    ),
    ("TOML syntax error", GOOD.replace('digest = "07:00"', "digest = "), "syntax", "line 4, column"),
    (
        "control character in a title",
        GOOD.replace("Second task", "Second\\u0007task"),
        "tasks[2].title",
        "control characters",
    ),
    (
        "newline in a title",
        GOOD.replace('"Second task"', '"""Second\ntask"""'),
        "tasks[2].title",
        "control characters",
    ),
    (
        "too many tasks",
        GOOD + '[[tasks]]\ntitle = "More"\ndue = "+1d"\n' * 99,
        "tasks",
        "at most 100 tasks (got 101)",
    ),
    ("tasks not tables", GOOD.split("[[tasks]]")[0] + 'tasks = ["do it"]\n', "tasks[1]", "must be a table"),
]


@pytest.mark.parametrize(
    ("content", "field", "problem"), [case[1:] for case in BROKEN], ids=[case[0] for case in BROKEN]
)
def test_a_broken_file_names_file_and_field(tmp_path: Path, content: str, field: str, problem: str) -> None:
    path = tmp_path / "broken-op.toml"
    path.write_text(content)
    with pytest.raises(TemplateError) as caught:
        load_templates(SHIPPED, tmp_path)
    message = str(caught.value)
    assert message.startswith(f"{path}: {field}: "), message
    assert problem in message
    assert (caught.value.source, caught.value.field) == (str(path), field)


def test_the_error_message_reads_as_documented(tmp_path: Path) -> None:
    path = tmp_path / "county-lines.toml"
    path.write_text(GOOD.replace('"+1w 09:30"', '"soon"'))
    with pytest.raises(
        TemplateError,
        match=r"county-lines\.toml: tasks\[2\]\.due: must look like "
        r"\+2d, \+1w or \+2d 09:00 \(got 'soon'\)$",
    ):
        load_template(path)


@pytest.mark.parametrize("stem", ["County-Lines", "x", "a" * 41, "county_lines", "county lines"])
def test_a_bad_file_name_is_refused(tmp_path: Path, stem: str) -> None:
    (tmp_path / f"{stem}.toml").write_text(GOOD)
    with pytest.raises(TemplateError, match=r": key: file name must be"):
        load_templates(tmp_path)


def test_a_file_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    (tmp_path / "latin.toml").write_bytes(GOOD.replace("For tests", "Caf\xe9").encode("latin-1"))
    with pytest.raises(TemplateError, match=r"latin\.toml: syntax: not UTF-8"):
        load_templates(tmp_path)


def test_a_description_may_span_lines(tmp_path: Path) -> None:
    (tmp_path / "long.toml").write_text(GOOD.replace('"For tests"', '"""\nLine one.\nLine two."""'))
    assert load_templates(tmp_path)["long"].description == "Line one.\nLine two."


# --- directories --------------------------------------------------------------------------------------


def test_a_later_directory_overrides_a_template_with_the_same_key(tmp_path: Path) -> None:
    force = tmp_path / "force"
    force.mkdir()
    (force / "county-lines.toml").write_text(GOOD.replace("Test op", "County lines (our way)"))
    (force / "own-op.toml").write_text(GOOD)
    (force / "notes.md").write_text("not a template")
    (force / "sub").mkdir()
    (force / "sub" / "nested.toml").write_text("this is not read")
    templates = load_templates(SHIPPED, force)
    assert set(templates) == {"county-lines", "major-event", "multi-agency-meeting", "own-op"}
    assert templates["county-lines"].name == "County lines (our way)"
    assert templates["major-event"] == load_templates()["major-event"]
    assert load_templates(force, SHIPPED)["county-lines"].name == "County lines"


def test_a_missing_directory_is_an_error(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(TemplateError, match=rf"^{missing}: directory: does not exist"):
        load_templates(SHIPPED, missing)


def test_an_empty_directory_adds_nothing(tmp_path: Path) -> None:
    assert load_templates(tmp_path) == {}


# --- resolve_due --------------------------------------------------------------------------------------

DUE_CASES = [
    # ordinary winter day, GMT
    ("+0d", utc(2026, 1, 14, 9, 15), utc(2026, 1, 14, 17)),
    ("+2d", utc(2026, 1, 14, 9, 15), utc(2026, 1, 16, 17)),
    ("+1w", utc(2026, 1, 14, 9, 15), utc(2026, 1, 21, 17)),
    ("+2w 10:00", utc(2026, 1, 14, 9, 15), utc(2026, 1, 28, 10)),
    ("+1d 00:00", utc(2026, 1, 14, 23, 59), utc(2026, 1, 15, 0)),
    # ordinary summer day, BST: the local date, not the UTC date, is counted from
    ("+1d", utc(2026, 7, 1, 23, 30), utc(2026, 7, 3, 16)),  # 00:30 BST on 2 July
    ("+0d 09:00", utc(2026, 7, 1, 12), utc(2026, 7, 1, 8)),
    # spring forward, Sunday 29 March 2026 01:00 GMT -> 02:00 BST
    ("+1d 09:00", utc(2026, 3, 28, 12), utc(2026, 3, 29, 8)),
    ("+1d", utc(2026, 3, 28, 12), utc(2026, 3, 29, 16)),
    ("+1w", utc(2026, 3, 25, 10), utc(2026, 4, 1, 16)),
    ("+0d 03:00", utc(2026, 3, 29, 0, 30), utc(2026, 3, 29, 2)),
    # fall back, Sunday 25 October 2026 02:00 BST -> 01:00 GMT
    ("+2d", utc(2026, 10, 24, 23, 30), utc(2026, 10, 27, 17)),  # 00:30 BST on 25 October
    ("+1d", utc(2026, 10, 24, 12), utc(2026, 10, 25, 17)),
    ("+1w 08:00", utc(2026, 10, 21, 12), utc(2026, 10, 28, 8)),
    ("+0d 12:00", utc(2026, 10, 25, 0, 30), utc(2026, 10, 25, 12)),
]


@pytest.mark.parametrize(("spec", "now", "expected"), DUE_CASES)
def test_resolve_due(spec: str, now: datetime, expected: datetime) -> None:
    due = resolve_due(spec, now=now, tz=LONDON)
    assert due == expected
    assert due.tzinfo is UTC


def test_resolve_due_accepts_any_aware_now_and_another_default_time() -> None:
    new_york_evening = datetime(2026, 1, 14, 20, 0, tzinfo=timezone(timedelta(hours=-5)))  # 01:00 GMT on 15th
    assert resolve_due("+0d", now=new_york_evening, tz=LONDON, default_time=time(9)) == utc(2026, 1, 15, 9)


def test_resolve_due_in_another_room_timezone() -> None:
    assert resolve_due("+1d", now=utc(2026, 1, 14, 12), tz=ZoneInfo("Europe/Paris")) == utc(2026, 1, 15, 16)


def test_a_naive_now_is_rejected() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        resolve_due("+1d", now=datetime(2026, 1, 14, 12), tz=LONDON)  # noqa: DTZ001


def test_a_local_time_skipped_by_the_clocks_lands_after_the_gap() -> None:
    # 01:30 does not exist on 29 March 2026 in London: the first minute after the gap, as typed dues.
    due = resolve_due("+0d 01:30", now=utc(2026, 3, 29, 0, 15), tz=LONDON)
    assert due == utc(2026, 3, 29, 1, 0)
    assert due.astimezone(LONDON).strftime("%H:%M %Z") == "02:00 BST"


def test_a_local_time_that_happens_twice_means_the_first() -> None:
    due = resolve_due("+0d 01:30", now=utc(2026, 10, 24, 23, 15), tz=LONDON)
    assert due == utc(2026, 10, 25, 0, 30)  # 01:30 BST, before the clocks go back


@pytest.mark.parametrize(
    "spec",
    [
        "soon",
        "2d",
        "+2",
        "+2x",
        "+d",
        "+2d 9:00",
        "+2d 09:60",
        "+2d  09:00",
        " +2d",
        "+1000d",
        "+53w",
        "-1d",
        "+2d 09:00:00",
    ],
)
def test_resolve_due_rejects_bad_specs(spec: str) -> None:
    with pytest.raises(ValueError, match=r"got '"):
        resolve_due(spec, now=utc(2026, 1, 14, 12), tz=LONDON)
