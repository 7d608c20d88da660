"""HTTP side of the fake OpenID/AAD (``tests.fakes.openid``).

The self-signed TLS material for the AAD-like HTTPS server, the request handler
both servers share (it answers from its ``owner``, a ``FakeOpenId``), the server
classes, and ``TokenRequest``, the record of one token-endpoint request.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

if TYPE_CHECKING:
    from tests.fakes.openid import FakeOpenId

__all__ = ["OpenIdHandler", "PlainServer", "TlsServer", "TokenRequest", "make_tls_material"]


class TokenRequest:
    """One request received by the fake AAD token endpoint."""

    def __init__(self, path: str, form: dict[str, str], headers: dict[str, str]) -> None:
        self.path = path
        self.form = form
        self.headers = headers

    @property
    def client_id(self) -> str | None:
        return self.form.get("client_id")

    @property
    def scope(self) -> str | None:
        return self.form.get("scope")

    def __repr__(self) -> str:
        return f"TokenRequest(path={self.path!r}, form={self.form!r})"


def make_tls_material(directory: str) -> tuple[str, str, str]:
    """Self-signed cert for 127.0.0.1/localhost; returns (cert, key, ca_bundle) paths."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "opsroom-fake-aad")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    cert_path = os.path.join(directory, "cert.pem")
    key_path = os.path.join(directory, "key.pem")
    bundle_path = os.path.join(directory, "ca-bundle.pem")
    with open(cert_path, "wb") as fh:
        fh.write(cert_pem)
    with open(key_path, "wb") as fh:
        fh.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    roots = b""
    try:
        import certifi

        with open(certifi.where(), "rb") as fh:
            roots = fh.read()
    except (ImportError, OSError):  # pragma: no cover - certifi ships with requests
        pass
    with open(bundle_path, "wb") as fh:
        fh.write(roots + b"\n" + cert_pem)
    return cert_path, key_path, bundle_path


class OpenIdHandler(BaseHTTPRequestHandler):
    server_version = "FakeOpenId/1.0"
    protocol_version = "HTTP/1.1"
    owner: FakeOpenId

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _send_json(self, status: int, body: Any, headers: Mapping[str, str] | None = None) -> None:
        data = json.dumps(body).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def _base(self) -> str:
        return self.owner.https_url if isinstance(self.server, TlsServer) else self.owner.url

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        self.owner._record("GET", path)
        if path == "/.well-known/openid-configuration":
            self._send_json(200, self.owner.channel_metadata())
        elif path == "/keys":
            self._send_json(200, self.owner.jwks())
        elif path.endswith("/.well-known/openid-configuration"):
            prefix = path[: -len("/.well-known/openid-configuration")]
            if prefix.endswith("/v2.0"):
                prefix = prefix[: -len("/v2.0")]
            self._send_json(200, self.owner.tenant_metadata(self._base(), prefix.strip("/")))
        elif path.endswith("/discovery/instance"):
            # Never reached by MSAL for our host (it asks login.microsoftonline.com),
            # served for completeness.
            self._send_json(
                200,
                {
                    "tenant_discovery_endpoint": self._base()
                    + "/common/v2.0/.well-known/openid-configuration",
                    "api-version": "1.1",
                    "metadata": [],
                },
            )
        else:
            self._send_json(404, {"error": "not_found", "error_description": path})

    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        self.owner._record("POST", path)
        if not (path.endswith("/oauth2/v2.0/token") or path.endswith("/oauth2/token")):
            self._send_json(404, {"error": "not_found", "error_description": path})
            return
        form = {k: v[0] for k, v in parse_qs(raw.decode("utf-8"), keep_blank_values=True).items()}
        tenant = path.strip("/").split("/", 1)[0]
        status, body = self.owner._token_response(path, tenant, form, dict(self.headers.items()))
        self._send_json(status, body, {"Cache-Control": "no-store"})


class TlsServer(ThreadingHTTPServer):
    daemon_threads = True


class PlainServer(ThreadingHTTPServer):
    daemon_threads = True
