"""Self-tests for the fake Bot Connector, the fake OpenID/AAD and the fixtures."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from urllib.parse import quote

import aiohttp
import jwt
import msal
import pytest
import pytest_asyncio
import requests
import yarl
from botbuilder.integration.aiohttp import (
    ConfigurationBotFrameworkAuthentication,
    ConfigurationServiceClientCredentialFactory,
)
from botbuilder.schema import Activity, ActivityTypes, ChannelAccount, ConversationAccount
from botbuilder.schema.teams import TeamsChannelData
from botframework.connector.aio import ConnectorClient
from botframework.connector.auth import MicrosoftAppCredentials
from botframework.connector.models import ErrorResponseException
from botframework.connector.teams import TeamsConnectorClient

from tests.fakes.connector import FakeConnector, PostedActivity
from tests.fakes.openid import FakeOpenId, bearer, claims_of, clear_sdk_openid_cache
from tests.fixtures import (
    BOT_APP_ID,
    BOT_ID,
    FIXTURE_NAMES,
    GENERAL_CHANNEL_ID,
    GUEST_AAD,
    GUEST_TENANT,
    HOME_TENANT,
    OFFICER_AAD,
    OFFICER_ID,
    PERSONAL_CONVERSATION_ID,
    TEAM_AAD_GROUP_ID,
    TEAM_ID,
    TEAM_NAME,
    THREAD_CONVERSATION_ID,
    load,
    load_activity,
    member,
    team_members,
)

THREAD = THREAD_CONVERSATION_ID
SERVICE_URL = "https://smba.trafficmanager.net/uk/"


def conv_path(conversation_id: str) -> str:
    """How the SDK (msrest) puts a conversation id into a path."""
    return quote(conversation_id, safe="")


# --------------------------------------------------------------------------- connector


@pytest_asyncio.fixture
async def connector() -> AsyncIterator[FakeConnector]:
    async with FakeConnector() as fake:
        yield fake


@pytest_asyncio.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.mark.asyncio
async def test_connector_url_has_trailing_slash(connector: FakeConnector) -> None:
    assert connector.url.startswith("http://127.0.0.1:")
    assert connector.url.endswith("/")
    assert connector.port > 0


@pytest.mark.asyncio
async def test_send_reply_update_are_recorded_in_order(
    connector: FakeConnector, http: aiohttp.ClientSession
) -> None:
    base = f"{connector.url}v3/conversations/{conv_path(THREAD)}/activities"
    async with http.post(base, json={"type": "message", "text": "one"}) as resp:
        assert resp.status == 201
        first_id = (await resp.json())["id"]
    async with http.post(f"{base}/{first_id}", json={"type": "message", "text": "two"}) as resp:
        assert resp.status == 201
        reply_id = (await resp.json())["id"]
    async with http.put(f"{base}/{first_id}", json={"type": "message", "text": "one (edited)"}) as resp:
        assert resp.status == 200
        assert await resp.json() == {"id": first_id}

    assert first_id != reply_id
    sent = connector.activities()
    assert [a["text"] for a in sent] == ["one", "two", "one (edited)"]
    assert [a.kind for a in sent] == ["send", "reply", "update"]
    assert all(isinstance(a, PostedActivity) and isinstance(a, dict) for a in sent)
    assert {a.conversation_id for a in sent} == {THREAD}
    assert sent[1].reply_to_id == first_id
    assert sent[2].is_update and sent[2].assigned_id == first_id
    assert sent[0].assigned_id == first_id
    rec = connector.requests[0]
    assert rec.method == "POST"
    assert rec.conversation_id == THREAD
    assert rec.path == f"/v3/conversations/{THREAD}/activities"
    assert rec.json == {"type": "message", "text": "one"}

    connector.clear()
    assert connector.requests == [] and connector.activities() == []


@pytest.mark.asyncio
async def test_unencoded_and_encoded_ids_decode_the_same(
    connector: FakeConnector, http: aiohttp.ClientSession
) -> None:
    cid = "a:1Ada=x@y;z"
    encoded = yarl_url(f"{connector.url}v3/conversations/{quote(cid, safe='')}/activities")
    async with http.post(encoded, json={"type": "typing"}) as resp:
        assert resp.status == 201
    assert "%3B" in connector.requests[0].raw_path  # arrived encoded, decoded for us
    raw = yarl_url(f"{connector.url}v3/conversations/{PERSONAL_CONVERSATION_ID}/activities")
    async with http.post(raw, json={"type": "typing"}) as resp:
        assert resp.status == 201
    assert [a.conversation_id for a in connector.activities()] == [cid, PERSONAL_CONVERSATION_ID]


def yarl_url(url: str) -> yarl.URL:
    """A URL aiohttp sends byte-for-byte (no re-quoting)."""
    return yarl.URL(url, encoded=True)


@pytest.mark.asyncio
async def test_create_conversation_new_channel_thread_and_personal(
    connector: FakeConnector, http: aiohttp.ClientSession
) -> None:
    body = {
        "isGroup": True,
        "channelData": {"channel": {"id": GENERAL_CHANNEL_ID}, "tenant": {"id": HOME_TENANT}},
        "activity": {"type": "message", "text": "new thread"},
        "bot": {"id": BOT_ID},
        "tenantId": HOME_TENANT,
    }
    async with http.post(f"{connector.url}v3/conversations", json=body) as resp:
        assert resp.status in (200, 201)
        created = await resp.json()
    assert created["id"] == f"{GENERAL_CHANNEL_ID};messageid={created['activityId']}"
    assert created["serviceUrl"] == connector.url

    personal = {"bot": {"id": BOT_ID}, "members": [{"id": OFFICER_ID}], "tenantId": HOME_TENANT}
    async with http.post(f"{connector.url}v3/conversations", json=personal) as resp:
        created2 = await resp.json()
    assert created2["id"].startswith("a:")

    sent = connector.activities()
    assert len(sent) == 1
    assert sent[0].kind == "create"
    assert sent[0]["text"] == "new thread"
    assert sent[0].conversation_id == created["id"]
    assert sent[0].assigned_id == created["activityId"]
    assert set(connector.conversations) == {created["id"], created2["id"]}


@pytest.mark.asyncio
async def test_wait_for_activities(connector: FakeConnector, http: aiohttp.ClientSession) -> None:
    url = f"{connector.url}v3/conversations/{conv_path(THREAD)}/activities"

    async def later() -> None:
        await asyncio.sleep(0.05)
        async with http.post(url, json={"type": "message", "text": "late"}):
            pass

    task = asyncio.create_task(later())
    got = await connector.wait_for_activities(1, timeout=2)
    await task
    assert got[0]["text"] == "late"

    with pytest.raises(AssertionError, match="expected at least 2 activities") as info:
        await connector.wait_for_activities(2, timeout=0.1)
    assert "late" in str(info.value)


@pytest.mark.asyncio
async def test_members_and_member_lookup(connector: FakeConnector, http: aiohttp.ClientSession) -> None:
    for m in team_members():
        connector.add_member(TEAM_ID, m)
    connector.set_team(TEAM_ID, TEAM_NAME, TEAM_AAD_GROUP_ID)

    # A channel thread resolves to the team roster.
    async with http.get(f"{connector.url}v3/conversations/{conv_path(THREAD)}/members") as resp:
        assert resp.status == 200
        members = await resp.json()
    assert [m["aadObjectId"] for m in members] == [m["aadObjectId"] for m in team_members()]

    async with http.get(
        f"{connector.url}v3/conversations/{conv_path(THREAD)}/members/{quote(OFFICER_ID)}"
    ) as resp:
        assert resp.status == 200
        assert (await resp.json())["aadObjectId"] == OFFICER_AAD
    # Teams also accepts the AAD object id.
    async with http.get(f"{connector.url}v3/conversations/{conv_path(TEAM_ID)}/members/{GUEST_AAD}") as resp:
        assert (await resp.json())["userRole"] == "guest"
    async with http.get(f"{connector.url}v3/conversations/{conv_path(TEAM_ID)}/members/29:nobody") as resp:
        assert resp.status == 404
        err = await resp.json()
    assert err["error"]["code"] == "MemberNotFoundInConversation"
    assert err["error"]["message"]


@pytest.mark.asyncio
async def test_paged_members(connector: FakeConnector, http: aiohttp.ClientSession) -> None:
    for m in team_members():
        connector.add_member(TEAM_ID, m)
    seen: list[str] = []
    token: str | None = None
    pages = 0
    while True:
        params = {"pageSize": "3"}
        if token:
            params["continuationToken"] = token
        async with http.get(
            f"{connector.url}v3/conversations/{conv_path(TEAM_ID)}/pagedmembers", params=params
        ) as r:
            assert r.status == 200
            page = await r.json()
        pages += 1
        assert set(page) == {"members", "continuationToken"}
        seen += [m["aadObjectId"] for m in page["members"]]
        token = page["continuationToken"]
        if not token:
            break
    assert pages == 2
    assert seen == [m["aadObjectId"] for m in team_members()]
    assert connector.requests[-1].query["continuationToken"] == "3"


@pytest.mark.asyncio
async def test_teams_routes(connector: FakeConnector, http: aiohttp.ClientSession) -> None:
    connector.set_team(
        TEAM_ID, TEAM_NAME, TEAM_AAD_GROUP_ID, [(TEAM_ID, None), ("19:incidents@thread.tacv2", "Incidents")]
    )
    async with http.get(f"{connector.url}v3/teams/{conv_path(TEAM_ID)}") as resp:
        details = await resp.json()
    assert (details["id"], details["name"], details["aadGroupId"]) == (TEAM_ID, TEAM_NAME, TEAM_AAD_GROUP_ID)
    async with http.get(f"{connector.url}v3/teams/{conv_path(TEAM_ID)}/conversations") as resp:
        chans = await resp.json()
    assert chans == {
        "conversations": [
            {"id": TEAM_ID, "name": None},
            {"id": "19:incidents@thread.tacv2", "name": "Incidents"},
        ]
    }
    async with http.get(f"{connector.url}v3/teams/19%3Aunknown%40thread.tacv2") as resp:
        assert resp.status == 404
        assert "error" in await resp.json()


@pytest.mark.asyncio
async def test_fail_next_429_then_5xx_then_success(
    connector: FakeConnector, http: aiohttp.ClientSession
) -> None:
    url = f"{connector.url}v3/conversations/{conv_path(THREAD)}/activities"
    connector.fail_next(1, 429, retry_after=2, path_contains="/activities")
    connector.fail_next(1, 503)
    async with http.post(url, json={"type": "message", "text": "x"}) as resp:
        assert resp.status == 429
        assert resp.headers["Retry-After"] == "2"
        assert (await resp.json())["error"]["code"] == "Throttled"
    async with http.post(url, json={"type": "message", "text": "x"}) as resp:
        assert resp.status == 503
        assert "Retry-After" not in resp.headers
        assert (await resp.json())["error"]["code"]
    async with http.post(url, json={"type": "message", "text": "x"}) as resp:
        assert resp.status == 201
    assert [r.failed for r in connector.requests] == [True, True, False]
    assert [r.status for r in connector.requests] == [429, 503, 201]
    assert len(connector.failed_requests()) == 2
    assert len(connector.activities()) == 1


@pytest.mark.asyncio
async def test_fail_next_path_filter(connector: FakeConnector, http: aiohttp.ClientSession) -> None:
    connector.add_member(TEAM_ID, member("officer"))
    connector.fail_next(2, 500, path_contains="/members")
    url = f"{connector.url}v3/conversations/{conv_path(THREAD)}"
    async with http.post(f"{url}/activities", json={"type": "message"}) as resp:
        assert resp.status == 201
    for _ in range(2):
        async with http.get(f"{url}/members") as resp:
            assert resp.status == 500
    async with http.get(f"{url}/members") as resp:
        assert resp.status == 200


@pytest.mark.asyncio
async def test_bad_json_is_400(connector: FakeConnector, http: aiohttp.ClientSession) -> None:
    url = f"{connector.url}v3/conversations/{conv_path(THREAD)}/activities"
    async with http.post(url, data=b"{not json", headers={"Content-Type": "application/json"}) as resp:
        assert resp.status == 400
        assert (await resp.json())["error"]["code"] == "BadSyntax"
    async with http.post(url, json=[1, 2]) as resp:
        assert resp.status == 400
    assert connector.activities() == []
    assert connector.requests[0].status == 400


@pytest.mark.asyncio
async def test_sdk_connector_client_against_fake(connector: FakeConnector) -> None:
    """The SDK's own REST client (msrest, URL-encodes ids) works against the fake."""
    for m in team_members():
        connector.add_member(TEAM_ID, m)
    connector.set_team(TEAM_ID, TEAM_NAME, TEAM_AAD_GROUP_ID)
    creds = MicrosoftAppCredentials.empty()
    client = ConnectorClient(creds, base_url=connector.url)
    activity = Activity(
        type=ActivityTypes.message,
        text="hello from sdk",
        from_property=ChannelAccount(id=BOT_ID),
        conversation=ConversationAccount(id=THREAD),
    )
    sent = await client.conversations.send_to_conversation(THREAD, activity)
    replied = await client.conversations.reply_to_activity(THREAD, sent.id, activity)
    updated = await client.conversations.update_activity(THREAD, sent.id, activity)
    assert updated.id == sent.id and replied.id
    officer = await client.conversations.get_conversation_member(THREAD, OFFICER_ID)
    assert (
        officer.additional_properties.get("aadObjectId") == OFFICER_AAD
        or officer.aad_object_id == OFFICER_AAD
    )
    paged = await client.conversations.get_conversation_paged_members(THREAD, page_size=2)
    assert len(paged.members) == 2 and paged.continuation_token == "2"
    with pytest.raises(ErrorResponseException):
        await client.conversations.get_conversation_member(THREAD, "29:nobody")

    # TeamsConnectorClient.teams.* is *blocking* (sync msrest/requests) although
    # awaited by TeamsInfo: this only works because the fake has its own thread.
    teams = TeamsConnectorClient(creds, base_url=connector.url)
    details = teams.teams.get_team_details(TEAM_ID)
    assert details.aad_group_id == TEAM_AAD_GROUP_ID
    channels = teams.teams.get_teams_channels(TEAM_ID)
    assert [c.id for c in channels.conversations] == [TEAM_ID]

    assert [a.conversation_id for a in connector.activities()] == [THREAD] * 3
    assert [a.kind for a in connector.activities()] == ["send", "reply", "update"]


