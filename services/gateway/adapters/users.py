"""The users service, as the gateway calls it (docs/internal-api.md)."""

from __future__ import annotations

from typing import Any, Iterable
from urllib.parse import quote

from gateway.downstream import Downstream, Reply

BATCH_MAX = 500  # users' limit on one batch call


def _seg(value: str) -> str:
    return quote(value, safe="")


class UsersClient:
    """Accounts, sessions, profiles and the follow graph."""

    def __init__(self, downstream: Downstream) -> None:
        self.http = downstream

    def register(self, body: dict[str, Any]) -> Reply:
        """Create an account (201 user)."""
        return self.http.call("POST", "/users", json=body)

    def open_session(self, body: dict[str, Any]) -> Reply:
        """Exchange credentials for an access token."""
        return self.http.call("POST", "/sessions", json=body)

    def by_username(self, username: str) -> Reply:
        """One user with its ETag."""
        return self.http.call("GET", f"/users/{_seg(username)}")

    def update(self, user_id: str, changes: dict[str, Any], if_match: str | None) -> Reply:
        """Change a profile under optimistic locking (If-Match)."""
        return self.http.call("PATCH", f"/users/{_seg(user_id)}", user_id=user_id, json=changes,
                              headers={"If-Match": if_match})

    def follow(self, user_id: str, username: str) -> None:
        """Follow `username` (idempotent)."""
        self.http.call("PUT", f"/users/{_seg(user_id)}/following/{_seg(username)}",
                       user_id=user_id)

    def unfollow(self, user_id: str, username: str) -> None:
        """Stop following `username` (idempotent)."""
        self.http.call("DELETE", f"/users/{_seg(user_id)}/following/{_seg(username)}",
                       user_id=user_id)

    def relations(self, username: str, which: str, limit: int, cursor: str | None) -> Reply:
        """A page of `which` ('followers' or 'following') of a user."""
        return self.http.call("GET", f"/users/{_seg(username)}/{which}",
                              params={"limit": limit, "cursor": cursor})

    def authors(self, ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """`{id: {id, username, display_name}}` for the known ones of `ids`."""
        unique = list(dict.fromkeys(ids))
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(unique), BATCH_MAX):
            # A read that POSTs only to carry its list of ids: safe to retry.
            reply = self.http.call("POST", "/internal/users/batch",
                                   json={"ids": unique[start:start + BATCH_MAX]}, idempotent=True)
            found.update((reply.body or {}).get("users") or {})
        return found
