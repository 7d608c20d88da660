"""Self-tests for the fake OpenID metadata/JWKS and AAD (``tests.fakes.openid``)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import jwt
import msal
import pytest
import requests
from botbuilder.integration.aiohttp import (
    ConfigurationBotFrameworkAuthentication,
    ConfigurationServiceClientCredentialFactory,
)
from botbuilder.schema import Activity
from botframework.connector.auth import MicrosoftAppCredentials

from tests.fakes.openid import FakeOpenId, bearer, claims_of, clear_sdk_openid_cache
from tests.fixtures import BOT_APP_ID

SERVICE_URL = "https://smba.trafficmanager.net/uk/"


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
