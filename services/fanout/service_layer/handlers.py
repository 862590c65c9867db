"""What fan-out does with each event, written against ports.

Every write is idempotent (set semantics), so handling an event twice leaves the same
timelines as handling it once: the worker may redeliver after a crash or a rebalance.
"""

from __future__ import annotations

from typing import Callable, Sequence

from common import events
from common.events import Event, InvalidEvent

from fanout.domain.model import Policy, event_ids
from fanout.service_layer.ports import Ports


def deliver_tweet(event: Event, ports: Ports, policy: Policy) -> int:
    """TweetPosted: write the tweet into each follower's timeline; returns timelines written."""
    tweet_id, author_id = event_ids(event, "tweet_id", "author_id")
    return _each_follower_page(ports, policy, author_id,
                               lambda ids: ports.home_timelines.deliver(tweet_id, ids))


def retract_tweet(event: Event, ports: Ports, policy: Policy) -> int:
    """TweetDeleted: take the tweet out of every follower's timeline; returns timelines touched."""
    tweet_id, author_id = event_ids(event, "tweet_id", "author_id")
    # A celebrity's tweets were never fanned out, so the same skip holds for deletes.
    return _each_follower_page(ports, policy, author_id,
                               lambda ids: ports.home_timelines.retract(tweet_id, ids))


def _each_follower_page(ports: Ports, policy: Policy, author_id: int,
                        write: Callable[[Sequence[int]], object]) -> int:
    """Apply `write` to each page of the author's followers, unless the author is a celebrity."""
    pages = ports.followers.follower_pages(author_id)
    written = 0
    try:
        for page in pages:
            if policy.is_celebrity(page.followers_count):
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
    follower_id, followee_id = event_ids(event, "follower_id", "followee_id")
    if policy.is_celebrity(ports.followers.followers_count(followee_id)):
        return 0  # the read path merges celebrities in
    tweet_ids = ports.tweets.recent_tweet_ids(followee_id, policy.backfill_limit)
    ports.home_timelines.add(follower_id, tweet_ids)
    return len(tweet_ids)


def purge_unfollow(event: Event, ports: Ports, policy: Policy) -> int:
    """UserUnfollowed: remove the followee's tweets from the follower's timeline."""
    follower_id, followee_id = event_ids(event, "follower_id", "followee_id")
    tweet_ids = ports.tweets.recent_tweet_ids(followee_id, policy.history_limit)
    ports.home_timelines.remove(follower_id, tweet_ids)
    return len(tweet_ids)


HANDLERS: dict[str, Callable[[Event, Ports, Policy], int]] = {
    events.TWEET_POSTED: deliver_tweet,
    events.TWEET_DELETED: retract_tweet,
    events.USER_FOLLOWED: backfill_follow,
    events.USER_UNFOLLOWED: purge_unfollow,
}


def handle(event: Event, ports: Ports, policy: Policy) -> int:
    """Run the handler of the event's type; returns the timeline writes it made."""
    handler = HANDLERS.get(event.type)
    if handler is None:
        raise InvalidEvent(f"fan-out has no handler for {event.type} events")
    return handler(event, ports, policy)