def test_connector_sync_usage() -> None:
    with FakeConnector() as fake:
        resp = requests.post(
            f"{fake.url}v3/conversations/{conv_path(THREAD)}/activities",
            json={"type": "message", "text": "s"},
            timeout=5,
        )
        assert resp.status_code == 201
        assert fake.wait_for_activities_sync(1)[0]["text"] == "s"
        with pytest.raises(AssertionError):
            fake.wait_for_activities_sync(2, timeout=0.05)


# --------------------------------------------------------------------------- openid


@pytest.fixture(scope="module")
def openid() -> Iterator[FakeOpenId]:
    with FakeOpenId() as fake:
        yield fake


class _Config:
    """What the bot's settings object must provide to use the fakes."""

    def __init__(self, oid: FakeOpenId) -> None:
        self.APP_ID = BOT_APP_ID
        self.APP_PASSWORD = "fake-secret"
        self.APP_TYPE = "MultiTenant"
        self.APP_TENANTID = ""
        self.TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL = oid.metadata_url
        self.TO_BOT_FROM_CHANNEL_TOKEN_ISSUER = oid.issuer
        self.TO_CHANNEL_FROM_BOT_LOGIN_URL = oid.login_url
        self.TO_CHANNEL_FROM_BOT_OAUTH_SCOPE = "https://api.botframework.com"
        self.VALIDATE_AUTHORITY = False


