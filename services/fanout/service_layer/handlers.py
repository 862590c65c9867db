"""What fan-out does with each event, written against ports.

Every write is idempotent (set semantics), so handling an event twice leaves the same
timelines as handling it once: the worker may redeliver after a crash or a rebalance, and
the redrive may replay a dead letter.
"""

from __future__ import annotations

from typing import Callable, Sequence

from common import events
from common.events import Event, InvalidEvent

from fanout.domain.model import Policy, event_ids, fan_out_decision
from fanout.service_layer.ports import Ports


def tweet_fields(event: Event) -> tuple[int, int, bool | None]:
    """Tweet id, author id and fan-out decision of a TweetPosted or TweetDeleted."""
    tweet_id, author_id = event_ids(event, "tweet_id", "author_id")
    return tweet_id, author_id, fan_out_decision(event)


def follow_fields(event: Event) -> tuple[int, int]:
    """Follower id and followee id of a UserFollowed or UserUnfollowed."""
    follower_id, followee_id = event_ids(event, "follower_id", "followee_id")
    return follower_id, followee_id


def deliver_tweet(event: Event, ports: Ports, policy: Policy) -> int:
    """TweetPosted: write the tweet into each follower's timeline; returns timelines written."""
    tweet_id, author_id, fan_out = tweet_fields(event)
    if fan_out is False:
        return 0  # posted as a celebrity: merged at read time, O(1) whatever the audience
    return _each_follower_page(ports, policy, author_id, fan_out,
                               lambda ids: ports.home_timelines.deliver(tweet_id, ids))


def retract_tweet(event: Event, ports: Ports, policy: Policy) -> int:
    """TweetDeleted: take the tweet out of every follower's timeline; returns timelines touched."""
    tweet_id, author_id, fan_out = tweet_fields(event)
    # The post's decision: a tweet never fanned out is in no follower's timeline, and one
    # that was is taken out even if its author has become a celebrity since.
    if fan_out is False:
        return 0
    return _each_follower_page(ports, policy, author_id, fan_out,
                               lambda ids: ports.home_timelines.retract(tweet_id, ids))


def _each_follower_page(ports: Ports, policy: Policy, author_id: int, fan_out: bool | None,
                        write: Callable[[Sequence[int]], object]) -> int:
    """Apply `write` to each page of the author's followers. Without a decision in the
    event (`fan_out` None, an event from before it was carried), not if the author is a
    celebrity now."""
    pages = ports.followers.follower_pages(author_id)
    written = 0
    try:
        for page in pages:
            if fan_out is None and policy.is_celebrity(page.followers_count):
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
    follower_id, followee_id = follow_fields(event)
    if policy.is_celebrity(ports.followers.followers_count(followee_id)):
        return 0  # the read path merges celebrities in
    tweet_ids = ports.tweets.recent_tweet_ids(followee_id, policy.backfill_limit)
    ports.home_timelines.add(follower_id, tweet_ids)
    return len(tweet_ids)


def purge_unfollow(event: Event, ports: Ports, policy: Policy) -> int:
    """UserUnfollowed: remove the followee's tweets from the follower's timeline."""
    follower_id, followee_id = follow_fields(event)
    tweet_ids = ports.tweets.recent_tweet_ids(followee_id, policy.history_limit)
    ports.home_timelines.remove(follower_id, tweet_ids)
    return len(tweet_ids)


HANDLERS: dict[str, Callable[[Event, Ports, Policy], int]] = {
    events.TWEET_POSTED: deliver_tweet,
    events.TWEET_DELETED: retract_tweet,
    events.USER_FOLLOWED: backfill_follow,
    events.USER_UNFOLLOWED: purge_unfollow,
}


# What each handler reads from its event, checked without any I/O (`check`).
FIELDS: dict[str, Callable[[Event], object]] = {
    events.TWEET_POSTED: tweet_fields,
    events.TWEET_DELETED: tweet_fields,
    events.USER_FOLLOWED: follow_fields,
    events.USER_UNFOLLOWED: follow_fields,
}


def check(event: Event) -> None:
    """Raise InvalidEvent unless fan-out has a handler for the event and its payload holds
    what that handler reads (the schema, no I/O)."""
    fields = FIELDS.get(event.type)
    if fields is None:
        raise InvalidEvent(f"fan-out has no handler for {event.type} events")
    fields(event)


def handle(event: Event, ports: Ports, policy: Policy) -> int:
    """Run the handler of the event's type; returns the timeline writes it made."""
    check(event)
    return HANDLERS[event.type](event, ports, policy)
