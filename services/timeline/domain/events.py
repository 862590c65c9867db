"""What the timeline announces on tweets.v1 (payloads as in docs/internal-api.md).

Handlers make these; the outbox adapter wraps them in the shared envelope
(`common.events.Event`), keyed by author, in the same batch as the change they report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from common import events
from timeline.domain.model import iso


@dataclass(frozen=True)
class TweetPosted:
    """A tweet was accepted and stored."""

    event_id: int
    tweet_id: int
    author_id: int
    created_at: datetime
    type: str = field(default=events.TWEET_POSTED, init=False)

    def payload(self) -> dict[str, str]:
        """The event payload: ids as strings, created_at ISO-8601 UTC."""
        return {"tweet_id": str(self.tweet_id), "author_id": str(self.author_id),
                "created_at": iso(self.created_at)}


@dataclass(frozen=True)
class TweetDeleted:
    """A tweet was removed by its author."""

    event_id: int
    tweet_id: int
    author_id: int
    type: str = field(default=events.TWEET_DELETED, init=False)

    def payload(self) -> dict[str, str]:
        """The event payload: ids as strings."""
        return {"tweet_id": str(self.tweet_id), "author_id": str(self.author_id)}


TweetEvent = TweetPosted | TweetDeleted
