"""What fan-out needs from the outside world, as protocols; `fanout.bootstrap` wires the
real adapters, tests pass in-memory ones.

Every port raises the domain's errors: `Unavailable` when its dependency does not answer,
`Refused` when it answers that the request cannot succeed, `UnexpectedAnswer` when its
answer makes no sense.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Iterator, Protocol, Sequence

from fanout.domain.model import FollowerPage


class FollowerSource(Protocol):
    """Who follows whom (the users service)."""

    def follower_pages(self, user_id: int) -> Iterator[FollowerPage]:
        """Every follower of `user_id`, page by page, in ascending id order."""

    def followers_count(self, user_id: int) -> int:
        """How many followers `user_id` has."""


class TweetIdSource(Protocol):
    """Which tweets an author wrote (the timeline service)."""

    def recent_tweet_ids(self, author_id: int, limit: int) -> list[int]:
        """Up to `limit` ids of the author's tweets, newest first."""


class HomeTimelines(Protocol):
    """Users' home timelines: capped, ordered, idempotent sets of tweet ids."""

    def deliver(self, tweet_id: int, user_ids: Sequence[int]) -> int:
        """Put one tweet into many timelines; returns how many entries were new."""

    def retract(self, tweet_id: int, user_ids: Sequence[int]) -> int:
        """Take one tweet out of many timelines; returns how many entries went."""

    def add(self, user_id: int, tweet_ids: Iterable[int]) -> int:
        """Put several tweets into one timeline."""

    def remove(self, user_id: int, tweet_ids: Iterable[int]) -> int:
        """Take several tweets out of one timeline."""


class Message(Protocol):
    """One record as the processor reads it (a Kafka ConsumerRecord fits)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes]]


class DeadLetters(Protocol):
    """Where poison messages go (the dead-letter topic)."""

    def send(self, message: Message, error: BaseException, attempts: int) -> None:
        """Store the message with its error durably; raises Unavailable if it cannot."""


class RedriveLedger(Protocol):
    """The event ids the redrive replayed, for one fanout group (kept for a while)."""

    def is_done(self, event_id: str) -> bool:
        """Whether an earlier redrive replayed this event."""

    def mark_done(self, event_id: str) -> None:
        """Record that this event was replayed; raises Unavailable if it cannot."""


@dataclass(frozen=True)
class Ports:
    """The outside world as fan-out's use cases see it."""

    followers: FollowerSource
    home_timelines: HomeTimelines
    tweets: TweetIdSource
    dead_letters: DeadLetters
    redriven: RedriveLedger | None = None  # the redrive's alone (fanout.entrypoints.redrive)
