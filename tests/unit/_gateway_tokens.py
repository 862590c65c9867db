"""Signed access tokens and sample bodies for the gateway's unit tests."""

from __future__ import annotations

import json
import time

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from common import jwks

UNSET = object()


def key_pair() -> tuple[Ed25519PrivateKey, str]:
    """A fresh Ed25519 key and a JWK Set of its public key (what the gateway is configured
    with)."""
    private = Ed25519PrivateKey.generate()
    return private, json.dumps(jwks.key_set([private.public_key()]))


PRIVATE, PUBLIC = key_pair()
USER = {"id": "5", "username": "ada", "display_name": "Ada", "bio": "", "followers_count": 0,
        "following_count": 0, "created_at": "2026-01-01T00:00:00Z"}
AUTHOR = {"id": "5", "username": "ada", "display_name": "Ada"}
# A tweet as timeline answers it: with its author, from timeline's own copy of profiles.
TWEET = {"id": "99", "author": AUTHOR, "text": "hello", "created_at": "2026-01-01T00:00:00Z"}


def token(private: Ed25519PrivateKey = PRIVATE, kid: object = UNSET, **claims: object) -> str:
    """An access token for user 5 ("ada") as users signs it, naming its key in `kid`;
    `claims` (and `kid`) override, and a None one is left out."""
    now = int(time.time())
    body = {"iss": jwks.ISSUER, "aud": jwks.AUDIENCE, "sub": "5", "username": "ada",
            "iat": now, "exp": now + 300, **claims}
    kid = jwks.thumbprint(private.public_key()) if kid is UNSET else kid
    return jwt.encode({k: v for k, v in body.items() if v is not None}, private,
                      algorithm="EdDSA", headers={"kid": kid} if kid is not None else None)


def bearer(sub: str = "5", username: str = "ada") -> dict[str, str]:
    """The Authorization header of a request by user `sub`."""
    return {"Authorization": f"Bearer {token(sub=sub, username=username)}"}
