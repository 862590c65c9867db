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
    fan_out: bool = True  # false: posted as a celebrity, merged at read time
    type: str = field(default=events.TWEET_POSTED, init=False)

    def payload(self) -> dict[str, str | bool]:
        """The event payload: ids as strings, created_at ISO-8601 UTC, the fan-out decision."""
        return {"tweet_id": str(self.tweet_id), "author_id": str(self.author_id),
                "created_at": iso(self.created_at), events.FAN_OUT: self.fan_out}


@dataclass(frozen=True)
class TweetDeleted:
    """A tweet was removed by its author."""

    event_id: int
    tweet_id: int
    author_id: int
    fan_out: bool | None = None  # the post's decision; None: the tweet predates it
    type: str = field(default=events.TWEET_DELETED, init=False)

    def payload(self) -> dict[str, str | bool]:
        """The event payload: ids as strings, and the post's fan-out decision if known."""
        payload: dict[str, str | bool] = {"tweet_id": str(self.tweet_id),
                                          "author_id": str(self.author_id)}
        if self.fan_out is not None:
            payload[events.FAN_OUT] = self.fan_out
        return payload


TweetEvent = TweetPosted | TweetDeleted
