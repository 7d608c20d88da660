"""Room templates: default tasks, suggested agencies, classification and digest time, read from TOML."""

from __future__ import annotations

import difflib
import re
import tomllib
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from core.tasks.when import local_instant
from core.text import has_control_chars

SHIPPED = Path(__file__).resolve().parents[2] / "templates"

CLASSIFICATIONS = ("OFFICIAL", "OFFICIAL-SENSITIVE")
PRIORITIES = ("high", "normal", "low")
MAX_TASKS = 100
MAX_TITLE = 200
MAX_DESCRIPTION = 1000
MAX_DUE_DAYS = 366

_KEY = re.compile(r"[a-z0-9-]{2,40}")
_AGENCY = re.compile(r"[a-z0-9-]{2,32}")
_HHMM = re.compile(r"([01]\d|2[0-3]):([0-5]\d)")
_DUE = re.compile(r"\+(\d{1,3})([dw])(?: ([01]\d|2[0-3]):([0-5]\d))?")
_DUE_HINT = "must look like +2d, +1w or +2d 09:00"
_TOP_KEYS = ("name", "description", "classification", "digest", "agencies", "tasks")
_TASK_KEYS = ("title", "due", "priority", "share")


@dataclass(frozen=True)
class TemplateTask:
    """A task a template adds when a room opens; `due` is the relative spec as written."""

    title: str
    due: str
    priority: str = "normal"
    share: tuple[str, ...] = ()


@dataclass(frozen=True)
class Template:
    """A reusable starting point for an operation room."""

    key: str
    name: str
    description: str
    classification: str
    digest: str
    agencies: tuple[str, ...]
    tasks: tuple[TemplateTask, ...]


class TemplateError(ValueError):
    """A template file that cannot be used; the message names the file and the field."""

    def __init__(self, source: Path | str, field: str, problem: str) -> None:
        super().__init__(f"{source}: {field}: {problem}")
        self.source = str(source)
        self.field = field
        self.problem = problem


def parse_due(spec: str) -> tuple[int, time | None]:
    """Days ahead and optional local time of a due spec (`+2d`, `+1w`, `+2d 09:00`); ValueError if bad."""
    match = _DUE.fullmatch(spec)
    if match is None:
        raise ValueError(f"{_DUE_HINT} (got {spec!r})")
    days = int(match[1]) * (7 if match[2] == "w" else 1)
    if days > MAX_DUE_DAYS:
        raise ValueError(f"must be at most {MAX_DUE_DAYS} days ahead (got {spec!r})")
    at = time(int(match[3]), int(match[4])) if match[3] is not None else None
    return days, at


def resolve_due(spec: str, *, now: datetime, tz: ZoneInfo, default_time: time = time(17, 0)) -> datetime:
    """The moment a due spec means, as an aware UTC datetime.

    The room's local date at `now`, plus N days (`+Nd`) or weeks (`+Nw`), at the
    spec's local time or `default_time`, converted back to UTC; counting local
    dates (not 24-hour periods) keeps "17:00" at 17:00 across a clock change.
    Local times are read as typed due times are (core.tasks.when.local_instant): one in
    the spring-forward gap is the first minute after it; one in the autumn repeat is
    its first occurrence.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    days, at = parse_due(spec)
    local_date = now.astimezone(tz).date() + timedelta(days=days)
    return local_instant(local_date, (at or default_time).replace(tzinfo=None), tz)


def load_templates(*directories: Path) -> dict[str, Template]:
    """Every `*.toml` template in the directories (SHIPPED if none); a later directory overrides."""
    found: dict[str, Template] = {}
    for directory in directories or (SHIPPED,):
        if not directory.is_dir():
            raise TemplateError(directory, "directory", "does not exist or is not a directory")
        for path in sorted(p for p in directory.glob("*.toml") if p.is_file()):
            template = load_template(path)
            found[template.key] = template
    return dict(sorted(found.items()))


def load_template(path: Path) -> Template:
    """One template file, validated; TemplateError names the file and field at fault."""
    if not _KEY.fullmatch(path.stem):
        raise TemplateError(
            path, "key", f"file name must be [a-z0-9-]{{2,40}} plus .toml (got {path.stem!r})"
        )
    try:
        data = tomllib.loads(path.read_bytes().decode("utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise TemplateError(path, "syntax", f"not valid TOML: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise TemplateError(path, "syntax", f"not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except OSError as exc:
        raise TemplateError(path, "file", f"cannot be read ({exc.strerror or exc})") from exc
    return _Reader(path).template(data)


def _kind(value: object) -> str:
    """TOML's name for the type of a parsed value, for error messages."""
    if isinstance(value, bool):
        return "a boolean"
    names = {str: "a string", int: "an integer", float: "a float", list: "an array", dict: "a table"}
    return next((n for t, n in names.items() if isinstance(value, t)), "a date/time")


