"""Session tokens (EdDSA JWTs) and password hashing (argon2id)."""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from typing import Callable, Iterator

import argon2
import jwt
from prometheus_client import Counter

from common import jwks, resilience
from users.domain.errors import PasswordWorkBusy
from users.domain.model import Session

PASSWORD_WORK_REFUSED = Counter(
    "murmur_users_password_work_refused_total",
    "Sign-ups and sign-ins refused because every password-hashing slot was taken")


class JwtIssuer:
    """Signs access tokens with the current Ed25519 private key and names it in the `kid`
    header; the gateway holds the public keys (the current one and those before it).

    `private_key` is a PEM text, or the `get` of a `common.jwks.WatchedFile` of signing
    keys: then a rotated key file signs from the next token on, without a restart.
    """

    def __init__(self, private_key: str | Callable[[], jwks.SigningKey], expires_in: int,
                 clock: Callable[[], float] = time.time, *, issuer: str = jwks.ISSUER,
                 audience: str = jwks.AUDIENCE) -> None:
        if not private_key:
            raise ValueError("no JWT private key: generate the secrets or set "
                             "MURMUR_JWT_PRIVATE_KEY")
        if isinstance(private_key, str):
            fixed = jwks.signing_key(private_key)
            self._signing_key: Callable[[], jwks.SigningKey] = lambda: fixed
        else:
            self._signing_key = private_key
        try:  # a missing or broken key fails the start, not the first sign-in
            self._signing_key()
        except OSError as exc:
            raise ValueError(f"no JWT private key ({exc}): generate the secrets or set "
                             "MURMUR_JWT_PRIVATE_KEY") from None
        self.expires_in, self._clock = expires_in, clock
        self.issuer, self.audience = issuer, audience

    def issue(self, user_id: int, username: str) -> Session:
        """A signed token for this user, valid for `expires_in` seconds."""
        now = int(self._clock())
        claims = {"iss": self.issuer, "aud": self.audience, "sub": str(user_id),
                  "username": username, "iat": now, "exp": now + self.expires_in}
        signing = self._signing_key()
        token = jwt.encode(claims, signing.key, algorithm=jwks.ALGORITHM,
                           headers={"kid": signing.kid})
        return Session(access_token=token, expires_in=self.expires_in)


class Argon2Passwords:
    """The PasswordHasher on argon2-cffi (argon2id), behind a bulkhead.

    At most `slots` hashes run at once in a process: each takes `memory_kib` and a core
    for a while, and sign-up and sign-in floods must leave the process's other threads
    (profile reads, follows) their share. A call that finds every slot taken waits up to
    `slot_wait` seconds (never past the request's deadline), then is refused with
    PasswordWorkBusy: a deliberate 503 the client may retry, which no breaker counts.
    """

    def __init__(self, time_cost: int = 3, memory_kib: int = 65536, parallelism: int = 4,
                 *, slots: int = 2, slot_wait: float = 1.0) -> None:
        self._hasher = argon2.PasswordHasher(time_cost=time_cost, memory_cost=memory_kib,
                                             parallelism=parallelism)
        self._slots = threading.BoundedSemaphore(slots)
        self.slot_wait = slot_wait
        # Hashed once with the live parameters, so verifying against it costs exactly what
        # verifying a real user's password costs.
        self.dummy_hash = self._hasher.hash("murmur-dummy-password")

    @contextmanager
    def _slot(self) -> Iterator[None]:
        left = resilience.remaining()
        wait = self.slot_wait if left is None else max(0.0, min(self.slot_wait, left))
        if not self._slots.acquire(timeout=wait):
            PASSWORD_WORK_REFUSED.inc()
            raise PasswordWorkBusy()
        try:
            yield
        finally:
            self._slots.release()

    def hash(self, password: str) -> str:
        """A salted argon2id hash of `password`."""
        with self._slot():
            return self._hasher.hash(password)

    def verify(self, password_hash: str, password: str) -> bool:
        """Whether `password` matches `password_hash`."""
        with self._slot():
            try:
                return self._hasher.verify(password_hash, password)
            except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
                return False

    def needs_rehash(self, password_hash: str) -> bool:
        """Whether the hash was made with other parameters than the live ones."""
        return self._hasher.check_needs_rehash(password_hash)
