"""Uploading a file a person accepted with a FileConsentCard (Teams' file flow for bots in personal chats).

On accept, Teams makes an upload session in the person's OneDrive and gives its URL in the invoke's
`uploadInfo`; the bot PUTs the bytes there with Content-Range headers, in chunks (a multiple of 320 KiB,
as OneDrive's upload sessions require, except the last), then posts a FileInfoCard. The URL is a
pre-authorised OneDrive one: no token is sent with it.
"""

from __future__ import annotations

import asyncio
import ipaddress
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp

from dialogs.context import UploadFailed

CHUNK = 13 * 320 * 1024
"""Bytes per PUT: about 4 MiB, a multiple of 320 KiB."""
TIMEOUT = aiohttp.ClientTimeout(total=300, sock_read=60)


def checked(url: str) -> str:
    """The upload URL, if it is one to send audit data to: https, or http to this machine (development
    and the tests' fake Teams). The invoke is authenticated, but a plain-http URL elsewhere would put
    the file on the wire unencrypted."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return url
    host = parts.hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if parts.scheme == "http" and loopback:
        return url
    raise UploadFailed("the upload address Teams gave is not https")


async def upload(url: str, path: Path, size: int) -> None:
    """PUT the file at path (size bytes) to an upload session, chunk by chunk; UploadFailed if refused."""
    target = checked(url)
    first = 0
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        with path.open("rb") as source:
            while first < size:
                chunk = await asyncio.to_thread(source.read, CHUNK)
                if not chunk:
                    raise UploadFailed("the file is shorter than its recorded size")
                last = first + len(chunk) - 1
                headers = {"Content-Range": f"bytes {first}-{last}/{size}",
                           "Content-Type": "application/octet-stream"}  # fmt: skip
                try:
                    async with session.put(target, data=chunk, headers=headers) as response:
                        if response.status not in (200, 201, 202):
                            raise UploadFailed(f"OneDrive answered HTTP {response.status}")
                except aiohttp.ClientError as exc:
                    raise UploadFailed(f"the upload failed ({type(exc).__name__})") from exc
                first = last + 1
