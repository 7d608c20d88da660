"""The Teams app package: manifest.json and its two icons, zipped for upload to Teams.

The bot's commands are listed from the router, so the suggestions Teams shows are the
commands the bot has (declared once, in dialogs/).
"""

from __future__ import annotations

import io
import json
import re
import struct
import uuid
import zipfile
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import metadata
from typing import Any
from urllib.parse import urlsplit

from dialogs.registry import Command

MANIFEST_VERSION = "1.17"
SCHEMA = f"https://developer.microsoft.com/json-schemas/teams/v{MANIFEST_VERSION}/MicrosoftTeams.schema.json"
SCOPES = ("team", "personal", "groupChat")
CHANNEL_TYPES = ("sharedChannels", "privateChannels")
"""Rooms may live in private and shared channels (`--channel private|shared`); without this Teams keeps the
bot out of them (the standard channels are always supported). The field is in the schema from v1.16."""
ACCENT = (0x1F, 0x3A, 0x5F)  # a dark police blue; the colour icon's background
# Limits of the v1.17 schema.
MAX_COMMANDS = 10
SUGGESTED = ("help", "room open", "room status", "task list", "task add", "task done", "digest now", "invite",
             "room list", "audit verify")  # fmt: skip
"""The commands Teams suggests first, in order (it shows at most MAX_COMMANDS)."""
MAX_TITLE = 32
MAX_DESCRIPTION = 128
_HOST = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9-]{1,63}\.)+[A-Za-z]{2,63}$")


class ManifestError(ValueError):
    """The package cannot be built from what was given (the message says what to change)."""


@dataclass(frozen=True)
class AppDetails:
    """What the package needs beyond the code: who publishes it and where the bot lives."""

    app_id: str
    host: str
    developer: str = "Opsroom"
    website: str = ""
    privacy: str = ""
    terms: str = ""

    def urls(self) -> tuple[str, str, str]:
        """Website, privacy and terms URLs; each defaults to the bot's own host."""
        home = f"https://{self.host}/"
        return self.website or home, self.privacy or self.website or home, self.terms or self.website or home


def build_manifest(details: AppDetails, commands: Iterable[Command]) -> dict[str, Any]:
    """manifest.json for the bot, checked against the schema's limits that matter here."""
    try:
        app_id = str(uuid.UUID(details.app_id))
    except ValueError:
        raise ManifestError("MicrosoftAppId must be the bot's Entra app (client) id, a GUID") from None
    if not _HOST.match(details.host):
        raise ManifestError(f"--host must be the bot's public host name, like opsroom.example.police.uk, "
                            f"not {details.host!r}")  # fmt: skip
    website, privacy, terms = details.urls()
    for name, url in (("website", website), ("privacy", privacy), ("terms", terms)):
        if urlsplit(url).scheme != "https":
            raise ManifestError(f"the {name} URL must start with https://")
    listed = _command_list(commands)
    return {
        "$schema": SCHEMA,
        "manifestVersion": MANIFEST_VERSION,
        "version": _version(),
        "id": app_id,
        "developer": {
            "name": details.developer[:32],
            "websiteUrl": website,
            "privacyUrl": privacy,
            "termsOfUseUrl": terms,
        },
        "name": {"short": "Opsroom", "full": "Opsroom operation rooms"},
        "description": {
            "short": "Operation rooms for police and partner agencies, audited.",
            "full": "Open an operation room from a Teams channel, keep its tasking there, share it with "
            "partner agencies under an information-sharing agreement, and keep a tamper-evident "
            "record of every request.",
        },
        "icons": {"color": "color.png", "outline": "outline.png"},
        "accentColor": "#{:02X}{:02X}{:02X}".format(*ACCENT),
        "bots": [
            {
                "botId": app_id,
                "scopes": list(SCOPES),
                "supportsFiles": False,
                "isNotificationOnly": False,
                "commandLists": [{"scopes": [scope], "commands": listed} for scope in SCOPES],
            }
        ],
        "supportedChannelTypes": list(CHANNEL_TYPES),
        "permissions": ["identity", "messageTeamMembers"],
        "validDomains": [details.host],
    }


def _command_list(commands: Iterable[Command]) -> list[dict[str, str]]:
    """Teams' suggestions: each command's words and the first line of its help."""
    listed = []
    for command in commands:
        if len(command.words) > MAX_TITLE:
            raise ManifestError(f"command {command.words!r} is longer than Teams shows ({MAX_TITLE})")
        summary = " ".join(command.summary.split())
        if len(summary) > MAX_DESCRIPTION:
            summary = summary[: MAX_DESCRIPTION - 1].rstrip() + "…"
        listed.append({"title": command.words, "description": summary})
    # Teams shows ten: the everyday ones first (help first of all: it lists everything), then the rest.
    rank = {words: n for n, words in enumerate(SUGGESTED)}
    listed.sort(key=lambda c: rank.get(c["title"], len(rank)))
    return listed[:MAX_COMMANDS]


def _version() -> str:
    try:
        return metadata.version("opsroom")
    except metadata.PackageNotFoundError:
        return "0.0.0"


def package(details: AppDetails, commands: Iterable[Command]) -> bytes:
    """The zip to upload in Teams: manifest.json, color.png (192 px), outline.png (32 px)."""
    manifest = build_manifest(details, commands)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("manifest.json", json.dumps(manifest, indent=2, ensure_ascii=False))
        zf.writestr("color.png", ring_png(192, foreground=(255, 255, 255, 255), background=(*ACCENT, 255)))
        zf.writestr("outline.png", ring_png(32, foreground=(255, 255, 255, 255), background=(0, 0, 0, 0)))
    return out.getvalue()


RGBA = tuple[int, int, int, int]


def ring_png(size: int, *, foreground: RGBA, background: RGBA) -> bytes:
    """A square RGBA PNG: a ring (an "o", for Opsroom) on a plain background.

    Teams wants the outline icon white on transparent and the colour icon on a solid colour.
    """
    centre = (size - 1) / 2
    outer, inner = size * 0.36, size * 0.22
    rows = []
    for y in range(size):
        row = bytearray(b"\x00")  # filter type: none
        for x in range(size):
            distance = ((x - centre) ** 2 + (y - centre) ** 2) ** 0.5
            row += bytes(foreground if inner <= distance <= outer else background)
        rows.append(bytes(row))
    header = struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0)  # 8-bit RGBA
    pixels = zlib.compress(b"".join(rows), 9)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", pixels) + _chunk(b"IEND", b"")


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)
