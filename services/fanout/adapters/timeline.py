"""An author's tweet ids from the timeline service (`GET /internal/authors/{id}/tweet-ids`)."""

from __future__ import annotations

from common.client import HttpClient

from fanout.adapters.http import get_object, translated

MAX_LIMIT = 800  # the endpoint's upper bound


class TimelineTweetIds:
    """Recent tweet ids of an author, newest first."""

    def __init__(self, http: HttpClient) -> None:
        self.http = http

    def recent_tweet_ids(self, author_id: int, limit: int) -> list[int]:
        """Up to `limit` (at most 800) ids of the author's tweets."""
        path = f"/internal/authors/{author_id}/tweet-ids"
        body = get_object(self.http, path, {"limit": max(1, min(limit, MAX_LIMIT))})
        with translated(f"GET timeline {path}"):
            return [int(i) for i in body["ids"]]

    def close(self) -> None:
        """Close the HTTP connections."""
        self.http.close()
