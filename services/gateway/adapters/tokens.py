"""Access-token verification: the EdDSA JWTs that users issues, checked with its public key."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Callable

import jwt

from gateway.domain.errors import Unauthenticated
from gateway.domain.model import Principal

ALGORITHMS = ["EdDSA"]


class TokenVerifier:
    """Checks signature, expiry and claims of a token with users' public key."""

    def __init__(self, public_key: str | Callable[[], str], leeway: float = 5.0) -> None:
        # The key may be generated after this process starts: read it when first needed.
        self._load = public_key if callable(public_key) else (lambda: public_key)
        self._key: str | None = None
        self._key_object: Any = None
        self._lock = threading.Lock()
        self.leeway = leeway

    @classmethod
    def from_file(cls, path: Path, leeway: float = 5.0) -> "TokenVerifier":
        """A verifier whose PEM public key is read from `path`."""
        return cls(lambda: path.read_text(), leeway=leeway)

    def public_key(self) -> str:
        """The PEM public key (read once; raises if it cannot be read)."""
        if self._key is None:
            with self._lock:
                if self._key is None:
                    self._key = self._load()
        return self._key

    def _verifying_key(self) -> Any:
        # Parsed once: PyJWT would otherwise parse the PEM text on every request.
        if self._key_object is None:
            from cryptography.hazmat.primitives.serialization import load_pem_public_key

            self._key_object = load_pem_public_key(self.public_key().encode())
        return self._key_object

    def verify(self, token: str) -> Principal:
        """The principal a valid token names; Unauthenticated otherwise."""
        try:
            claims = jwt.decode(token, self._verifying_key(), algorithms=ALGORITHMS,
                                leeway=self.leeway,
                                options={"require": ["sub", "exp", "iat"]})
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("The access token has expired.") from None
        except jwt.InvalidTokenError:
            raise Unauthenticated("The access token is invalid.") from None
        subject = claims["sub"]
        if not isinstance(subject, str) or not subject.isdigit():
            raise Unauthenticated("The access token names no user.")
        username = claims.get("username")
        return Principal(user_id=subject, username=username if isinstance(username, str) else "")
