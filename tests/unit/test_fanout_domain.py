"""The fanout handlers against in-memory ports: paging, celebrities, follow and unfollow."""

from __future__ import annotations

import uuid

import pytest

from common import events
from common.events import Event, InvalidEvent
from fanout.domain.model import FollowerPage, Policy
from fanout.service_layer import handlers
from fanout.service_layer.ports import Ports

POLICY = Policy(celebrity_threshold=100, backfill_limit=5, history_limit=800)


class FakeFollowers:
    """Followers per user, served in pages of `page_size` like the users service."""

    def __init__(self, graph: dict[int, list[int]], page_size: int = 3) -> None:
        self.graph, self.page_size = graph, page_size
        self.pages_served = 0

    def follower_pages(self, user_id):
        ids = sorted(self.graph.get(user_id, []))
        for start in range(0, max(len(ids), 1), self.page_size):
            self.pages_served += 1
            yield FollowerPage(ids[start:start + self.page_size], len(ids))

    def followers_count(self, user_id):
        return len(self.graph.get(user_id, []))


class FakeTimelines:
    """Home timelines as sets, with a cap that keeps the newest ids."""

    def __init__(self, cap: int = 800) -> None:
        self.cap, self.data, self.calls = cap, {}, 0

    def _trim(self, user_id):
        self.data[user_id] = set(sorted(self.data[user_id])[-self.cap:])

    def deliver(self, tweet_id, user_ids):
        self.calls += 1
        for u in user_ids:
            self.data.setdefault(u, set()).add(tweet_id)
            self._trim(u)
        return len(user_ids)

    def retract(self, tweet_id, user_ids):
        self.calls += 1
        for u in user_ids:
            self.data.get(u, set()).discard(tweet_id)
        return len(user_ids)

    def add(self, user_id, tweet_ids):
        self.calls += 1
        self.data.setdefault(user_id, set()).update(tweet_ids)
        self._trim(user_id)
        return len(tweet_ids)

    def remove(self, user_id, tweet_ids):
        self.calls += 1
        self.data.setdefault(user_id, set()).difference_update(tweet_ids)
        return len(tweet_ids)


class FakeTweets:
    def __init__(self, by_author: dict[int, list[int]]) -> None:
        self.by_author = by_author

    def recent_tweet_ids(self, author_id, limit):
        return sorted(self.by_author.get(author_id, []), reverse=True)[:limit]


def event(type_: str, **payload) -> Event:
    return Event(event_id=uuid.uuid4().hex, type=type_,
                 payload={k: str(v) for k, v in payload.items()})


def ports(graph=None, tweets=None, page_size=3, cap=800):
    return Ports(followers=FakeFollowers(graph or {}, page_size),
                 home_timelines=FakeTimelines(cap), tweets=FakeTweets(tweets or {}),
                 dead_letters=None)


def test_a_posted_tweet_reaches_every_follower_across_pages():
    p = ports({1: [10, 11, 12, 13, 14, 15, 16]}, page_size=3)
    written = handlers.handle(event(events.TWEET_POSTED, tweet_id=500, author_id=1), p, POLICY)
    assert written == 7
    assert p.followers.pages_served == 3
    assert p.home_timelines.calls == 3  # one batched write per page, not one per follower
    assert {u for u, ids in p.home_timelines.data.items() if 500 in ids} == set(range(10, 17))


def test_a_tweet_delivered_twice_is_held_once():
    p = ports({1: [10, 11]})
    posted = event(events.TWEET_POSTED, tweet_id=500, author_id=1)
    handlers.handle(posted, p, POLICY)
    handlers.handle(posted, p, POLICY)
    assert p.home_timelines.data == {10: {500}, 11: {500}}


def test_a_celebrity_post_writes_no_follower_timeline():
    p = ports({1: list(range(1000, 1000 + POLICY.celebrity_threshold))}, page_size=50)
    written = handlers.handle(event(events.TWEET_POSTED, tweet_id=500, author_id=1), p, POLICY)
    assert written == 0
    assert p.home_timelines.calls == 0
    assert p.followers.pages_served == 1  # the first page tells the count; paging stops


def test_an_author_just_below_the_threshold_is_fanned_out():
    followers = list(range(1000, 1000 + POLICY.celebrity_threshold - 1))
    p = ports({1: followers}, page_size=50)
    assert handlers.handle(event(events.TWEET_POSTED, tweet_id=5, author_id=1), p, POLICY) == 99


def test_an_author_without_followers_writes_nothing():
    p = ports({})
    assert handlers.handle(event(events.TWEET_POSTED, tweet_id=5, author_id=1), p, POLICY) == 0
    assert p.home_timelines.data == {}


def test_a_deleted_tweet_leaves_every_follower_timeline_and_nothing_else():
    p = ports({1: [10, 11, 12, 13]}, page_size=2)
    p.home_timelines.deliver(500, [10, 11, 12, 13])
    p.home_timelines.deliver(501, [10, 11, 12, 13])
    handlers.handle(event(events.TWEET_DELETED, tweet_id=500, author_id=1), p, POLICY)
    assert p.home_timelines.data == {u: {501} for u in (10, 11, 12, 13)}


def test_a_celebrity_delete_is_handled_without_writes():
    p = ports({1: list(range(1000, 1200))}, page_size=50)
    assert handlers.handle(event(events.TWEET_DELETED, tweet_id=5, author_id=1), p, POLICY) == 0
    assert p.home_timelines.calls == 0


def test_a_follow_backfills_the_followees_recent_tweets():
    p = ports({2: [7]}, tweets={2: [100, 101, 102, 103, 104, 105, 106]})
    handlers.handle(event(events.USER_FOLLOWED, follower_id=7, followee_id=2), p, POLICY)
    assert p.home_timelines.data[7] == {102, 103, 104, 105, 106}  # the newest backfill_limit


