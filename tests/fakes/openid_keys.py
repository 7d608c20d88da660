"""Signing keys published by the fake OpenID metadata (``tests.fakes.openid``)."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterable
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

DEFAULT_ENDORSEMENTS: tuple[str, ...] = (
    "msteams",
    "emulator",
    "webchat",
    "directline",
    "skype",
    "slack",
)

__all__ = ["DEFAULT_ENDORSEMENTS", "SigningKey"]


def _b64url_uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8 or 1, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


class SigningKey:
    """An RSA key pair with a ``kid`` and the endorsements published with it."""

    def __init__(self, kid: str | None = None, endorsements: Iterable[str] = DEFAULT_ENDORSEMENTS) -> None:
        self.kid = kid or uuid.uuid4().hex
        self.private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.endorsements = list(endorsements)

    @property
    def private_pem(self) -> bytes:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def jwk(self) -> dict[str, Any]:
        numbers = self.private_key.public_key().public_numbers()
        return {
            "kty": "RSA",
            "use": "sig",
            "kid": self.kid,
            "x5t": self.kid,
            "n": _b64url_uint(numbers.n),
            "e": _b64url_uint(numbers.e),
            "endorsements": list(self.endorsements),
        }
