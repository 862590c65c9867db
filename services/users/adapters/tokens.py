"""Session tokens (EdDSA JWTs) and password hashing (argon2id)."""

from __future__ import annotations

import time
from typing import Callable

import argon2
import jwt
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from users.domain.model import Session


class JwtIssuer:
    """Signs access tokens with the Ed25519 private key; the gateway holds the public one."""

    def __init__(self, private_key_pem: str, expires_in: int,
                 clock: Callable[[], float] = time.time) -> None:
        if not private_key_pem:
            raise ValueError("no JWT private key: generate the secrets or set "
                             "MURMUR_JWT_PRIVATE_KEY")
        self._key = load_pem_private_key(private_key_pem.encode(), password=None)
        self.expires_in, self._clock = expires_in, clock

    def issue(self, user_id: int, username: str) -> Session:
        """A signed token for this user, valid for `expires_in` seconds."""
        now = int(self._clock())
        claims = {"sub": str(user_id), "username": username, "iat": now,
                  "exp": now + self.expires_in}
        return Session(access_token=jwt.encode(claims, self._key, algorithm="EdDSA"),
                       expires_in=self.expires_in)


class Argon2Passwords:
    """The PasswordHasher on argon2-cffi (argon2id)."""

    def __init__(self, time_cost: int = 3, memory_kib: int = 65536, parallelism: int = 4) -> None:
        self._hasher = argon2.PasswordHasher(time_cost=time_cost, memory_cost=memory_kib,
                                             parallelism=parallelism)
        # Hashed once with the live parameters, so verifying against it costs exactly what
        # verifying a real user's password costs.
        self.dummy_hash = self._hasher.hash("murmur-dummy-password")

    def hash(self, password: str) -> str:
        """A salted argon2id hash of `password`."""
        return self._hasher.hash(password)

    def verify(self, password_hash: str, password: str) -> bool:
        """Whether `password` matches `password_hash`."""
        try:
            return self._hasher.verify(password_hash, password)
        except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        """Whether the hash was made with other parameters than the live ones."""
        return self._hasher.check_needs_rehash(password_hash)
