"""JSON-lines logging on stdout, tagged with the request (or scheduler run) and the activity being handled."""

from __future__ import annotations

import contextvars
import itertools
import json
import logging
import secrets
import sys
from datetime import UTC, datetime
from typing import Any

from core.audit.service import current_request
from core.text import clean

activity_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("activity_id", default=None)
request_id = current_request
"""The id of the HTTP request or scheduler run being served: on every log line, in the X-Request-Id response
header, and on the audit events it writes (core.audit.service.current_request, the same variable)."""


_PROCESS = secrets.token_hex(8)
_SERIAL = itertools.count(1)


def new_request_id() -> str:
    """A fresh request id: 32 hex characters, the width of audit_event.request_id: 64 random bits drawn
    once per process, then a counter (unique, and no system call per request, which cost more than the
    rest of making the id; the id names a request, it guards nothing)."""
    return f"{_PROCESS}{next(_SERIAL) & 0xFFFF_FFFF_FFFF_FFFF:016x}"

_STANDARD = set(vars(logging.makeLogRecord({})))


class JsonFormatter(logging.Formatter):
    """One JSON object per line; user text is cleaned before it gets here or by clean()."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": clean(record.getMessage(), 4000),
        }
        request = request_id.get()
        if request:
            entry["request_id"] = request
        current = activity_id.get()
        if current:
            entry["activity_id"] = current
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value if isinstance(value, int | float | bool) else clean(str(value), 1000)
        if record.exc_info:
            entry["error"] = clean(self.formatException(record.exc_info), 8000)
        return json.dumps(entry, ensure_ascii=False)


def configure(level: str = "INFO") -> None:
    """Send every logger's output to stdout as JSON lines."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # A line carries none of the caller's file, line, thread or process, so records skip gathering them
    # (the logging documentation's "Optimization" settings): about 20 us of each line, and every request
    # writes one.
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    # msrest logs full request headers (bearer tokens included) at DEBUG.
    for noisy in ("msrest", "msal", "urllib3", "aiohttp.access", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
