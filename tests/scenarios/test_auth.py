"""Inbound JWT validation against a locally minted key: every bad token is a 401, never a 500."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from tests import fixtures
from tests.fakes.openid import FakeOpenId
from tests.scenarios.conftest import Harness

Mint = Callable[[FakeOpenId, str], str | None]

BAD_TOKENS: dict[str, Mint] = {
    "missing": lambda oid, url: None,
    "expired": lambda oid, url: oid.mint(audience=fixtures.BOT_APP_ID, service_url=url, expires_in=-3600),
    "not yet valid": lambda oid, url: oid.mint(audience=fixtures.BOT_APP_ID, service_url=url,
                                               not_before=2_000_000_000, expires_in=10**9),
    "wrongly signed": lambda oid, url: oid.mint_with_unknown_key(audience=fixtures.BOT_APP_ID, service_url=url),
    "unknown key id": lambda oid, url: oid.mint(audience=fixtures.BOT_APP_ID, service_url=url, kid="no-such-kid"),
    "wrong audience": lambda oid, url: oid.mint(audience="someone-else", service_url=url),
    "wrong issuer": lambda oid, url: oid.mint(audience=fixtures.BOT_APP_ID, service_url=url,
                                              issuer="https://evil.example"),
    "wrong serviceurl": lambda oid, url: oid.mint(audience=fixtures.BOT_APP_ID,
                                                  service_url="https://elsewhere.example/"),
    "no serviceurl claim": lambda oid, url: oid.mint(audience=fixtures.BOT_APP_ID),
    "garbage": lambda oid, url: "not.a.jwt",
    "garbage segments": lambda oid, url: "eyJhbGciOiJSUzI1NiJ9.e30.c2ln",
    "alg none": lambda oid, url: oid.mint(audience=fixtures.BOT_APP_ID, service_url=url, alg="none"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(BAD_TOKENS))
async def test_bad_tokens_get_401(secure_harness: Harness, openid: FakeOpenId, case: str) -> None:
    token = BAD_TOKENS[case](openid, secure_harness.connector.url)
    secure_harness.token = token
    result = await secure_harness.say("personal_message", "/help")
    assert result.status == 401, result.body
    assert result.replies == []
    [event] = secure_harness.audit()
    assert (event["action"], event["outcome"], event["actor_kind"]) == (
        "http.unauthorized", "unauthorized", "unverified"
    )
    assert token is None or token not in (event["detail"] or "")


@pytest.mark.parametrize("scheme", ["Basic", "bearer-ish", ""])
async def test_wrong_authorization_scheme_is_401(secure_harness: Harness, openid: FakeOpenId, scheme: str) -> None:
    token = openid.mint(audience=fixtures.BOT_APP_ID, service_url=secure_harness.connector.url)
    result = await secure_harness.send(
        secure_harness.activity("personal_message", "/help"), headers={"Authorization": f"{scheme} {token}"}
    )
    assert result.status == 401


async def test_a_good_token_is_served_and_the_reply_is_authenticated(
    secure_harness: Harness, openid: FakeOpenId
) -> None:
    secure_harness.token = openid.mint(audience=fixtures.BOT_APP_ID, service_url=secure_harness.connector.url)
    result = await secure_harness.say("personal_message", "/help")
    assert result.status in (200, 201)
    [reply] = result.replies
    assert "Commands you can run here" in reply["text"]
    assert reply.request.headers.get("Authorization", "").startswith("Bearer ")
    assert len(openid.token_requests) >= 1
    assert secure_harness.audit()[-1]["outcome"] == "ok"


async def test_signing_keys_are_fetched_once_and_off_the_event_loop(
    secure_harness: Harness, openid: FakeOpenId
) -> None:
    secure_harness.token = openid.mint(audience=fixtures.BOT_APP_ID, service_url=secure_harness.connector.url)
    ticks = 0
    stop = asyncio.Event()

    async def heartbeat() -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            await asyncio.sleep(0.001)

    beat = asyncio.create_task(heartbeat())
    results = await asyncio.gather(*(secure_harness.say("personal_message", "/help") for _ in range(5)))
    stop.set()
    await beat
    assert all(r.status in (200, 201) for r in results)
    assert openid.key_fetches <= 1  # prefetched at start-up, then cached
    assert ticks > 0


async def test_a_rotated_key_is_picked_up(secure_harness: Harness, openid: FakeOpenId) -> None:
    from bot.auth import JwtTokenExtractor

    openid.rotate_key()
    metadata = JwtTokenExtractor.metadataCache[openid.metadata_url]
    metadata.last_updated = metadata.last_updated.replace(year=2000)  # the SDK refreshes after a day
    secure_harness.token = openid.mint(audience=fixtures.BOT_APP_ID, service_url=secure_harness.connector.url)
    result = await secure_harness.say("personal_message", "/help")
    assert result.status in (200, 201)