def test_openid_documents(openid: FakeOpenId) -> None:
    meta = requests.get(openid.metadata_url, timeout=5).json()
    assert meta["issuer"] == "https://api.botframework.com"
    assert meta["jwks_uri"] == f"{openid.url}/keys"
    assert meta["id_token_signing_alg_values_supported"] == ["RS256"]
    assert meta["token_endpoint"] and meta["authorization_endpoint"]
    keys = requests.get(meta["jwks_uri"], timeout=5).json()["keys"]
    assert keys[0]["kid"] == openid.key.kid
    assert keys[0]["kty"] == "RSA" and keys[0]["use"] == "sig"
    assert "msteams" in keys[0]["endorsements"]
    public = jwt.PyJWK(keys[0]).key
    token = openid.mint(audience=BOT_APP_ID, service_url=SERVICE_URL)
    claims = jwt.decode(token, public, algorithms=["RS256"], audience=BOT_APP_ID)
    assert claims["serviceurl"] == SERVICE_URL and claims["iss"] == openid.issuer
    assert claims["exp"] > time.time() > claims["nbf"]
    assert "GET /keys" in openid.requests


def _activity(service_url: str = SERVICE_URL, channel_id: str = "msteams") -> Activity:
    return Activity(type="message", channel_id=channel_id, service_url=service_url)


