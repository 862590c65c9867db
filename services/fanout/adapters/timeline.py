"""An author's tweet ids from the timeline service (`GET /internal/authors/{id}/tweet-ids`)."""

from __future__ import annotations

import requests

from common import resilience
from fanout.adapters.http import get_json
from fanout.domain import Unavailable

MAX_LIMIT = 800  # the endpoint's upper bound


class TimelineTweetIds:
    """Recent tweet ids of an author, newest first."""

    def __init__(self, base_url: str, session: requests.Session, *,
                 timeout: tuple[float, float] = (1.0, 5.0),
                 breaker: resilience.Breaker | None = None) -> None:
        self.base_url, self.session, self.timeout = base_url.rstrip("/"), session, timeout
        self.breaker = breaker

    def recent_tweet_ids(self, author_id: int, limit: int) -> list[int]:
        """Up to `limit` (at most 800) ids of the author's tweets."""
        body = get_json(self.session, f"{self.base_url}/internal/authors/{author_id}/tweet-ids",
                        {"limit": max(1, min(limit, MAX_LIMIT))}, self.timeout, self.breaker)
        try:
            return [int(i) for i in body["ids"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise Unavailable(f"timeline answered unexpected tweet ids: {exc!r}") from exc

    def close(self) -> None:
        """Close the HTTP connections."""
        self.session.close()
