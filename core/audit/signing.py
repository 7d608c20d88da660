"""Ed25519 signatures over the chain head: who holds the public key can tell an event the bot did not write.

The private key lives outside the database (a PEM file the app is given); the
app attaches a Signer to its engine at start, and from then on every transaction
that appends stores a signature over its last event (seq and hash) before it
commits (a group-commit batch: one signature for the whole batch).
A hash chain alone can be extended or re-hashed by anyone who can write to the
table and read this code; a signature cannot be made without the key.

A signature vouches for its event and, through the chain, for the events
before it back to its `from_seq` (0: all of them): before extending a head it
did not sign itself, the bot checks that head's signature, and when it is not
valid (events appended without the key) it vouches only for its own events. So
verify needs to check only the newest signatures (see core.audit.signatures).
"""

from __future__ import annotations

import hashlib
import logging
import os
import weakref
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy.engine import Engine
from sqlmodel import Session

log = logging.getLogger(__name__)


def message(seq: int, head_hash: str, from_seq: int) -> bytes:
    """The bytes signed for a chain head: the bot vouches for the chain's events from_seq..seq (0: all)."""
    return f"opsroom audit head {seq} {head_hash} from {from_seq}".encode()


def key_id(public: Ed25519PublicKey) -> str:
    """A short, stable name for a public key: the start of the SHA-256 of its raw bytes."""
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def public_pem(public: Ed25519PublicKey) -> str:
    """A public key as PEM text (SubjectPublicKeyInfo), safe to publish."""
    data = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return data.decode("ascii")


class Signer:
    """Signs chain heads with one private key."""

    def __init__(self, private: Ed25519PrivateKey) -> None:
        self._private = private
        self.public = private.public_key()
        self.key_id = key_id(self.public)
        self.last: tuple[int, str, int] | None = None
        """The head this signer signed last (seq, hash, from_seq): extending it needs no look at the store."""

    def __repr__(self) -> str:
        return f"Signer(key_id={self.key_id!r})"

    @classmethod
    def generate(cls) -> Signer:
        """A new random key (tests; the first local start)."""
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_pem(cls, data: bytes) -> Signer:
        """A key from PEM bytes (PKCS#8, unencrypted); ValueError when it is not an Ed25519 private key."""
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"not an unencrypted PEM private key ({exc})") from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"not an Ed25519 key ({type(key).__name__})")
        return cls(key)

    @classmethod
    def load(cls, path: Path) -> Signer:
        """A key from a PEM file; ValueError naming the file when it is not one."""
        try:
            return cls.from_pem(path.read_bytes())
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from exc

    def private_pem(self) -> bytes:
        """The private key as PEM (PKCS#8); only for writing the key file."""
        return self._private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    def public_pem(self) -> str:
        """The public key as PEM text."""
        return public_pem(self.public)

    def keyring(self) -> Keyring:
        """The keyring that verifies this signer's signatures."""
        return Keyring([self.public])

    def sign(self, seq: int, head_hash: str, from_seq: int = 0) -> str:
        """The signature of a chain head, as hex; it vouches for events from_seq..seq (0: every event)."""
        signature = self._private.sign(message(seq, head_hash, from_seq)).hex()
        self.last = (seq, head_hash, from_seq)
        return signature


