"""What the handlers need from the outside world, as protocols; `timeline.bootstrap`
wires the real adapters, unit tests pass fakes."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Mapping, Protocol, Sequence

from timeline.domain.events import TweetDeleted, TweetPosted
from timeline.domain.model import Author, CelebrityStatus, IdempotencyRecord, Tweet

# The idempotency record to finish along with a post: (author id, key, DONE record).
FinishedKey = tuple[int, str, IdempotencyRecord]


class TweetRepository(Protocol):
    """The tweets' source of truth; each change is stored with its event, atomically."""

    def save_posted(self, tweet: Tweet, event: TweetPosted,
                    headers: Mapping[str, str]) -> None: ...

    def delete(self, tweet: Tweet, event: TweetDeleted, headers: Mapping[str, str]) -> None:
        """Remove the tweet, store its event, and remember who deleted it, atomically."""

    def deleted_author(self, tweet_id: int) -> int | None:
        """The author of a tweet deleted lately (remembered for a while), else None."""

    def get_many(self, tweet_ids: Sequence[int]) -> dict[int, Tweet]: ...

    def author_tweet_ids(self, author_id: int, before: int | None, limit: int) -> list[int]: ...

    def recent_tweet_ids(self, author_ids: Sequence[int], before: int | None,
                         limit: int) -> list[int]: ...


class TweetCache(Protocol):
    def get_many(self, tweet_ids: Sequence[int]) -> dict[int, Tweet | None]:
        """Cached tweets; None marks an id known to be deleted."""

    def put_many(self, tweets: Sequence[Tweet]) -> None: ...


class HomeTimelines(Protocol):
    """Home timelines, and the fast side of a post or delete (own entry, cache, key)."""

    def record_post(self, tweet: Tweet, finished: FinishedKey | None) -> None: ...

    def record_delete(self, tweet: Tweet) -> None: ...

    def page(self, user_id: int, before: int | None, limit: int) -> list[int]: ...


class IdempotencyStore(Protocol):
    def claim(self, author_id: int, key: str,
              record: IdempotencyRecord) -> IdempotencyRecord | None: ...

    def replace(self, author_id: int, key: str, expected: IdempotencyRecord,
                new: IdempotencyRecord) -> bool: ...


class Followees(Protocol):
    """Whom a user follows (users' data): celebrities apart, everyone for a rebuild."""

    def celebrities(self, user_id: int) -> list[int]: ...

    def followees(self, user_id: int, limit: int) -> list[int]: ...


class Authors(Protocol):
    """The timeline's copy of its authors' profiles (fed by users' events).

    `record` keeps, per author, the copy with the highest version it was ever given: an
    older or equal version never replaces what it holds, whatever the order of calls.
    """

    def get_many(self, author_ids: Sequence[int]) -> dict[int, Author]: ...

    def id_by_username(self, username: str) -> int | None:
        """The id of the author with this username, if the copy holds them (usernames
        never change, so a name, once held, always gives the same id)."""

    def record(self, author: Author) -> None: ...

    def record_status(self, status: CelebrityStatus) -> None:
        """Keep, per author, the celebrity status of the highest version ever given (apart
        from the profile: neither replaces the other)."""


class IdSource(Protocol):
    def next_id(self) -> int: ...


@dataclass
class Ports:
    """Everything the request handlers need, wired by `timeline.bootstrap`."""

    tweets: TweetRepository
    cache: TweetCache
    home: HomeTimelines
    idempotency: IdempotencyStore
    followees: Followees
    authors: Authors
    ids: IdSource
    idempotency_wait: float = 3.0
    celebrity_authors_max: int = 200
    rebuild_followees_max: int = 200  # authors read when a home timeline is rebuilt
    # Off only when a chaos experiment turns the fallback off on purpose (docs/chaos.md).
    rebuild_without_redis: bool = True
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep


@dataclass
class ProjectionPorts:
    """What the author projection needs (the `timeline.entrypoints.authors` process)."""

    authors: Authors
