"""The users service, as the gateway calls it (docs/internal-api.md).

The caller's identity travels in `X-User-Id`; every call goes through a
`common.client.HttpClient` (deadline, breaker, retries of idempotent calls only). Sign-up
and sign-in go through a client of their own: they are slow on purpose (argon2) and what
a password flood hits, and neither may exhaust or trip what every other call uses.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from common.client import HttpClient

from gateway.adapters.answers import as_result
from gateway.domain.model import Result


def _seg(value: str) -> str:
    return quote(value, safe="")


class UsersClient:
    """Accounts, sessions, profiles and the follow graph."""

    def __init__(self, http: HttpClient, sign_in: HttpClient | None = None) -> None:
        self.http = http
        self.sign_in = sign_in if sign_in is not None else http

    def register(self, fields: dict[str, Any], idempotency_key: str | None,
                 client: str | None) -> Result:
        """Create an account (201 user). Retried only with an Idempotency-Key: a repeat
        without one could be a second sign-up; with one it is answered with the first."""
        return as_result(self.sign_in.call(
            "POST", "/users", json=fields, idempotent=idempotency_key is not None,
            headers={"Idempotency-Key": idempotency_key, "Murmur-Client": client}))

    def open_session(self, credentials: dict[str, Any], client: str | None) -> Result:
        """Exchange credentials for an access token (the client's address is throttled)."""
        return as_result(self.sign_in.call("POST", "/sessions", json=credentials,
                                           headers={"Murmur-Client": client}))

    def profile(self, username: str) -> Result:
        """One user with its version (ETag)."""
        return as_result(self.http.call("GET", f"/users/{_seg(username)}"))

    def update_profile(self, user_id: str, changes: dict[str, Any],
                       version: str | None) -> Result:
        """Change a profile under optimistic locking (If-Match)."""
        return as_result(self.http.call("PATCH", f"/users/{_seg(user_id)}", json=changes,
                                        headers={"X-User-Id": user_id, "If-Match": version}))

    def follow(self, user_id: str, username: str) -> None:
        """Follow `username` (idempotent)."""
        self.http.call("PUT", f"/users/{_seg(user_id)}/following/{_seg(username)}",
                       headers={"X-User-Id": user_id})

    def unfollow(self, user_id: str, username: str) -> None:
        """Stop following `username` (idempotent)."""
        self.http.call("DELETE", f"/users/{_seg(user_id)}/following/{_seg(username)}",
                       headers={"X-User-Id": user_id})

    def relations(self, username: str, which: str, limit: int, cursor: str | None) -> Result:
        """A page of `which` ('followers' or 'following') of a user."""
        return as_result(self.http.call("GET", f"/users/{_seg(username)}/{which}",
                                        params={"limit": limit, "cursor": cursor}))

    def close(self) -> None:
        """Close the pooled connections."""
        self.http.close()
        if self.sign_in is not self.http:
            self.sign_in.close()