def test_following_a_celebrity_backfills_nothing():
    p = ports({2: list(range(1000, 1100))}, tweets={2: [100, 101]})
    assert handlers.handle(event(events.USER_FOLLOWED, follower_id=7, followee_id=2),
                         p, POLICY) == 0
    assert 7 not in p.home_timelines.data


def test_an_unfollow_removes_only_the_followees_tweets():
    p = ports({}, tweets={2: [100, 101], 3: [200]})
    p.home_timelines.add(7, [100, 101, 200])
    handlers.handle(event(events.USER_UNFOLLOWED, follower_id=7, followee_id=2), p, POLICY)
    assert p.home_timelines.data[7] == {200}


@pytest.mark.parametrize("payload", [
    {"author_id": "1"},
    {"tweet_id": "abc", "author_id": "1"},
    {"tweet_id": "-4", "author_id": "1"},
    {"tweet_id": str(1 << 64), "author_id": "1"},
    {"tweet_id": None, "author_id": "1"},
])
def test_a_tweet_event_with_a_bad_payload_is_invalid(payload):
    bad = Event(event_id="e", type=events.TWEET_POSTED, payload=payload)
    with pytest.raises(InvalidEvent):
        handlers.handle(bad, ports({1: [10]}), POLICY)


@pytest.mark.parametrize("payload", [
    {"tweet_id": "007", "author_id": "1"},
    {"tweet_id": "5", "author_id": "0"},
    {"tweet_id": " 5", "author_id": "1"},
])
def test_ids_must_be_canonical_positive_decimals(payload):
    bad = Event(event_id="e", type=events.TWEET_POSTED, payload=payload)
    with pytest.raises(InvalidEvent):
        handlers.handle(bad, ports({1: [10]}), POLICY)


def test_an_event_fanout_has_no_handler_for_is_invalid():
    registered = Event(event_id="e", type=events.USER_REGISTERED, payload={"user_id": "1"})
    with pytest.raises(InvalidEvent):
        handlers.handle(registered, ports(), POLICY)


def test_the_celebrity_rule_is_the_shared_one():
    from common import rules

    for count in (0, 99, 100, 101):
        assert POLICY.is_celebrity(count) == rules.is_celebrity(count, 100)


# ------------------------------------------------ the decision carried by tweet events


def decided(type_: str, fan_out: bool, **ids) -> Event:
    """A tweet event carrying timeline's fan-out decision (a JSON boolean)."""
    return Event(event_id=uuid.uuid4().hex, type=type_,
                 payload={**{k: str(v) for k, v in ids.items()}, events.FAN_OUT: fan_out})


def test_a_tweet_posted_as_a_celebrity_writes_nothing_and_asks_for_no_follower():
    p = ports({1: [10, 11]})  # few followers now: the decision at posting still holds
    assert handlers.handle(decided(events.TWEET_POSTED, False, tweet_id=500, author_id=1),
                           p, POLICY) == 0
    assert p.followers.pages_served == 0 and p.home_timelines.calls == 0


def test_a_tweet_decided_for_fan_out_reaches_every_follower_whatever_the_count_now():
    followers = list(range(1000, 1000 + POLICY.celebrity_threshold + 50))
    p = ports({1: followers}, page_size=60)
    assert handlers.handle(decided(events.TWEET_POSTED, True, tweet_id=500, author_id=1),
                           p, POLICY) == len(followers)
    assert all(500 in p.home_timelines.data[f] for f in followers)


def test_the_delete_of_a_fanned_out_tweet_leaves_followers_even_of_a_celebrity_now():
    """Before, the author's count at delete time decided, and the tweet stayed behind."""
    followers = list(range(1000, 1000 + POLICY.celebrity_threshold))
    p = ports({1: followers}, page_size=50)
    p.home_timelines.deliver(500, followers)
    handlers.handle(decided(events.TWEET_DELETED, True, tweet_id=500, author_id=1), p, POLICY)
    assert not any(500 in p.home_timelines.data[f] for f in followers)


def test_the_delete_of_a_tweet_posted_as_a_celebrity_touches_no_timeline():
    p = ports({1: [10, 11]})
    assert handlers.handle(decided(events.TWEET_DELETED, False, tweet_id=500, author_id=1),
                           p, POLICY) == 0
    assert p.followers.pages_served == 0 and p.home_timelines.calls == 0


def test_an_event_from_before_the_decision_is_decided_by_the_count_as_before():
    p = ports({1: list(range(1000, 1000 + POLICY.celebrity_threshold))}, page_size=50)
    assert handlers.handle(event(events.TWEET_DELETED, tweet_id=5, author_id=1), p, POLICY) == 0
    p = ports({1: [10]})
    assert handlers.handle(event(events.TWEET_DELETED, tweet_id=5, author_id=1), p, POLICY) == 1


@pytest.mark.parametrize("flag", ["true", 1, 0, "false", [], {}])
def test_a_fan_out_flag_that_is_not_a_json_boolean_breaks_the_schema(flag):
    bad = Event(event_id="e", type=events.TWEET_POSTED,
                payload={"tweet_id": "5", "author_id": "1", events.FAN_OUT: flag})
    with pytest.raises(InvalidEvent, match="fan_out"):
        handlers.check(bad)
    with pytest.raises(InvalidEvent):
        handlers.handle(bad, ports({1: [10]}), POLICY)


def test_the_schema_check_needs_no_port():
    handlers.check(decided(events.TWEET_POSTED, True, tweet_id=5, author_id=1))
    handlers.check(event(events.USER_FOLLOWED, follower_id=7, followee_id=2))
    with pytest.raises(InvalidEvent):
        handlers.check(event(events.USER_FOLLOWED, follower_id=7))
