"""The Teams app package: what Teams checks on upload, and the CLI that writes it."""

from __future__ import annotations

import io
import json
import struct
import zipfile
import zlib
from pathlib import Path

import pytest

from bot.manifest import MAX_COMMANDS, MAX_DESCRIPTION, MAX_TITLE, AppDetails, ManifestError, package
from dialogs.commands import build_router
from tests.bot.test_cli import run

APP_ID = "11111111-2222-4333-8444-555555555555"
HOST = "opsroom.example.police.uk"


def unpack(data: bytes) -> tuple[dict[str, object], dict[str, bytes]]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        files = {name: zf.read(name) for name in zf.namelist()}
    return json.loads(files.pop("manifest.json")), files


def png_pixels(data: bytes) -> tuple[int, int, list[bytes]]:
    """Width, height and RGBA rows of a PNG as ring_png writes it (one IDAT, no filters)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height, depth, colour = struct.unpack(">IIBB", data[16:26])
    assert (depth, colour) == (8, 6)  # 8-bit RGBA
    length = struct.unpack(">I", data[33:37])[0]
    assert data[37:41] == b"IDAT"
    raw = zlib.decompress(data[41 : 41 + length])
    stride = 1 + 4 * width
    return width, height, [raw[i * stride + 1 : (i + 1) * stride] for i in range(height)]


def test_the_package_holds_a_manifest_naming_the_bot_and_its_commands() -> None:
    manifest, files = unpack(package(AppDetails(APP_ID, HOST, developer="Example Police"), build_router().commands()))
    assert set(files) == {"color.png", "outline.png"}
    assert manifest["manifestVersion"] == "1.17" and "v1.17" in str(manifest["$schema"])
    assert manifest["id"] == APP_ID and manifest["validDomains"] == [HOST]
    # Rooms open as private or shared channels too; Teams keeps the bot out of those unless declared.
    assert manifest["supportedChannelTypes"] == ["sharedChannels", "privateChannels"]
    assert tuple(int(part) for part in str(manifest["manifestVersion"]).split(".")) >= (1, 16)
    assert manifest["developer"] == {"name": "Example Police", "websiteUrl": f"https://{HOST}/",
                                     "privacyUrl": f"https://{HOST}/", "termsOfUseUrl": f"https://{HOST}/"}  # fmt: skip
    [bot] = manifest["bots"]  # type: ignore[misc]
    assert bot["botId"] == APP_ID and bot["scopes"] == ["team", "personal", "groupChat"]
    assert [c["scopes"] for c in bot["commandLists"]] == [["team"], ["personal"], ["groupChat"]]
    commands = bot["commandLists"][0]["commands"]
    titles = [c["title"] for c in commands]
    assert titles[0] == "help" and {"room open", "room status", "audit verify"} <= set(titles)
    assert len(commands) <= MAX_COMMANDS
    assert all(len(c["title"]) <= MAX_TITLE and 0 < len(c["description"]) <= MAX_DESCRIPTION for c in commands)
    assert len(manifest["name"]["short"]) <= 30 and len(manifest["description"]["short"]) <= 80  # type: ignore[index]


def test_the_icons_are_the_sizes_teams_wants_and_the_outline_is_white_on_transparent() -> None:
    _, files = unpack(package(AppDetails(APP_ID, HOST), build_router().commands()))
    width, height, rows = png_pixels(files["color.png"])
    assert (width, height) == (192, 192)
    assert all(row[3::4] == b"\xff" * width for row in rows)  # opaque
    width, height, rows = png_pixels(files["outline.png"])
    assert (width, height) == (32, 32)
    pixels = {bytes(row[i : i + 4]) for row in rows for i in range(0, len(row), 4)}
    assert pixels == {b"\xff\xff\xff\xff", b"\x00\x00\x00\x00"}


@pytest.mark.parametrize(
    ("details", "message"),
    [
        (AppDetails("not-a-guid", HOST), "GUID"),
        (AppDetails(APP_ID, "https://opsroom.example.police.uk/api/messages"), "public host name"),
        (AppDetails(APP_ID, "localhost"), "public host name"),
        (AppDetails(APP_ID, HOST, privacy="http://example.police.uk/privacy"), "privacy URL must start with https"),
    ],
)
def test_what_teams_would_refuse_is_refused_here(details: AppDetails, message: str) -> None:
    with pytest.raises(ManifestError, match=message):
        package(details, build_router().commands())


def test_the_cli_writes_the_package(tmp_path: Path) -> None:
    out = tmp_path / "app" / "opsroom.zip"
    result = run("teams-app", "--host", HOST, "--out", str(out), "--developer", "Example Police",
                 env={"MicrosoftAppId": APP_ID, "MicrosoftAppPassword": "x"})  # fmt: skip
    assert result.returncode == 0, result.stderr
    manifest, _ = unpack(out.read_bytes())
    assert manifest["id"] == APP_ID and manifest["developer"]["name"] == "Example Police"  # type: ignore[index]


def test_the_cli_needs_an_app_id_and_a_host_name(tmp_path: Path) -> None:
    result = run("teams-app", "--host", HOST, "--out", str(tmp_path / "x.zip"))
    assert result.returncode == 2 and "set MicrosoftAppId first" in result.stderr
    result = run("teams-app", "--host", "bad host", "--out", str(tmp_path / "x.zip"),
                 env={"MicrosoftAppId": APP_ID, "MicrosoftAppPassword": "x"})  # fmt: skip
    assert result.returncode == 2 and "public host name" in result.stderr
    assert not (tmp_path / "x.zip").exists()