@pytest.mark.asyncio
async def test_sdk_accepts_good_token_and_fetches_metadata_once() -> None:
    with FakeOpenId() as oid:
        auth = ConfigurationBotFrameworkAuthentication(_Config(oid))
        token = oid.mint(audience=BOT_APP_ID, service_url=SERVICE_URL)
        result = await auth.authenticate_request(_activity(), bearer(token))
        assert result.claims_identity.is_authenticated
        assert result.claims_identity.claims["aud"] == BOT_APP_ID
        assert result.audience == "https://api.botframework.com"
        result = await auth.authenticate_request(
            _activity(), bearer(oid.mint(audience=BOT_APP_ID, service_url=SERVICE_URL))
        )
        assert result.claims_identity.claims["serviceurl"] == SERVICE_URL
        assert oid.metadata_fetches == 1
        assert oid.key_fetches == 1


def _bad_cases(oid: FakeOpenId) -> list[tuple[str, str | None, type[BaseException], Activity]]:
    su = SERVICE_URL
    now = int(time.time())
    good = oid.mint(audience=BOT_APP_ID, service_url=su)
    return [
        (
            "expired",
            bearer(oid.mint(audience=BOT_APP_ID, service_url=su, expires_in=-1000)),
            jwt.ExpiredSignatureError,
            _activity(),
        ),
        (
            "not_yet_valid",
            bearer(oid.mint(audience=BOT_APP_ID, service_url=su, not_before=now + 3600)),
            jwt.ImmatureSignatureError,
            _activity(),
        ),
        (
            "wrong_key_same_kid",
            bearer(oid.mint_with_unknown_key(audience=BOT_APP_ID, service_url=su)),
            jwt.InvalidSignatureError,
            _activity(),
        ),
        (
            "unknown_kid",
            bearer(oid.mint(audience=BOT_APP_ID, service_url=su, kid="unknown-kid")),
            IndexError,
            _activity(),
        ),
        (
            "wrong_audience",
            bearer(oid.mint(audience="11111111-2222-3333-4444-555555555555", service_url=su)),
            PermissionError,
            _activity(),
        ),
        (
            "missing_audience",
            bearer(oid.mint(audience=BOT_APP_ID, service_url=su, extra_claims={"aud": None})),
            PermissionError,
            _activity(),
        ),
        (
            "wrong_issuer",
            bearer(oid.mint(audience=BOT_APP_ID, service_url=su, issuer="https://evil.example.com")),
            PermissionError,
            _activity(),
        ),
        (
            "missing_issuer",
            bearer(oid.mint(audience=BOT_APP_ID, service_url=su, extra_claims={"iss": None})),
            KeyError,
            _activity(),
        ),
        (
            "emulator_issuer",
            bearer(
                oid.mint(
                    audience=BOT_APP_ID,
                    service_url=su,
                    issuer="https://sts.windows.net/d6d49420-f39b-4df7-a1dc-d59a935871db/",
                )
            ),
            requests.exceptions.MissingSchema,
            _activity(),
        ),
        (
            "skill_like_claims",
            bearer(
                oid.mint(audience=BOT_APP_ID, service_url=su, extra_claims={"ver": "1.0", "appid": "other"})
            ),
            PermissionError,
            _activity(),
        ),
        (
            "serviceurl_mismatch",
            bearer(good),
            PermissionError,
            _activity(service_url="https://evil.example.com/"),
        ),
        ("serviceurl_missing", bearer(oid.mint(audience=BOT_APP_ID)), PermissionError, _activity()),
        ("channel_not_endorsed", bearer(good), Exception, _activity(channel_id="telegram")),
        (
            "hs256_with_kid",
            bearer(
                oid.mint(audience=BOT_APP_ID, service_url=su, alg="HS256", key=b"k" * 32, kid=oid.key.kid)
            ),
            Exception,
            _activity(),
        ),
        (
            "hs256_no_kid",
            bearer(oid.mint(audience=BOT_APP_ID, service_url=su, alg="HS256", key=b"k" * 32)),
            IndexError,
            _activity(),
        ),
        (
            "alg_none",
            bearer(oid.mint(audience=BOT_APP_ID, service_url=su, alg="none", key=b"", kid=oid.key.kid)),
            Exception,
            _activity(),
        ),
        (
            "rs512",
            bearer(oid.mint(audience=BOT_APP_ID, service_url=su, alg="RS512")),
            jwt.InvalidAlgorithmError,
            _activity(),
        ),
        ("garbage", "Bearer garbage", jwt.DecodeError, _activity()),
        ("garbage_three_parts", "Bearer a.b.c", jwt.DecodeError, _activity()),
        ("empty_bearer", "Bearer ", jwt.DecodeError, _activity()),
        ("token_without_scheme", good, AttributeError, _activity()),
        ("basic_scheme", "Basic dXNlcjpwYXNz", PermissionError, _activity()),
        ("lowercase_bearer", "bearer " + good, PermissionError, _activity()),
        ("no_header", None, PermissionError, _activity()),
    ]


