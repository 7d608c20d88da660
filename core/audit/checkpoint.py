"""Checkpoints of the chain head kept outside the database, one JSON line each."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

from core.audit.chain import Checkpoint


def read(path: Path) -> list[Checkpoint]:
    """All checkpoints in the file (none if it does not exist yet)."""
    if not path.exists():
        return []
    points = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            signed = None if data.get("signed") is None else int(data["signed"])
            points.append(Checkpoint(int(data["seq"]), str(data["hash"]), signed))
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}:{number}: not a checkpoint line") from exc
    return points


def append(path: Path, point: Checkpoint) -> None:
    """Add a checkpoint line and make it durable."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fields: dict[str, object] = {"seq": point.seq, "hash": point.hash}
    if point.signed is not None:
        fields["signed"] = point.signed
    line = json.dumps(fields | {"at": datetime.now(UTC).isoformat()})
    with path.open("a", encoding="utf-8") as handle:
        handle.write(line + "\n")
        handle.flush()
        os.fsync(handle.fileno())