class Keyring(Mapping[str, Ed25519PublicKey]):
    """Public keys by key id: the current one and any retired ones whose signatures are still stored."""

    def __init__(self, keys: Iterable[Ed25519PublicKey]) -> None:
        self._keys = {key_id(k): k for k in keys}

    def __getitem__(self, kid: str) -> Ed25519PublicKey:
        return self._keys[kid]

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def __repr__(self) -> str:
        return f"Keyring({sorted(self._keys)!r})"

    @classmethod
    def from_pem(cls, data: bytes) -> Keyring:
        """Every public key in PEM text (several may be concatenated); a private key gives its public half."""
        keys: list[Ed25519PublicKey] = []
        for block in _pem_blocks(data):
            if b"PRIVATE KEY" in block.split(b"\n", 1)[0]:
                keys.append(Signer.from_pem(block).public)
                continue
            try:
                key = serialization.load_pem_public_key(block)
            except ValueError as exc:
                raise ValueError(f"not a PEM public key ({exc})") from exc
            if not isinstance(key, Ed25519PublicKey):
                raise ValueError(f"not an Ed25519 key ({type(key).__name__})")
            keys.append(key)
        if not keys:
            raise ValueError("no PEM key in it")
        return cls(keys)

    @classmethod
    def load(cls, path: Path) -> Keyring:
        """The public keys in a PEM file; ValueError naming the file when there are none."""
        try:
            return cls.from_pem(path.read_bytes())
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from exc

    def pem(self) -> bytes:
        """Every key as PEM, concatenated (how a keyring travels to a worker process)."""
        return "".join(public_pem(k) for k in self._keys.values()).encode("ascii")

    def verify(
        self, seq: object, head_hash: object, signature: object, kid: object, from_seq: object
    ) -> bool:
        """Whether a stored signature row is a valid signature of (seq, hash, from_seq) by one of these keys.

        Takes whatever the row holds: a value of the wrong type is simply not valid.
        """
        cells = (isinstance(seq, int) and isinstance(head_hash, str) and isinstance(signature, str)
                 and isinstance(from_seq, int) and not isinstance(from_seq, bool))  # fmt: skip
        key = self._keys.get(kid) if isinstance(kid, str) else None
        if not cells or key is None:
            return False
        assert isinstance(seq, int) and isinstance(head_hash, str) and isinstance(signature, str)
        assert isinstance(from_seq, int)
        try:
            key.verify(bytes.fromhex(signature), message(seq, head_hash, from_seq))
        except (InvalidSignature, ValueError):
            return False
        return True


def _pem_blocks(data: bytes) -> list[bytes]:
    blocks: list[bytes] = []
    current: list[bytes] = []
    for line in data.splitlines(keepends=True):
        if line.startswith(b"-----BEGIN "):
            current = [line]
        elif current:
            current.append(line)
            if line.startswith(b"-----END "):
                blocks.append(b"".join(current))
                current = []
    return blocks


@dataclass(frozen=True)
class KeyFile:
    """A signing key read from (or just written to) its file."""

    signer: Signer
    path: Path
    created: bool


def load_or_create(path: Path, *, create: bool) -> KeyFile:
    """The signing key in path; with create, a new one is written there (mode 0600) when there is none.

    Raises FileNotFoundError without create when the file is missing, ValueError when it is not a key.
    """
    if path.exists() or not create:
        return KeyFile(Signer.load(path), path, created=False)
    signer = Signer.generate()
    path.parent.mkdir(parents=True, exist_ok=True)
    # O_EXCL: two processes starting at once never overwrite each other's new key.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return KeyFile(Signer.load(path), path, created=False)
    with os.fdopen(fd, "wb") as handle:
        handle.write(signer.private_pem())
        handle.flush()
        os.fsync(handle.fileno())
    return KeyFile(signer, path, created=True)


# The signer of each engine. Keyed by engine rather than process-wide so that two
# databases in one process (tests, tools) can each have their own key, or none.
_SIGNERS: weakref.WeakKeyDictionary[Engine, Signer] = weakref.WeakKeyDictionary()


def attach(engine: Engine, signer: Signer | None) -> None:
    """Sign every append made through this engine with signer (None: stop signing)."""
    if signer is None:
        _SIGNERS.pop(engine, None)
    else:
        _SIGNERS[engine] = signer


def attached(engine: Engine) -> Signer | None:
    """The signer attached to an engine, if any."""
    return _SIGNERS.get(engine)


def signer_for(session: Session) -> Signer | None:
    """The signer for appends made in this session (the one attached to its engine)."""
    bind = session.get_bind()
    engine = bind if isinstance(bind, Engine) else getattr(bind, "engine", None)
    return _SIGNERS.get(engine) if isinstance(engine, Engine) else None