@pytest.mark.asyncio
async def test_sdk_rejects_bad_tokens_with_these_exact_exceptions(openid: FakeOpenId) -> None:
    auth = ConfigurationBotFrameworkAuthentication(_Config(openid))
    outcomes: dict[str, str] = {}
    mismatches: list[str] = []
    for name, header, expected, activity in _bad_cases(openid):
        try:
            await auth.authenticate_request(activity, header)
        except BaseException as exc:
            outcomes[name] = type(exc).__qualname__
            if type(exc) is not expected:
                mismatches.append(f"{name}: expected {expected.__qualname__}, got {type(exc)!r}: {exc}")
        else:
            mismatches.append(f"{name}: accepted!")
    assert not mismatches, "\n".join(mismatches)
    # Sanity: the good token still passes with the same authenticator.
    ok = await auth.authenticate_request(
        _activity(), bearer(openid.mint(audience=BOT_APP_ID, service_url=SERVICE_URL))
    )
    assert ok.claims_identity.claims["aud"] == BOT_APP_ID


@pytest.mark.asyncio
async def test_key_rotation_needs_sdk_cache_clear() -> None:
    with FakeOpenId() as oid:
        auth = ConfigurationBotFrameworkAuthentication(_Config(oid))
        await auth.authenticate_request(
            _activity(), bearer(oid.mint(audience=BOT_APP_ID, service_url=SERVICE_URL))
        )
        old = oid.key.kid
        new = oid.rotate_key()
        kids = [k["kid"] for k in requests.get(oid.jwks_uri, timeout=5).json()["keys"]]
        assert kids == [old, new.kid]
        token = oid.mint(audience=BOT_APP_ID, service_url=SERVICE_URL)
        assert jwt.get_unverified_header(token)["kid"] == new.kid
        # The SDK keeps the old key set (refetch on unknown kid at most hourly).
        with pytest.raises(IndexError):
            await auth.authenticate_request(_activity(), bearer(token))
        clear_sdk_openid_cache()
        auth = ConfigurationBotFrameworkAuthentication(_Config(oid))
        result = await auth.authenticate_request(_activity(), bearer(token))
        assert result.claims_identity.is_authenticated
        assert oid.metadata_fetches == 2


