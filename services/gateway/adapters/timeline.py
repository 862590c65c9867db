"""The timeline service, as the gateway calls it (docs/internal-api.md).

Timeline answers every tweet with its author (`{"id", "author": {"id", "username",
"display_name"}, "text", "created_at"}`) from its own copy of users' profiles, so each read
is one call here and none to users. The caller's identity travels in `X-User-Id`, and on a
post the username the token names travels in `Murmur-Username`, so that timeline can show
the author of a new tweet before users' event about them has reached its copy.
"""

from __future__ import annotations

from urllib.parse import quote

from common.client import HttpClient

from gateway.adapters.answers import as_result
from gateway.domain.model import Principal, Result


class TimelineClient:
    """Tweets, user timelines and home timelines."""

    def __init__(self, http: HttpClient) -> None:
        self.http = http

    def post(self, author: Principal, text: str, idempotency_key: str | None) -> Result:
        """Post a tweet as `author` (the same key again answers the same tweet)."""
        # With a key, timeline answers a repeat with the tweet it already made: safe to retry.
        return as_result(self.http.call(
            "POST", "/tweets", json={"text": text},
            headers={"X-User-Id": author.user_id, "Murmur-Username": author.username or None,
                     "Idempotency-Key": idempotency_key},
            idempotent=idempotency_key is not None))

    def tweet(self, tweet_id: str) -> Result:
        """One tweet with its author."""
        return as_result(self.http.call("GET", f"/tweets/{tweet_id}"))

    def delete(self, user_id: str, tweet_id: str) -> None:
        """Delete a tweet of `user_id` (403 for someone else's)."""
        self.http.call("DELETE", f"/tweets/{tweet_id}", headers={"X-User-Id": user_id})

    def user_tweets(self, username: str, limit: int, cursor: str | None) -> Result:
        """A page of a user's tweets, newest first; timeline knows the user by name from
        its copy of users' profiles (404 for a name it does not know)."""
        return as_result(self.http.call(
            "GET", f"/authors/by-username/{quote(username, safe='')}/tweets",
            params={"limit": limit, "cursor": cursor}))

    def home(self, user_id: str, limit: int, cursor: str | None) -> Result:
        """A page of the user's home timeline, newest first."""
        return as_result(self.http.call("GET", "/timeline", headers={"X-User-Id": user_id},
                                        params={"limit": limit, "cursor": cursor}))

    def close(self) -> None:
        """Close the pooled connections."""
        self.http.close()
