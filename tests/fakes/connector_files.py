"""Teams' file consent flow for bots in personal chats, as the fake Bot Connector plays it.

When a person accepts a FileConsentCard, Teams makes an upload session in their OneDrive and sends the
bot a `fileConsent/invoke` whose `uploadInfo` carries the session's `uploadUrl`. The bot PUTs the bytes
there, in one request or in chunks, each with `Content-Range: bytes FIRST-LAST/TOTAL` (chunks other
than the last a multiple of 320 KiB); OneDrive answers 202 until the last byte, then 201 with the
driveItem. The bot then posts a FileInfoCard naming the file.

`UploadSlots.offer(name)` is what Teams does on accept: it returns the `uploadInfo` to put in the
invoke; `file(unique_id)` returns the bytes received once complete.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from typing import Any

CHUNK_MULTIPLE = 320 * 1024
_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+)")


@dataclass
class Slot:
    """One upload session."""

    name: str
    unique_id: str
    data: bytearray = field(default_factory=bytearray)
    total: int | None = None
    complete: bool = False
    puts: list[dict[str, Any]] = field(default_factory=list)
    """Each PUT as received: its Content-Range, length and status."""


class UploadSlots:
    """Upload sessions by unique id, answered like OneDrive's."""

    def __init__(self) -> None:
        self.slots: dict[str, Slot] = {}

    def offer(self, base_url: str, name: str) -> dict[str, Any]:
        """A new upload session for a file called name: the invoke's `uploadInfo`."""
        unique_id = uuid.uuid4().hex
        self.slots[unique_id] = Slot(name, unique_id)
        kind = name.rsplit(".", 1)[-1] if "." in name else ""
        return {"name": name, "uploadUrl": f"{base_url}upload/{unique_id}",
                "contentUrl": f"https://contoso-my.sharepoint.example/personal/files/{name}",
                "uniqueId": unique_id, "fileType": kind}  # fmt: skip

    def file(self, unique_id: str) -> bytes | None:
        """The uploaded bytes, once every one has arrived."""
        slot = self.slots.get(unique_id)
        return bytes(slot.data) if slot is not None and slot.complete else None

    def put(self, unique_id: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, Any]]:
        """One PUT of a chunk: (status, JSON body)."""
        slot = self.slots.get(unique_id)
        if slot is None:
            return 404, {"error": {"code": "itemNotFound", "message": "no such upload session"}}
        found = _RANGE.fullmatch(headers.get("Content-Range", "").strip())
        record: dict[str, Any] = {"range": headers.get("Content-Range"), "length": len(body)}
        slot.puts.append(record)
        status, answer = self._chunk(slot, found, body)
        record["status"] = status
        return status, answer

    def _chunk(self, slot: Slot, found: re.Match[str] | None, body: bytes) -> tuple[int, dict[str, Any]]:
        if slot.complete:
            return 409, {"error": {"code": "conflict", "message": "the upload is complete"}}
        if found is None:
            return 400, {"error": {"code": "invalidRange", "message": "Content-Range is required"}}
        first, last, total = (int(part) for part in found.groups())
        if slot.total is None:
            slot.total = total
        if (total != slot.total or first != len(slot.data) or last - first + 1 != len(body)
                or last >= total):  # fmt: skip
            return 416, {"error": {"code": "invalidRange", "message": "the range does not follow on"}}
        if last + 1 < total and len(body) % CHUNK_MULTIPLE:
            return 400, {"error": {"code": "invalidRange", "message": "chunks are multiples of 320 KiB"}}
        slot.data += body
        if last + 1 < total:
            return 202, {"nextExpectedRanges": [f"{last + 1}-"]}
        slot.complete = True
        return 201, {"id": slot.unique_id, "name": slot.name, "size": total}
