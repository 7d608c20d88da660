"""The misuse rules as data (policies/oversight.toml, or a force's own file): thresholds, windows,
cooldowns.

A rule is a table `[rules.<id>]` with `title`, `enabled`, `threshold`, `window`, `cooldown` and the
options its kind takes (OPTIONS); an unknown rule, key or option is an error rather than a silently
ignored typo. A rule left out of the file is not evaluated.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

DEFAULT_FILE = Path(__file__).resolve().parents[2] / "policies" / "oversight.toml"

RULE_IDS = ("denial-burst", "guest-after-hours", "many-rooms", "bulk-consultation", "after-end",
            "room-probing", "supervisor-self")  # fmt: skip

KINDS = ("officer", "guest", "supervisor")
"""The actor kinds a rule can be about (system and unidentified actors never are)."""


class RulesError(ValueError):
    """The rules file cannot be used (says which rule and key)."""


# ---- durations ---------------------------------------------------------------------------------

_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
_DURATION = re.compile(r"(?:(\d+)([dhms]))+")
_PART = re.compile(r"(\d+)([dhms])")


def duration(text: str) -> timedelta:
    """ "10m", "1h", "24h", "7d", "1h30m" as a timedelta (ValueError otherwise)."""
    spec = text.strip().lower()
    if not _DURATION.fullmatch(spec):
        raise ValueError(f"not a duration: {text!r} (say e.g. 10m, 1h, 24h, 7d)")
    return timedelta(seconds=sum(int(n) * _UNITS[u] for n, u in _PART.findall(spec)))


def words(span: timedelta) -> str:
    """A duration in plain words: "10 minutes", "1 hour", "1 day 6 hours"."""
    seconds = int(span.total_seconds())
    if seconds <= 0:
        return "no time"
    out = []
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1)):
        n, seconds = divmod(seconds, size)
        if n:
            out.append(f"{n} {unit}{'' if n == 1 else 's'}")
    return " ".join(out[:2])


# ---- working hours -----------------------------------------------------------------------------

DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_WEEK = 7 * 1440
_SPAN = re.compile(r"(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})(?:\s+(\S+))?")


def _days(text: str) -> frozenset[int]:
    out: set[int] = set()
    for part in text.split(","):
        ends = [p.strip().capitalize()[:3] for p in part.split("-")]
        if len(ends) > 2 or any(e not in DAYS for e in ends):
            raise ValueError(f"not days: {text!r} (say e.g. Mon-Fri or Mon-Fri,Sun)")
        first, last = DAYS.index(ends[0]), DAYS.index(ends[-1])
        out.update(d % 7 for d in range(first, last + 1 if last >= first else last + 8))
    return frozenset(out)


def _days_text(days: frozenset[int]) -> str:
    runs: list[list[int]] = []
    for d in sorted(days):
        if runs and runs[-1][-1] == d - 1:
            runs[-1].append(d)
        else:
            runs.append([d])
    return ",".join(DAYS[r[0]] if len(r) == 1 else f"{DAYS[r[0]]}-{DAYS[r[-1]]}" for r in runs)


@dataclass(frozen=True)
class Span:
    """From `start` to `end` (minutes after local midnight) on each of `days` (0 = Monday); an end
    at or before the start runs past midnight into the next day ("22:00-06:00")."""

    start: int
    end: int
    days: frozenset[int]

    def __str__(self) -> str:
        hours = f"{self.start // 60:02d}:{self.start % 60:02d}-{self.end // 60:02d}:{self.end % 60:02d}"
        return hours if len(self.days) == 7 else f"{hours} {_days_text(self.days)}"


@dataclass(frozen=True)
class WorkingHours:
    """When a room is worked, in its local time: "always", or spans separated by ";" such as
    "07:00-19:00 Mon-Fri; 08:00-13:00 Sat" (no days: every day)."""

    spans: tuple[Span, ...] | None  # None: always

    @classmethod
    def parse(cls, text: str) -> WorkingHours:
        """The hours a string describes (ValueError when it describes none)."""
        spec = " ".join(text.split())
        if spec.lower() in ("always", "24/7"):
            return cls(None)
        spans = []
        for part in spec.split(";"):
            m = _SPAN.fullmatch(part.strip())
            if m is None:
                raise ValueError(f"not working hours: {text!r} (say e.g. 07:00-19:00 Mon-Fri, or always)")
            h1, m1, h2, m2 = (int(g) for g in m.groups()[:4])
            if h1 > 23 or h2 > 24 or m1 > 59 or m2 > 59 or (h2 == 24 and m2):
                raise ValueError(f"not a time of day in {text!r}")
            spans.append(Span(h1 * 60 + m1, h2 * 60 + m2, _days(m.group(5)) if m.group(5) else
                              frozenset(range(7))))  # fmt: skip
        return cls(tuple(spans))

    def __str__(self) -> str:
        return "always" if self.spans is None else "; ".join(str(s) for s in self.spans)

    def intervals(self) -> tuple[tuple[int, int], ...]:
        """The spans as [start, end) minutes of the week from Monday 00:00 (the end may pass a week)."""
        out = []
        for s in self.spans or ():
            length = (s.end - s.start) % 1440 or 1440
            out += [(d * 1440 + s.start, d * 1440 + s.start + length) for d in sorted(s.days)]
        return tuple(out)

    def contains(self, local: datetime, grace: timedelta = timedelta(0)) -> bool:
        """Whether a local wall-clock moment is within the hours, or within `grace` of them."""
        if self.spans is None:
            return True
        minute = local.weekday() * 1440 + local.hour * 60 + local.minute + local.second / 60
        g = grace.total_seconds() / 60
        for start, end in self.intervals():
            for m in (minute, minute + _WEEK, minute - _WEEK):
                if start - g <= m < end + g:
                    return True
        return False


# ---- the rules ---------------------------------------------------------------------------------


def _strings(value: Any) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, list | tuple) or not all(
            isinstance(v, str) for v in value):  # fmt: skip
        raise ValueError("expected a list of strings")
    return tuple(value)


def _kinds(value: Any) -> frozenset[str]:
    kinds = _strings(value)
    if unknown := set(kinds) - set(KINDS):
        raise ValueError(f"unknown kinds {sorted(unknown)} (known: {', '.join(KINDS)})")
    return frozenset(kinds)


def _hours(value: Any) -> WorkingHours:
    if not isinstance(value, str):
        raise ValueError("expected working hours as text")
    return WorkingHours.parse(value)


def _duration(value: Any) -> timedelta:
    if not isinstance(value, str):
        raise ValueError('expected a duration as text (e.g. "30m")')
    return duration(value)


_Option = Callable[[Any], Any]
OPTIONS: dict[str, dict[str, tuple[_Option, Any]]] = {
    "denial-burst": {"exclude_kinds": (_kinds, frozenset())},
    "guest-after-hours": {"hours": (_hours, WorkingHours.parse("08:00-18:00 Mon-Fri")),
                          "grace": (_duration, timedelta(minutes=30))},
    "many-rooms": {"exclude_kinds": (_kinds, frozenset({"supervisor"}))},
    "bulk-consultation": {"actions": (lambda v: frozenset(_strings(v)), frozenset(
                              ("task.list", "task.show", "digest.now", "room.status", "agency.show",
                               "agency.list", "access", "audit.query", "room.list"))),
                          "exclude_kinds": (_kinds, frozenset())},
    "after-end": {"policy_rules": (lambda v: frozenset(_strings(v)),
                                   frozenset(("guest-access-expired", "guest-access-revoked")))},
    "room-probing": {"exclude_kinds": (_kinds, frozenset())},
    "supervisor-self": {"actions": (lambda v: frozenset(_strings(v)),
                                    frozenset(("audit.query", "audit.export"))),
                        "kinds": (_kinds, frozenset({"supervisor"}))},
}  # fmt: skip
"""Per rule: its options, each with how its value is read and its default."""

_WHAT = {
    "denial-burst": ("refusal", "refusals"),
    "guest-after-hours": ("request by a guest outside the room's working hours",
                          "requests (guests only) outside a room's working hours"),
    "many-rooms": ("room", "different rooms"),
    "bulk-consultation": ("read", "reads"),
    "after-end": ("attempt after a guest's access ended", "attempts after access ended"),
    "room-probing": ("room key that does not exist", "different room keys that do not exist or are hidden"),
    "supervisor-self": ("audit query by a supervisor about their own activity or room",
                        "audit queries by a supervisor about their own activity or room"),
}  # fmt: skip


@dataclass(frozen=True)
class Rule:
    id: str
    title: str
    enabled: bool = True
    threshold: int = 1
    window: timedelta | None = None
    cooldown: timedelta = timedelta(hours=1)
    options: Mapping[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        """Its threshold, window and cooldown in plain words."""
        one, many = _WHAT.get(self.id, ("matching event", "matching events"))
        if self.threshold <= 1:
            when = f"Alerts at the first {one}"
        else:
            within = f" within {words(self.window)}" if self.window is not None else ""
            when = f"Alerts when one person reaches {self.threshold} {many}{within}"
        quiet = f"then stays quiet about that person for {words(self.cooldown)}"
        return f"{when}; {quiet}." + ("" if self.enabled else " Off.")


@dataclass(frozen=True)
class Rules:
    rules: tuple[Rule, ...]
    source: str

    def get(self, rule_id: str) -> Rule | None:
        return next((rule for rule in self.rules if rule.id == rule_id), None)


_KEYS = {"title", "enabled", "threshold", "window", "cooldown"}


def _rule(rule_id: str, table: Any) -> Rule:
    where = f"rules.{rule_id}"
    if rule_id not in RULE_IDS:
        raise RulesError(f"[{where}]: unknown rule (known: {', '.join(RULE_IDS)})")
    if not isinstance(table, dict):
        raise RulesError(f"[{where}]: expected a table")
    known = OPTIONS[rule_id]
    if unknown := sorted(set(table) - _KEYS - set(known)):
        raise RulesError(f"[{where}]: unknown key {unknown[0]!r} (options: {', '.join(known) or 'none'})")
    title, enabled = table.get("title", rule_id), table.get("enabled", True)
    threshold = table.get("threshold", 1)
    if not isinstance(title, str) or not isinstance(enabled, bool):
        raise RulesError(f"[{where}]: title must be text and enabled true or false")
    if not isinstance(threshold, int) or isinstance(threshold, bool) or threshold < 1:
        raise RulesError(f"[{where}] threshold: expected a whole number, 1 or more")
    try:
        window = _duration(table["window"]) if "window" in table else None
        cooldown = _duration(table.get("cooldown", "1h"))
    except ValueError as exc:
        raise RulesError(f"[{where}] window/cooldown: {exc}") from None
    if threshold > 1 and window is None:
        raise RulesError(f"[{where}]: a threshold above 1 needs a window")
    if window is not None and window <= timedelta(0):
        raise RulesError(f"[{where}] window: must be longer than nothing")
    if window is not None and cooldown < window:
        # Shorter, and the same events still in the window would raise the alert again.
        raise RulesError(f"[{where}] cooldown: must be at least the window ({words(window)})")
    options = {}
    for name, (read, default) in known.items():
        try:
            options[name] = read(table[name]) if name in table else default
        except ValueError as exc:
            raise RulesError(f"[{where}] {name}: {exc}") from None
    return Rule(rule_id, title, enabled, threshold, window, cooldown, options)


def parse(text: str, source: str = "<text>") -> Rules:
    """Rules from TOML text; RulesError when it cannot be used."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RulesError(f"{source}: not TOML: {exc}") from None
    if unknown := sorted(set(data) - {"rules"}):
        raise RulesError(f"{source}: unknown table [{unknown[0]}] (rules go in [rules.<id>])")
    tables = data.get("rules", {})
    if not isinstance(tables, dict):
        raise RulesError(f"{source}: [rules] must be a table of rules")
    try:
        return Rules(tuple(_rule(rule_id, table) for rule_id, table in tables.items()), source)
    except RulesError as exc:
        raise RulesError(f"{source}: {exc}") from None


def load(path: Path | None = None) -> Rules:
    """The rules from a TOML file (default: DEFAULT_FILE); RulesError when it cannot be used."""
    path = path or DEFAULT_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RulesError(f"{path}: cannot be read: {exc.strerror or exc}") from None
    return parse(text, str(path))
