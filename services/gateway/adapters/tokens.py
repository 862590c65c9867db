"""Access-token verification: the EdDSA JWTs that users issues, checked with the public key
their `kid` names, from users' JWK Set (the current key and those before it)."""

from __future__ import annotations

from typing import Protocol

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from common import jwks
from gateway.domain.errors import Unauthenticated
from gateway.domain.model import Principal

ALGORITHMS = [jwks.ALGORITHM]
REQUIRED_CLAIMS = ["iss", "aud", "sub", "exp", "iat"]


class KeySource(Protocol):
    """Where the accepted public keys come from (`common.jwks.WatchedFile` or `Fixed`)."""

    def get(self, fresh: bool = False) -> dict[str, Ed25519PublicKey]: ...


class TokenVerifier:
    """Checks a token's signature with the key its `kid` names, its expiry, issuer and
    audience.

    `keys` is a JWK Set (JSON text, parsed at once) or a `common.jwks.WatchedFile` of one,
    read when first needed (the file may be generated after this process starts) and
    followed as rotation changes it. A `kid` not among the keys makes it look at its file
    at once before the token is refused, so a key published a moment ago verifies.
    """

    def __init__(self, keys: str | KeySource, *, issuer: str = jwks.ISSUER,
                 audience: str = jwks.AUDIENCE, leeway: float = 5.0) -> None:
        self._keys = jwks.Fixed(jwks.read_key_set(keys)) if isinstance(keys, str) else keys
        self.issuer, self.audience, self.leeway = issuer, audience, leeway

    def key_set(self) -> dict[str, list[dict[str, str]]]:
        """The accepted public keys as a JWK Set (raises if they cannot be read)."""
        return jwks.key_set(self._keys.get().values())

    def _key(self, token: str) -> Ed25519PublicKey:
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.InvalidTokenError:
            raise Unauthenticated("The access token is invalid.") from None
        if not isinstance(kid, str):
            raise Unauthenticated("The access token names no signing key.")
        key = self._keys.get().get(kid) or self._keys.get(fresh=True).get(kid)
        if key is None:
            raise Unauthenticated("The access token was signed by an unknown key.")
        return key

    def verify(self, token: str) -> Principal:
        """The principal a valid token names; Unauthenticated otherwise."""
        key = self._key(token)
        try:
            claims = jwt.decode(token, key, algorithms=ALGORITHMS, issuer=self.issuer,
                                audience=self.audience, leeway=self.leeway,
                                options={"require": REQUIRED_CLAIMS})
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("The access token has expired.") from None
        except jwt.InvalidIssuerError:
            raise Unauthenticated("The access token comes from an unknown issuer.") from None
        except jwt.InvalidAudienceError:
            raise Unauthenticated("The access token is not meant for this API.") from None
        except jwt.InvalidTokenError:
            raise Unauthenticated("The access token is invalid.") from None
        subject = claims["sub"]
        if not isinstance(subject, str) or not subject.isdigit():
            raise Unauthenticated("The access token names no user.")
        username = claims.get("username")
        return Principal(user_id=subject, username=username if isinstance(username, str) else "")