class _Reader:
    """Validates one parsed file, raising TemplateError for the first problem found."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, field: str, problem: str) -> TemplateError:
        return TemplateError(self.path, field, problem)

    def template(self, data: dict[str, object]) -> Template:
        self.known_keys(data, _TOP_KEYS, "")
        for required in ("name", "classification", "digest"):
            if required not in data:
                raise self.fail(required, "is required")
        agencies = self.agencies(data.get("agencies", []), "agencies")
        raw_tasks = data.get("tasks", [])
        if not isinstance(raw_tasks, list):
            raise self.fail("tasks", f"must be an array of [[tasks]] tables (got {_kind(raw_tasks)})")
        if len(raw_tasks) > MAX_TASKS:
            raise self.fail("tasks", f"at most {MAX_TASKS} tasks (got {len(raw_tasks)})")
        return Template(
            key=self.path.stem,
            name=self.text(data["name"], "name", MAX_TITLE),
            description=self.text(data.get("description", ""), "description", MAX_DESCRIPTION, blank=True),
            classification=self.classification(data["classification"]),
            digest=self.digest(data["digest"]),
            agencies=agencies,
            tasks=tuple(self.task(raw, f"tasks[{n}]", agencies) for n, raw in enumerate(raw_tasks, 1)),
        )

    def task(self, raw: object, where: str, agencies: tuple[str, ...]) -> TemplateTask:
        if not isinstance(raw, dict):
            raise self.fail(where, f"must be a table (got {_kind(raw)})")
        self.known_keys(raw, _TASK_KEYS, f"{where}.")
        for required in ("title", "due"):
            if required not in raw:
                raise self.fail(f"{where}.{required}", "is required")
        due = self.string(raw["due"], f"{where}.due")
        try:
            parse_due(due)
        except ValueError as exc:
            raise self.fail(f"{where}.due", str(exc)) from None
        priority = self.string(raw.get("priority", "normal"), f"{where}.priority")
        if priority not in PRIORITIES:
            raise self.fail(f"{where}.priority", f"must be one of {', '.join(PRIORITIES)} (got {priority!r})")
        share = self.agencies(raw.get("share", []), f"{where}.share")
        for agency in share:
            if agency not in agencies:
                raise self.fail(f"{where}.share", f"{agency!r} is not in this template's agencies list")
        return TemplateTask(self.text(raw["title"], f"{where}.title", MAX_TITLE), due, priority, share)

    def known_keys(self, table: dict[str, object], allowed: tuple[str, ...], prefix: str) -> None:
        for key in table:
            if key not in allowed:
                close = difflib.get_close_matches(key, allowed, n=1)
                hint = f"did you mean {close[0]!r}?" if close else f"allowed: {', '.join(allowed)}"
                raise self.fail(f"{prefix}{key}", f"unknown key ({hint})")

    def string(self, value: object, field: str) -> str:
        if not isinstance(value, str):
            raise self.fail(field, f"must be a string (got {_kind(value)})")
        return value

    def text(self, value: object, field: str, cap: int, *, blank: bool = False) -> str:
        """Display text: trimmed, non-empty unless `blank`, capped, no control characters."""
        text = self.string(value, field).strip()
        if not text and not blank:
            raise self.fail(field, "must not be empty")
        if len(text) > cap:
            raise self.fail(field, f"at most {cap} characters (got {len(text)})")
        # Descriptions may span lines; titles and names may not.
        if has_control_chars(text.replace("\n", "") if blank else text):
            raise self.fail(field, "must not contain control characters")
        return text

    def classification(self, value: object) -> str:
        text = self.string(value, "classification")
        if re.sub(r"[\s_-]+", " ", text.strip().upper()) in ("SECRET", "TOP SECRET"):
            raise self.fail("classification", f"SECRET material does not belong in Teams (got {text!r})")
        if text not in CLASSIFICATIONS:
            raise self.fail("classification", f"must be one of {', '.join(CLASSIFICATIONS)} (got {text!r})")
        return text

    def digest(self, value: object) -> str:
        if isinstance(value, time):
            raise self.fail("digest", 'must be a quoted string such as "07:00" (got a bare TOML time)')
        text = self.string(value, "digest")
        if not _HHMM.fullmatch(text):
            raise self.fail("digest", f"must be a 24-hour time HH:MM such as 07:00 (got {text!r})")
        return text

    def agencies(self, value: object, field: str) -> tuple[str, ...]:
        if not isinstance(value, list):
            raise self.fail(field, f"must be an array of agency keys (got {_kind(value)})")
        keys: list[str] = []
        for n, item in enumerate(value, 1):
            key = self.string(item, f"{field}[{n}]")
            if not _AGENCY.fullmatch(key):
                raise self.fail(
                    f"{field}[{n}]", f"agency keys are [a-z0-9-]{{2,32}}, e.g. social-care (got {key!r})"
                )
            if key in keys:
                raise self.fail(f"{field}[{n}]", f"{key!r} is listed twice")
            keys.append(key)
        return tuple(keys)
