"""The timeline service, as the gateway calls it (docs/internal-api.md)."""

from __future__ import annotations

from gateway.downstream import Downstream, Reply


class TimelineClient:
    """Tweets, authors' timelines and home timelines."""

    def __init__(self, downstream: Downstream) -> None:
        self.http = downstream

    def post(self, user_id: str, text: str, idempotency_key: str | None) -> Reply:
        """Post a tweet as `user_id` (the same key again answers the same tweet)."""
        # With a key, timeline answers a repeat with the tweet it already made: safe to retry.
        return self.http.call("POST", "/tweets", user_id=user_id, json={"text": text},
                              headers={"Idempotency-Key": idempotency_key},
                              idempotent=idempotency_key is not None)

    def get(self, tweet_id: str) -> Reply:
        """One tweet."""
        return self.http.call("GET", f"/tweets/{tweet_id}")

    def delete(self, user_id: str, tweet_id: str) -> None:
        """Delete a tweet of `user_id` (403 for someone else's)."""
        self.http.call("DELETE", f"/tweets/{tweet_id}", user_id=user_id)

    def by_author(self, author_id: str, limit: int, cursor: str | None) -> Reply:
        """A page of one author's tweets, newest first."""
        return self.http.call("GET", f"/authors/{author_id}/tweets",
                              params={"limit": limit, "cursor": cursor})

    def home(self, user_id: str, limit: int, cursor: str | None) -> Reply:
        """A page of the user's home timeline, newest first."""
        return self.http.call("GET", "/timeline", user_id=user_id,
                              params={"limit": limit, "cursor": cursor})
