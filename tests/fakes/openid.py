"""Local stand-ins for the Bot Framework OpenID metadata/JWKS and for AAD.

``FakeOpenId`` runs two tiny HTTP servers on 127.0.0.1 from a background
thread (never on the caller's asyncio loop: the SDK fetches OpenID metadata with
a *blocking* ``requests.get`` from inside a coroutine, which would deadlock a
server living on that same loop):

* a plain-HTTP server (``.url``) serving the channel OpenID metadata
  (``/.well-known/openid-configuration``) and the JWKS (``/keys``);
* an HTTPS server (``.https_url``, self-signed certificate for 127.0.0.1 and
  localhost) serving an AAD-like authority for MSAL:
  ``/<tenant>/v2.0/.well-known/openid-configuration`` (and the ADFS-style
  ``/<tenant>/.well-known/openid-configuration``) plus the client-credentials
  token endpoint ``POST /<tenant>/oauth2/v2.0/token``.  Both servers answer every
  route; HTTPS exists only because MSAL refuses any authority that is not
  ``https://``.

Inbound (channel -> bot) settings
---------------------------------
The bot's configuration object (read with ``getattr`` by
``ConfigurationBotFrameworkAuthentication``) must carry::

    APP_ID = BOT_APP_ID                 # the token's ``aud`` must equal this
    APP_PASSWORD = "<anything>"
    APP_TYPE = "MultiTenant"            # or SingleTenant + APP_TENANTID
    TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL = fake.metadata_url
    TO_BOT_FROM_CHANNEL_TOKEN_ISSUER = fake.issuer   # "https://api.botframework.com"
    TO_CHANNEL_FROM_BOT_OAUTH_SCOPE = "https://api.botframework.com"
    TO_CHANNEL_FROM_BOT_LOGIN_URL = fake.login_url   # see below
    VALIDATE_AUTHORITY = False          # (has no effect on MSAL, see below)

Setting any ``TO_*`` attribute makes ``BotFrameworkAuthenticationFactory``
choose ``_ParameterizedBotFrameworkAuthentication``; it validates the channel
token against ``TO_BOT_FROM_CHANNEL_TOKEN_ISSUER`` exactly (``iss`` claim) and
fetches keys from ``TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL``.  The metadata is
cached per URL in the class-level ``JwtTokenExtractor.metadataCache`` for a day
(``metadata_url`` carries a per-instance query string, so each ``FakeOpenId`` gets
its own cache entry; ``clear_sdk_openid_cache()`` empties it).  ``mint`` produces
channel tokens (no ``ver``/``appid`` claims: ``ver`` plus ``appid``/``azp`` would
route the token to the skill path, and an emulator ``iss`` to the emulator path,
whose metadata URL is unset -> ``requests.exceptions.MissingSchema``).  The
channel id of the activity must be in the key's ``endorsements`` ("msteams" is).

Outbound (bot -> connector) settings
------------------------------------
``PasswordServiceClientCredentialFactory`` builds a ``_PrivateCloudAppCredentials``
for any login URL that does not start with ``https://login.microsoftonline.com/``
and uses that URL *verbatim* as the MSAL authority (no tenant is appended).  MSAL
is created as ``ConfidentialClientApplication(client_id, client_credential,
authority=...)`` -- the SDK never passes ``validate_authority`` nor
``instance_discovery`` (``VALIDATE_AUTHORITY`` only reaches a dead property).  So
for an unknown host MSAL first calls
``https://login.microsoftonline.com/common/discovery/instance`` (offline: an
immediate ``requests.ConnectionError`` raised from the ``ConfidentialClientApplication``
constructor, i.e. the first outbound send fails).  MSAL skips instance discovery
only for well-known hosts, B2C and **ADFS** authorities (tenant segment
``adfs``).  Therefore ``fake.login_url`` is ``https://127.0.0.1:<port>/adfs``
(tenant discovery then goes to ``/adfs/.well-known/openid-configuration``, which
this fake serves), and MSAL needs to trust the self-signed certificate:

    os.environ["REQUESTS_CA_BUNDLE"] = fake.ca_bundle_path

(``requests`` reads it because MSAL's session keeps ``trust_env``; the bundle is
certifi's roots plus the fake's certificate, so nothing else loses trust).  Use
``fake.login_url_for(tenant)`` for a non-ADFS authority only if the bot builds
MSAL itself with ``validate_authority=False`` / ``instance_discovery=False``.
"""

from __future__ import annotations

import ssl
import tempfile
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from http.server import ThreadingHTTPServer
from types import TracebackType
from typing import Any

import jwt

from tests.fakes.openid_http import OpenIdHandler, PlainServer, TlsServer, TokenRequest, make_tls_material
from tests.fakes.openid_keys import DEFAULT_ENDORSEMENTS, SigningKey

DEFAULT_ISSUER = "https://api.botframework.com"
DEFAULT_OAUTH_SCOPE = "https://api.botframework.com"
AAD_TENANT_BOTFRAMEWORK = "d6d49420-f39b-4df7-a1dc-d59a935871db"

