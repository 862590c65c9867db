"""What the gateway's use cases need from the outside world.

Each peer method is one call to one service; it returns the answer as a `Result` or
raises the peer's error (adapters/ raise common.client's errors; entrypoints/errors.py
turns them into answers).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from gateway.domain.model import Principal, Result
from gateway.domain.status import Reading


class Users(Protocol):
    """Accounts, sessions, profiles and the follow graph (the users service)."""

    def register(self, fields: dict[str, Any], idempotency_key: str | None,
                 client: str | None) -> Result: ...

    def open_session(self, credentials: dict[str, Any], client: str | None) -> Result: ...

    def profile(self, username: str) -> Result: ...

    def update_profile(self, user_id: str, changes: dict[str, Any],
                       version: str | None) -> Result: ...

    def follow(self, user_id: str, username: str) -> None: ...

    def unfollow(self, user_id: str, username: str) -> None: ...

    def relations(self, username: str, which: str, limit: int, cursor: str | None) -> Result: ...


class Timeline(Protocol):
    """Tweets with their authors, user timelines and home timelines (the timeline service)."""

    def post(self, author: Principal, text: str, idempotency_key: str | None) -> Result: ...

    def tweet(self, tweet_id: str) -> Result: ...

    def delete(self, user_id: str, tweet_id: str) -> None: ...

    def user_tweets(self, username: str, limit: int, cursor: str | None) -> Result: ...

    def home(self, user_id: str, limit: int, cursor: str | None) -> Result: ...


class Tokens(Protocol):
    """Verifies access tokens (issued by users)."""

    def verify(self, token: str) -> Principal:
        """The principal a valid token names; raises Unauthenticated otherwise."""

    def key_set(self) -> dict[str, Any]:
        """The public keys tokens are verified with, as a JWK Set (RFC 7517)."""


class StatusSources(Protocol):
    """What every process of the system shows about itself now (readiness and metrics).

    Read apart from the calls the API makes: a source that is slow or down costs the
    status summary a short timeout, never a breaker or a connection user traffic needs.
    """

    def read(self) -> dict[str, Reading]:
        """One reading per process, by process name (`gateway` for this one)."""


@dataclass(frozen=True)
class Ports:
    """The outside world as the gateway's use cases see it."""

    users: Users
    timeline: Timeline
    tokens: Tokens
    status: StatusSources | None = None
