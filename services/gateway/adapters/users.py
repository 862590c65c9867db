"""The users service, as the gateway calls it (docs/internal-api.md).

The caller's identity travels in `X-User-Id`; every call goes through one
`common.client.HttpClient` (deadline, breaker, retries of idempotent calls only).
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

    def __init__(self, http: HttpClient) -> None:
        self.http = http

    def register(self, fields: dict[str, Any]) -> Result:
        """Create an account (201 user). Not retried: a repeat would be a second sign-up."""
        return as_result(self.http.call("POST", "/users", json=fields))

    def open_session(self, credentials: dict[str, Any]) -> Result:
        """Exchange credentials for an access token."""
        return as_result(self.http.call("POST", "/sessions", json=credentials))

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