__all__ = [
    "AAD_TENANT_BOTFRAMEWORK",
    "DEFAULT_ENDORSEMENTS",
    "DEFAULT_ISSUER",
    "DEFAULT_OAUTH_SCOPE",
    "FakeOpenId",
    "SigningKey",
    "TokenRequest",
    "bearer",
    "claims_of",
    "clear_sdk_openid_cache",
]


class FakeOpenId:
    """OpenID metadata + JWKS + AAD-like token endpoint, served from a thread.

    Use as ``with FakeOpenId() as oid: ...`` or ``start()``/``stop()``.
    """

    def __init__(
        self,
        *,
        issuer: str = DEFAULT_ISSUER,
        endorsements: Iterable[str] = DEFAULT_ENDORSEMENTS,
        expected_client_secret: str | None = None,
    ) -> None:
        self.issuer = issuer
        self.key = SigningKey(endorsements=endorsements)
        self.other_key = SigningKey(kid=self.key.kid, endorsements=endorsements)
        """Not published: same ``kid`` as ``key``, so tokens signed with it fail the signature check."""
        self.published_keys: list[SigningKey] = [self.key]
        self.expected_client_secret = expected_client_secret
        self.requests: list[str] = []
        """Paths hit, as ``"GET /keys"`` strings, in order (both servers)."""
        self.token_requests: list[TokenRequest] = []
        self._lock = threading.Lock()
        self._tmpdir: tempfile.TemporaryDirectory[str] | None = None
        self._servers: list[ThreadingHTTPServer] = []
        self._threads: list[threading.Thread] = []
        self._instance_tag = uuid.uuid4().hex[:12]
        self.url = ""
        self.https_url = ""
        self.ca_bundle_path = ""
        self.cert_path = ""

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> FakeOpenId:
        if self._servers:
            return self
        self._tmpdir = tempfile.TemporaryDirectory(prefix="fake-openid-")
        self.cert_path, key_path, self.ca_bundle_path = make_tls_material(self._tmpdir.name)
        handler = type("_BoundHandler", (OpenIdHandler,), {"owner": self})

        plain = PlainServer(("127.0.0.1", 0), handler)
        tls = TlsServer(("127.0.0.1", 0), handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.cert_path, key_path)
        tls.socket = ctx.wrap_socket(tls.socket, server_side=True)
        self.url = f"http://127.0.0.1:{plain.server_address[1]}"
        self.https_url = f"https://127.0.0.1:{tls.server_address[1]}"
        for srv in (plain, tls):
            thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
            thread.start()
            self._servers.append(srv)
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        for srv in self._servers:
            srv.shutdown()
            srv.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        self._servers.clear()
        self._threads.clear()
        if self._tmpdir is not None:
            self._tmpdir.cleanup()
            self._tmpdir = None

    def __enter__(self) -> FakeOpenId:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ------------------------------------------------------------------ URLs
    @property
    def metadata_url(self) -> str:
        """Value for ``TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL``.

        Carries a per-instance query string so the SDK's process-wide,
        URL-keyed, day-long ``JwtTokenExtractor.metadataCache`` can never hand a
        new fake the keys of an old one that happened to use the same port.
        """
        return f"{self.url}/.well-known/openid-configuration?fake={self._instance_tag}"

    @property
    def jwks_uri(self) -> str:
        return f"{self.url}/keys"

    @property
    def login_url(self) -> str:
        """Value for ``TO_CHANNEL_FROM_BOT_LOGIN_URL`` (ADFS-style, so MSAL skips instance discovery)."""
        return f"{self.https_url}/adfs"

    def login_url_for(self, tenant: str) -> str:
        """An Entra-style authority; MSAL would do instance discovery unless told not to."""
        return f"{self.https_url}/{tenant}"

    @property
    def metadata_fetches(self) -> int:
        """How many times the channel OpenID metadata document was fetched."""
        return sum(1 for r in self.requests if r == "GET /.well-known/openid-configuration")

    @property
    def key_fetches(self) -> int:
        return sum(1 for r in self.requests if r == "GET /keys")

    # ------------------------------------------------------------------ documents
    def channel_metadata(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.url}/v1/.well-known/authorize",
            "token_endpoint": f"{self.https_url}/botframework.com/oauth2/v2.0/token",
            "jwks_uri": self.jwks_uri,
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        }

    def jwks(self) -> dict[str, Any]:
        with self._lock:
            return {"keys": [k.jwk() for k in self.published_keys]}

    def tenant_metadata(self, base: str, tenant_path: str) -> dict[str, Any]:
        tenant = tenant_path or "common"
        return {
            "issuer": f"{base}/{tenant}/v2.0",
            "authorization_endpoint": f"{base}/{tenant}/oauth2/v2.0/authorize",
            "token_endpoint": f"{base}/{tenant}/oauth2/v2.0/token",
            "jwks_uri": f"{base}/{tenant}/discovery/v2.0/keys",
            "response_types_supported": ["code", "id_token", "token id_token"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt"],
            "tenant_region_scope": "EU",
        }

    # ------------------------------------------------------------------ keys
    def rotate_key(self, *, keep_old: bool = True) -> SigningKey:
        """Publish a new signing key (new kid) and make it the default for ``mint``."""
        new = SigningKey(endorsements=self.key.endorsements)
        with self._lock:
            self.published_keys = [*self.published_keys, new] if keep_old else [new]
            self.key = new
        return new

    # ------------------------------------------------------------------ tokens
    def mint(
        self,
        *,
        audience: str,
        service_url: str | None = None,
        issuer: str | None = None,
        expires_in: int = 3600,
        not_before: int | None = None,
        kid: str | None = None,
        key: SigningKey | bytes | str | None = None,
        extra_claims: Mapping[str, Any] | None = None,
        alg: str = "RS256",
    ) -> str:
        """A signed JWT shaped like the one the Bot Framework channel sends.

        ``expires_in`` is relative to now (negative = already expired; the SDK
        allows 300 s of clock skew, so use < -300 to get a rejection).
        ``not_before`` is an absolute epoch second (default: now - 5 minutes).
        ``key`` defaults to the published key; pass ``self.other_key`` for a
        wrong signature, or raw key material for other algorithms.  Set an
        extra claim to ``None`` to remove it (e.g. ``{"serviceurl": None}``).
        """
        now = int(time.time())
        claims: dict[str, Any] = {
            "serviceurl": service_url,
            "nbf": now - 300 if not_before is None else not_before,
            "exp": now + expires_in,
            "iss": self.issuer if issuer is None else issuer,
            "aud": audience,
        }
        if service_url is None:
            del claims["serviceurl"]
        for name, value in (extra_claims or {}).items():
            if value is None:
                claims.pop(name, None)
            else:
                claims[name] = value
        signer = self.key if key is None else key
        headers: dict[str, Any] = {"typ": "JWT"}
        if isinstance(signer, SigningKey):
            material: Any = signer.private_pem
            headers["kid"] = signer.kid if kid is None else kid
            headers["x5t"] = headers["kid"]
        else:
            material = signer
            if kid is not None:
                headers["kid"] = kid
        if alg == "none":
            material = None
        return jwt.encode(claims, material, algorithm=alg, headers=headers)

    def mint_with_unknown_key(self, *, audience: str, **kwargs: Any) -> str:
        """Signed by an unpublished key that reuses the published ``kid`` (bad signature)."""
        return self.mint(audience=audience, key=self.other_key, **kwargs)

    # ------------------------------------------------------------------ internals
    def _record(self, method: str, path: str) -> None:
        with self._lock:
            self.requests.append(f"{method} {path}")

    def _token_response(
        self, path: str, tenant: str, form: dict[str, str], headers: dict[str, str]
    ) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self.token_requests.append(TokenRequest(path, form, headers))
        if form.get("grant_type") != "client_credentials":
            return 400, {
                "error": "unsupported_grant_type",
                "error_description": "AADSTS70003: only client_credentials is supported by the fake",
            }
        client_id = form.get("client_id")
        if not client_id:
            return 400, {"error": "invalid_request", "error_description": "AADSTS900144: client_id missing"}
        if (
            self.expected_client_secret is not None
            and form.get("client_secret") != self.expected_client_secret
        ):
            return 401, {
                "error": "invalid_client",
                "error_description": "AADSTS7000215: Invalid client secret provided.",
            }
        scope = (form.get("scope") or DEFAULT_OAUTH_SCOPE).split(" ")[0]
        if scope.endswith("/.default"):
            scope = scope[: -len("/.default")]
        token = self.mint(
            audience=scope,
            issuer=f"https://sts.windows.net/{AAD_TENANT_BOTFRAMEWORK}/",
            extra_claims={
                "appid": client_id,
                "appidacr": "1",
                "tid": AAD_TENANT_BOTFRAMEWORK if tenant in ("adfs", "botframework.com") else tenant,
                "ver": "1.0",
                "idtyp": "app",
            },
        )
        return 200, {
            "token_type": "Bearer",
            "expires_in": 3600,
            "ext_expires_in": 3600,
            "access_token": token,
        }


def clear_sdk_openid_cache() -> None:
    """Forget every OpenID document the SDK cached (class-level, keyed by URL).

    The SDK refreshes keys once a day, and for an unknown ``kid`` at most once an
    hour, so a test that rotates keys must call this to make the bot refetch.
    """
    from botframework.connector.auth.jwt_token_extractor import JwtTokenExtractor

    JwtTokenExtractor.metadataCache.clear()


def bearer(token: str) -> str:
    """``"Bearer " + token``."""
    return f"Bearer {token}"


def claims_of(token: str) -> dict[str, Any]:
    """Unverified claims of a JWT (for assertions)."""
    decoded: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return decoded
