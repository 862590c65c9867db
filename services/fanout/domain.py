"""What the fanout worker does with each event, written against ports (no drivers here).

Hybrid fan-out: a tweet is written into every follower's home timeline, except when the
author has at least `celebrity_threshold` followers; those tweets are merged in at read
time instead, so a celebrity post costs no per-follower write. Every write is idempotent
(set semantics), so processing an event twice leaves the same timelines as once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Protocol, Sequence

from common import events
from common.events import Event, InvalidEvent


class Unavailable(Exception):
    """A dependency did not answer (down, timing out, 5xx): try the same event again later."""


class Refused(Exception):
    """A dependency answered that this request cannot succeed (4xx, e.g. an unknown user)."""


@dataclass(frozen=True)
class FollowerPage:
    """One page of a user's follower ids, ascending, with the user's follower count."""

    ids: Sequence[int]
    followers_count: int


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


class Timelines(Protocol):
    """Home timelines (`common.home_timeline.HomeTimelines` fits)."""

    def deliver(self, tweet_id: int, user_ids: Sequence[int]) -> int: ...

    def retract(self, tweet_id: int, user_ids: Sequence[int]) -> int: ...

    def add(self, user_id: int, tweet_ids: Iterable[int]) -> int: ...

    def remove(self, user_id: int, tweet_ids: Iterable[int]) -> int: ...


@dataclass(frozen=True)
class Policy:
    """The knobs of hybrid fan-out."""

    celebrity_threshold: int
    backfill_limit: int
    history_limit: int = 800  # how far back an unfollow looks for the followee's tweets


@dataclass(frozen=True)
class Ports:
    """The outside world as the handlers see it."""

    followers: FollowerSource
    timelines: Timelines
    tweets: TweetIdSource


def deliver_tweet(event: Event, ports: Ports, policy: Policy) -> int:
    """TweetPosted: write the tweet into each follower's timeline; returns timelines written."""
    tweet_id, author_id = _ids(event, "tweet_id", "author_id")
    return _each_follower_page(ports, policy, author_id,
                               lambda ids: ports.timelines.deliver(tweet_id, ids))


def retract_tweet(event: Event, ports: Ports, policy: Policy) -> int:
    """TweetDeleted: take the tweet out of every follower's timeline; returns timelines touched."""
    tweet_id, author_id = _ids(event, "tweet_id", "author_id")
    # A celebrity's tweets were never fanned out, so the same skip holds for deletes.
    return _each_follower_page(ports, policy, author_id,
                               lambda ids: ports.timelines.retract(tweet_id, ids))


def _each_follower_page(ports: Ports, policy: Policy, author_id: int,
                        write: Callable[[Sequence[int]], object]) -> int:
    """Apply `write` to each page of the author's followers, unless the author is a celebrity."""
    pages = ports.followers.follower_pages(author_id)
    written = 0
    try:
        for page in pages:
            if page.followers_count >= policy.celebrity_threshold:
                break  # merged at read time: O(1) writes whatever the audience
            write(page.ids)
            written += len(page.ids)
    finally:
        close = getattr(pages, "close", None)
        if close is not None:
            close()  # stops a source that reads pages ahead
    return written


def backfill_follow(event: Event, ports: Ports, policy: Policy) -> int:
    """UserFollowed: merge the followee's recent tweets into the follower's timeline."""
    follower_id, followee_id = _ids(event, "follower_id", "followee_id")
    if ports.followers.followers_count(followee_id) >= policy.celebrity_threshold:
        return 0  # the read path merges celebrities in
    tweet_ids = ports.tweets.recent_tweet_ids(followee_id, policy.backfill_limit)
    ports.timelines.add(follower_id, tweet_ids)
    return len(tweet_ids)


def purge_unfollow(event: Event, ports: Ports, policy: Policy) -> int:
    """UserUnfollowed: remove the followee's tweets from the follower's timeline."""
    follower_id, followee_id = _ids(event, "follower_id", "followee_id")
    tweet_ids = ports.tweets.recent_tweet_ids(followee_id, policy.history_limit)
    ports.timelines.remove(follower_id, tweet_ids)
    return len(tweet_ids)


HANDLERS: dict[str, Callable[[Event, Ports, Policy], int]] = {
    events.TWEET_POSTED: deliver_tweet,
    events.TWEET_DELETED: retract_tweet,
    events.USER_FOLLOWED: backfill_follow,
    events.USER_UNFOLLOWED: purge_unfollow,
}


def handle(event: Event, ports: Ports, policy: Policy) -> int:
    """Run the handler of the event's type; returns the timeline writes it made."""
    return HANDLERS[event.type](event, ports, policy)


def _ids(event: Event, *names: str) -> list[int]:
    values = event.require(*names)
    try:
        ids = [int(value) for value in values]
    except (TypeError, ValueError) as exc:
        raise InvalidEvent(f"{event.type} carries a non-numeric id: {values!r}") from exc
    if any(i <= 0 or i >= 1 << 63 for i in ids):
        raise InvalidEvent(f"{event.type} carries an id outside 1..2^63-1: {values!r}")
    return ids
