"""Signed access tokens and sample bodies for the gateway's unit tests."""

from __future__ import annotations

import time

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


def key_pair() -> tuple[Ed25519PrivateKey, str]:
    """A fresh Ed25519 key and its public key as PEM (what the gateway is configured with)."""
    private = Ed25519PrivateKey.generate()
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return private, public_pem


PRIVATE, PUBLIC = key_pair()
USER = {"id": "5", "username": "ada", "display_name": "Ada", "bio": "", "followers_count": 0,
        "following_count": 0, "created_at": "2026-01-01T00:00:00Z"}
AUTHOR = {"id": "5", "username": "ada", "display_name": "Ada"}
# A tweet as timeline answers it: with its author, from timeline's own copy of profiles.
TWEET = {"id": "99", "author": AUTHOR, "text": "hello", "created_at": "2026-01-01T00:00:00Z"}


def token(private: Ed25519PrivateKey = PRIVATE, **claims: object) -> str:
    """An access token for user 5 ("ada"); `claims` override, and a None claim is left out."""
    now = int(time.time())
    body = {"sub": "5", "username": "ada", "iat": now, "exp": now + 300, **claims}
    return jwt.encode({k: v for k, v in body.items() if v is not None}, private, algorithm="EdDSA")


def bearer(sub: str = "5", username: str = "ada") -> dict[str, str]:
    """The Authorization header of a request by user `sub`."""
    return {"Authorization": f"Bearer {token(sub=sub, username=username)}"}
