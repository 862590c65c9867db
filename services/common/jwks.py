"""Token-signing keys: Ed25519 keys as JSON Web Keys (RFC 7517, RFC 8037) named by their
RFC 7638 thumbprints, and key files that a process reads again when they change.

users signs access tokens with the current private key and names it in the token's `kid`
header; the gateway verifies with the public key of that `kid` from a JWK Set that holds
the current key and the ones before it (rotation: a new key is published to the verifiers
first, signs only afterwards, and the old one stays until the tokens it signed expired).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Generic, Iterable, TypeVar

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

log = logging.getLogger(__name__)

ALGORITHM = "EdDSA"
# Who signs the tokens and whom they are for, unless MURMUR_JWT_ISSUER/_AUDIENCE say else.
ISSUER = "murmur-users"
AUDIENCE = "murmur-api"

T = TypeVar("T")


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _raw(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def thumbprint(public: Ed25519PublicKey) -> str:
    """The key's RFC 7638 thumbprint (SHA-256, base64url): the `kid` that names it."""
    # The required members of an OKP key (RFC 8037 §2), sorted, without whitespace.
    canonical = json.dumps({"crv": "Ed25519", "kty": "OKP", "x": _b64url(_raw(public))},
                           separators=(",", ":"), sort_keys=True)
    return _b64url(hashlib.sha256(canonical.encode()).digest())


def public_jwk(public: Ed25519PublicKey) -> dict[str, str]:
    """The public key as a JWK for verifying signatures: kty, crv, x, kid, use, alg."""
    return {"kty": "OKP", "crv": "Ed25519", "x": _b64url(_raw(public)),
            "kid": thumbprint(public), "use": "sig", "alg": ALGORITHM}


def key_set(publics: Iterable[Ed25519PublicKey]) -> dict[str, list[dict[str, str]]]:
    """A JWK Set of these public keys, in this order (each key once)."""
    jwks = {jwk["kid"]: jwk for jwk in map(public_jwk, publics)}
    return {"keys": list(jwks.values())}


def public_key(jwk: Any) -> Ed25519PublicKey:
    """The Ed25519 signing key a JWK describes; ValueError if it is anything else, or if its
    `kid` is not its thumbprint (a key set that names a key wrongly is a broken one)."""
    if not isinstance(jwk, dict):
        raise ValueError("a key is not a JSON object")
    if (jwk.get("kty"), jwk.get("crv")) != ("OKP", "Ed25519"):
        raise ValueError(f"key {jwk.get('kid')!r} is not an Ed25519 key (kty OKP, crv Ed25519)")
    if jwk.get("use", "sig") != "sig" or jwk.get("alg", ALGORITHM) != ALGORITHM:
        raise ValueError(f"key {jwk.get('kid')!r} is not for {ALGORITHM} signatures")
    x = jwk.get("x")
    try:
        key = Ed25519PublicKey.from_public_bytes(_unb64url(x) if isinstance(x, str) else b"")
    except (ValueError, binascii.Error):
        raise ValueError(f"key {jwk.get('kid')!r} has no valid x") from None
    if jwk.get("kid") != thumbprint(key):
        raise ValueError(f"key {jwk.get('kid')!r} is not named by its thumbprint "
                         f"{thumbprint(key)!r}")
    return key


def read_key_set(text: str) -> dict[str, Ed25519PublicKey]:
    """The keys of a JWK Set document by kid, in its order; ValueError if it holds no key or
    anything but Ed25519 signing keys."""
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"the key set is not JSON: {exc}") from None
    keys = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(keys, list) or not keys:
        raise ValueError('the key set has no "keys"')
    found: dict[str, Ed25519PublicKey] = {}
    for jwk in keys:
        key = public_key(jwk)
        found[thumbprint(key)] = key
    return found


@dataclass(frozen=True)
class SigningKey:
    """A private key with the `kid` of its public half."""

    key: Ed25519PrivateKey
    kid: str


def signing_key(pem: str | bytes) -> SigningKey:
    """The Ed25519 private key of a PEM text; ValueError if it holds anything else."""
    try:
        key = serialization.load_pem_private_key(
            pem.encode() if isinstance(pem, str) else pem, password=None)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"not a PEM private key: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError("not an Ed25519 private key")
    return SigningKey(key, thumbprint(key.public_key()))


def private_pem(key: Ed25519PrivateKey) -> bytes:
    """The private key as unencrypted PKCS#8 PEM."""
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


class WatchedFile(Generic[T]):
    """The content of a file as `parse` reads it, read when first asked for and again after
    the file changed, so that a rotated key is used without a restart.

    Whether it changed (a stat: modification time, size, inode) is looked at no more than
    every `interval` seconds, or at once when the caller asks for a `fresh` look (a token
    naming a key not known yet). A file that changed but cannot be read or parsed is
    logged, and what it held before is kept: a botched edit must not stop a running
    process from signing or verifying. Only the very first read raises.
    """

    def __init__(self, path: Path, parse: Callable[[str], T], interval: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.path, self._parse, self.interval, self._clock = path, parse, interval, clock
        self._lock = threading.Lock()
        self._value: T | None = None
        self._stamp: tuple[int, int, int] | None = None
        # The state of the file last found unreadable: logged once, not at every look.
        self._unreadable: object = None
        self._next_look = 0.0

    def _stat(self) -> tuple[int, int, int]:
        st = os.stat(self.path)
        return st.st_mtime_ns, st.st_size, st.st_ino

    def get(self, fresh: bool = False) -> T:
        """The parsed content, read again first if the file changed since."""
        if self._stamp is not None and not fresh and self._clock() < self._next_look:
            return self._value  # type: ignore[return-value]
        with self._lock:
            self._next_look = self._clock() + self.interval
            stamp: object = "missing"
            try:
                stamp = self._stat()
                if stamp in (self._stamp, self._unreadable):
                    return self._value  # type: ignore[return-value]
                value = self._parse(self.path.read_text())
            except (OSError, ValueError) as exc:
                if self._stamp is None:
                    raise
                if stamp != self._unreadable:
                    log.error("%s changed but cannot be read (%s); keeping what it held "
                              "before", self.path, exc)
                self._unreadable = stamp
                return self._value  # type: ignore[return-value]
            first = self._stamp is None
            self._value, self._stamp = value, stamp  # type: ignore[assignment]
            self._unreadable = None
            if not first:
                log.info("%s changed: read it again", self.path)
            return value


class Fixed(Generic[T]):
    """A value that never changes, in the shape of a `WatchedFile` (a key from a variable)."""

    def __init__(self, value: T) -> None:
        self.value = value

    def get(self, fresh: bool = False) -> T:
        """The value."""
        return self.value