@pytest.mark.asyncio
async def test_outbound_token_through_sdk_credentials_factory(
    openid: FakeOpenId, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", openid.ca_bundle_path)
    before = len(openid.token_requests)
    factory = ConfigurationServiceClientCredentialFactory(_Config(openid))
    creds = await factory.create_credentials(
        BOT_APP_ID, "https://api.botframework.com", openid.login_url, False
    )
    assert creds.oauth_endpoint == openid.login_url
    token = creds.get_access_token()
    claims = claims_of(token)
    assert claims["aud"] == "https://api.botframework.com"
    assert claims["appid"] == BOT_APP_ID
    assert creds.get_access_token() == token  # MSAL cache: no second request
    assert len(openid.token_requests) == before + 1
    req = openid.token_requests[-1]
    assert req.form["grant_type"] == "client_credentials"
    assert req.client_id == BOT_APP_ID
    assert req.form["client_secret"] == "fake-secret"
    assert req.scope == "https://api.botframework.com/.default"
    assert "GET /adfs/.well-known/openid-configuration" in openid.requests


def test_outbound_token_with_plain_microsoft_app_credentials(
    openid: FakeOpenId, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", openid.ca_bundle_path)
    creds = MicrosoftAppCredentials("some-app", "pw", oauth_scope="https://api.botframework.com")
    creds.oauth_endpoint = openid.login_url
    before = len(openid.token_requests)
    assert claims_of(creds.get_access_token())["appid"] == "some-app"
    assert len(openid.token_requests) == before + 1


def test_entra_style_authority_needs_msal_without_instance_discovery(
    openid: FakeOpenId, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If the bot builds MSAL itself it can use a tenant path (no ADFS trick)."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", openid.ca_bundle_path)
    app = msal.ConfidentialClientApplication(
        "app-x",
        client_credential="pw",
        authority=openid.login_url_for("botframework.com"),
        validate_authority=False,
    )
    result = app.acquire_token_for_client(scopes=["https://api.botframework.com/.default"])
    assert result["token_type"] == "Bearer" and result["access_token"]
    assert "GET /botframework.com/v2.0/.well-known/openid-configuration" in openid.requests


def test_token_endpoint_rejects_wrong_secret_and_grant() -> None:
    with FakeOpenId(expected_client_secret="right") as oid:
        url = f"{oid.url}/adfs/oauth2/v2.0/token"
        bad = requests.post(
            url,
            data={"grant_type": "client_credentials", "client_id": "a", "client_secret": "wrong"},
            timeout=5,
        )
        assert bad.status_code == 401 and bad.json()["error"] == "invalid_client"
        grant = requests.post(url, data={"grant_type": "password", "client_id": "a"}, timeout=5)
        assert grant.status_code == 400
        good = requests.post(
            url,
            data={"grant_type": "client_credentials", "client_id": "a", "client_secret": "right"},
            timeout=5,
        )
        assert good.json()["token_type"] == "Bearer" and good.json()["expires_in"] == 3600
        assert len(oid.token_requests) == 3


# --------------------------------------------------------------------------- fixtures

EXPECTED: dict[str, tuple[str, str, str | None]] = {
    # name: (type, tenant, conversationType)
    "channel_message_mention": ("message", HOME_TENANT, "channel"),
    "personal_message": ("message", HOME_TENANT, "personal"),
    "guest_message": ("message", GUEST_TENANT, "channel"),
    "group_chat_message": ("message", HOME_TENANT, "groupChat"),
    "conversation_update_bot_added": ("conversationUpdate", HOME_TENANT, "channel"),
    "conversation_update_members_added": ("conversationUpdate", HOME_TENANT, "channel"),
    "conversation_update_bot_removed": ("conversationUpdate", HOME_TENANT, "channel"),
    "card_submit_invoke": ("invoke", HOME_TENANT, "channel"),
    "card_submit_message": ("message", HOME_TENANT, "channel"),
}


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_fixture_loads_and_deserialises(name: str) -> None:
    expected_type, tenant, conv_type = EXPECTED[name]
    data = load(name, service_url="http://127.0.0.1:1/")
    act = Activity().deserialize(data)
    assert act.type == expected_type
    assert act.channel_id == "msteams"
    assert act.service_url == "http://127.0.0.1:1/"
    assert act.recipient.id == BOT_ID
    # SDK quirk: ConversationAccount.tenant_id maps to JSON "tenantID", Teams sends
    # "tenantId" -> it lands in additional_properties.  Read channelData.tenant.id.
    assert act.conversation.tenant_id is None
    assert act.conversation.additional_properties["tenantId"] == tenant
    assert TeamsChannelData().deserialize(act.channel_data).tenant.id == tenant
    assert act.conversation.conversation_type == conv_type
    assert act.channel_data["tenant"]["id"] == tenant
    assert act.from_property.id.startswith("29:")
    assert act.from_property.aad_object_id
    assert act.timestamp is not None and act.timestamp.tzinfo is not None
    assert abs(time.time() - act.timestamp.timestamp()) < 60
    other = load(name, service_url="http://127.0.0.1:1/")
    assert other["id"] != data["id"]


def test_fixture_specifics() -> None:
    mention = load_activity("channel_message_mention", service_url=SERVICE_URL)
    assert mention.text == "<at>Opsroom</at> help"
    assert mention.conversation.id == THREAD
    assert mention.channel_data["team"] == {"id": TEAM_ID, "name": TEAM_NAME, "aadGroupId": TEAM_AAD_GROUP_ID}
    ments = [e for e in mention.entities if e.type == "mention"]
    assert ments[0].additional_properties["mentioned"]["id"] == BOT_ID

    guest = load("guest_message", service_url=SERVICE_URL)
    assert guest["from"]["aadObjectId"] == GUEST_AAD

    bot_added = load_activity("conversation_update_bot_added", service_url=SERVICE_URL)
    assert [m.id for m in bot_added.members_added] == [BOT_ID]
    assert bot_added.channel_data["eventType"] == "teamMemberAdded"
    removed = load_activity("conversation_update_bot_removed", service_url=SERVICE_URL)
    assert [m.id for m in removed.members_removed] == [BOT_ID]
    assert removed.channel_data["eventType"] == "teamMemberRemoved"
    users = load_activity("conversation_update_members_added", service_url=SERVICE_URL)
    assert all(m.id.startswith("29:") for m in users.members_added)

    invoke = load_activity("card_submit_invoke", service_url=SERVICE_URL)
    assert invoke.name == "adaptiveCard/action"
    assert invoke.value["action"] == {
        "type": "Action.Execute",
        "title": "Help",
        "verb": "command",
        "data": {"command": "help"},
    }
    assert invoke.value["trigger"] == "manual"

    submit = load("card_submit_message", service_url=SERVICE_URL)
    assert "text" not in submit and submit["value"] == {"command": "help"} and submit["replyToId"]

    assert load("personal_message", service_url=SERVICE_URL)["text"] == "/help"
    assert load("personal_message", service_url=SERVICE_URL)["conversation"]["id"].startswith("a:")
    assert load("group_chat_message", service_url=SERVICE_URL)["text"] == "/help"


def test_load_overrides() -> None:
    d = load("channel_message_mention", service_url=SERVICE_URL, text="status 42")
    assert d["text"] == "<at>Opsroom</at> status 42"
    assert "status 42" in d["attachments"][0]["content"]
    d = load("channel_message_mention", service_url=SERVICE_URL, text="<at>Opsroom</at> x")
    assert d["text"] == "<at>Opsroom</at> x"
    d = load("personal_message", service_url=SERVICE_URL, text="/status")
    assert d["text"] == "/status"
    d = load(
        "personal_message",
        service_url=SERVICE_URL,
        id="fixed-id",
        from_={"aadObjectId": OFFICER_AAD, "name": "Renamed"},
        tenant=GUEST_TENANT,
        locale="fr-FR",
        replyToId="123",
    )
    assert d["id"] == "fixed-id"
    assert d["from"]["name"] == "Renamed" and d["from"]["id"] == OFFICER_ID
    assert d["channelData"]["tenant"]["id"] == GUEST_TENANT == d["conversation"]["tenantId"]
    assert d["locale"] == "fr-FR" and d["replyToId"] == "123"
    assert d["timestamp"].endswith("Z")
    assert "locale" not in load("personal_message", service_url=SERVICE_URL, locale=None)
