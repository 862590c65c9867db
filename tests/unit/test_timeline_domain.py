"""The timeline's rules, run against in-memory ports (no infrastructure)."""

from __future__ import annotations

import json
import logging
from dataclasses import replace

import pytest

from common import events, ids
from common.problems import Problem
from timeline import domain
from timeline.domain import (ABANDONED, DONE, PENDING, DeleteTweet, DependencyUnavailable,
                             IdempotencyRecord, Ports, PostTweet, Tweet)


class FakeTweets:
    def __init__(self) -> None:
        self.tweets: dict[int, Tweet] = {}
        self.outbox: list[domain.OutboxMessage] = []
        self.fail_next_save = False

    def save_posted(self, tweet, message):
        if self.fail_next_save:
            self.fail_next_save = False
            raise TimeoutError("write timed out")
        self.tweets[tweet.id] = tweet
        self.outbox.append(message)

    def delete(self, tweet, message):
        self.tweets.pop(tweet.id, None)
        self.outbox.append(message)

    def get_many(self, tweet_ids):
        return {t: self.tweets[t] for t in tweet_ids if t in self.tweets}

    def author_tweet_ids(self, author_id, before, limit):
        found = sorted((t.id for t in self.tweets.values() if t.author_id == author_id
                        and (before is None or t.id < before)), reverse=True)
        return found[:limit]

    def recent_tweet_ids(self, author_ids, before, limit):
        merged = {i for a in author_ids for i in self.author_tweet_ids(a, before, limit)}
        return sorted(merged, reverse=True)[:limit]


class FakeCache:
    def __init__(self) -> None:
        self.tweets: dict[int, Tweet] = {}

    def get_many(self, tweet_ids):
        return {t: self.tweets[t] for t in tweet_ids if t in self.tweets}

    def put_many(self, tweets):
        self.tweets.update({t.id: t for t in tweets})


class FakeHome:
    def __init__(self, cache: FakeCache, idempotency: "FakeIdempotency") -> None:
        self.timelines: dict[int, set[int]] = {}
        self.cache, self.idempotency = cache, idempotency
        self.nudged: list[int] = []

    def record_post(self, tweet, bucket, idempotency):
        self.timelines.setdefault(tweet.author_id, set()).add(tweet.id)
        self.cache.put_many([tweet])
        if idempotency is not None:
            author_id, key, record = idempotency
            self.idempotency.records[(author_id, key)] = record
        self.nudged.append(bucket)

    def record_delete(self, tweet, bucket):
        self.timelines.get(tweet.author_id, set()).discard(tweet.id)
        self.cache.tweets.pop(tweet.id, None)
        self.nudged.append(bucket)

    def page(self, user_id, before, limit):
        found = sorted((t for t in self.timelines.get(user_id, set())
                        if before is None or t < before), reverse=True)
        return found[:limit]


class FakeIdempotency:
    def __init__(self) -> None:
        self.records: dict[tuple[int, str], IdempotencyRecord] = {}

    def claim(self, author_id, key, record):
        existing = self.records.get((author_id, key))
        if existing is None:
            self.records[(author_id, key)] = record
        return existing

    def replace(self, author_id, key, expected, new):
        if self.records.get((author_id, key)) != expected:
            return False
        self.records[(author_id, key)] = new
        return True


class FakeFollowees:
    def __init__(self, celebrities=(), down=False, following=()) -> None:
        self.ids, self.down, self.following = list(celebrities), down, list(following)
        self.asked_limits: list[int] = []

    def celebrities(self, user_id):
        if self.down:
            raise DependencyUnavailable("users is down")
        return self.ids

    def followees(self, user_id, limit):
        self.asked_limits.append(limit)
        if self.down:
            raise DependencyUnavailable("users is down")
        return self.following[:limit]


class RedisDown:
    """Stands in for every Redis-backed port while Redis is unreachable."""

    def __init__(self) -> None:
        self.calls = 0

    def __getattr__(self, name):
        def unavailable(*args, **kwargs):
            self.calls += 1
            raise DependencyUnavailable("redis: connection refused", retry_after=2)
        return unavailable


class Counter:
    def __init__(self) -> None:
        self._gen = ids.IdGenerator(1)

    def next_id(self):
        return self._gen.next_id()


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


@pytest.fixture
def ports() -> Ports:
    cache, idempotency = FakeCache(), FakeIdempotency()
    clock = Clock()
    return Ports(tweets=FakeTweets(), cache=cache, home=FakeHome(cache, idempotency),
                 idempotency=idempotency, followees=FakeFollowees(), ids=Counter(),
                 tweets_topic="test.tweets.v1", outbox_buckets=16, idempotency_wait=3.0,
                 clock=clock, sleep=clock.sleep)


def field_errors(problem: Problem) -> list[str]:
    return [e["field"] for e in problem.errors or []]


# -------------------------------------------------------------------------- validation


@pytest.mark.parametrize("text", ["", "   ", "\n\t", "x" * 281, None, 42, ["hi"]])
def test_a_tweet_without_1_to_280_characters_is_refused_with_422(text):
    with pytest.raises(Problem) as caught:
        domain.validate_text(text)
    assert caught.value.status == 422
    assert field_errors(caught.value) == ["text"]


def test_a_tweet_is_stripped_and_may_hold_exactly_280_characters():
    assert domain.validate_text("  hi  ") == "hi"
    assert domain.validate_text(" " + "é" * 280 + "\n") == "é" * 280


@pytest.mark.parametrize("raw", ["0", "101", "-1", "ten", ""])
def test_a_limit_outside_1_to_100_is_a_422(raw):
    with pytest.raises(Problem) as caught:
        domain.parse_limit(raw)
    assert caught.value.status == 422 and field_errors(caught.value) == ["limit"]


def test_a_missing_limit_means_twenty():
    assert domain.parse_limit(None) == 20
    assert domain.parse_limit("100") == 100


@pytest.mark.parametrize("raw", ["0", "-5", "abc", "9223372036854775808", "١٢", ""])
def test_an_id_that_cannot_be_a_64_bit_id_is_rejected(raw):
    assert domain.parse_id(raw) is None


def test_an_idempotency_key_must_be_short_and_printable():
    assert domain.validate_idempotency_key(None) is None
    assert domain.validate_idempotency_key("abc-123") == "abc-123"
    for bad in ["", "x" * 256, "a\nb"]:
        with pytest.raises(Problem) as caught:
            domain.validate_idempotency_key(bad)
        assert caught.value.status == 422


# ----------------------------------------------------------------------- merge, cursor


def test_a_cursor_round_trips_the_last_id_and_looks_opaque():
    last = 249993025139245056
    cursor = domain.encode_cursor(last)
    assert str(last) not in cursor
    assert domain.decode_cursor(cursor) == last
    assert domain.decode_cursor(None) is None


@pytest.mark.parametrize("cursor", ["", "!!!", "abc", domain.encode_cursor(5) + "A", "AAAAAAAAAAA"])
def test_a_malformed_cursor_is_a_422(cursor):
    with pytest.raises(Problem) as caught:
        domain.decode_cursor(cursor)
    assert caught.value.status == 422 and field_errors(caught.value) == ["cursor"]


def test_the_merge_deduplicates_and_orders_newest_first():
    page, last = domain.merge_timeline([9, 7, 5, 3], [8, 7, 2], limit=10)
    assert page == [9, 8, 7, 5, 3, 2]
    assert last is None


def test_the_merge_cuts_at_the_limit_and_continues_after_the_last_id():
    page, last = domain.merge_timeline([9, 7, 5], [8, 6], limit=3)
    assert page == [9, 8, 7]
    assert last == 7


def test_the_merge_of_nothing_is_an_empty_last_page():
    assert domain.merge_timeline([], [], limit=5) == ([], None)


def test_a_tweet_and_its_event_share_an_author_bucket():
    assert domain.outbox_bucket(42, 16) == domain.outbox_bucket(42, 16)
    spread = {domain.outbox_bucket(i << 22, 16) for i in range(1, 200)}
    assert len(spread) > 8, "snowflake-like ids must not crowd a few buckets"


# ---------------------------------------------------------------------------- posting


def test_posting_stores_the_tweet_with_a_tweet_posted_event(ports):
    tweet = domain.post_tweet(PostTweet(7, "  hello  ", request_id="r1"), ports)
    assert tweet.text == "hello" and tweet.author_id == 7
    assert ports.tweets.tweets[tweet.id] == tweet
    [message] = ports.tweets.outbox
    event = events.Event.from_json(message.payload)
    assert event.type == events.TWEET_POSTED
    assert event.payload == {"tweet_id": str(tweet.id), "author_id": "7",
                             "created_at": domain.iso(tweet.created_at)}
    assert event.event_id == str(message.event_id) and message.event_id != tweet.id
    assert (message.topic, message.key) == ("test.tweets.v1", "7")
    assert message.bucket == domain.outbox_bucket(7, 16)
    assert message.headers == {"request_id": "r1"}


def test_each_event_carries_the_trace_context_of_the_request_that_wrote_it(ports):
    contexts = iter([{"traceparent": "00-aa-01-01"}, {"traceparent": "00-bb-02-01"}])
    ports.trace_context = lambda: next(contexts)
    tweet = domain.post_tweet(PostTweet(7, "traced", request_id="r1"), ports)
    domain.delete_tweet(DeleteTweet(tweet.id, 7), ports)
    posted, deleted = ports.tweets.outbox
    assert posted.headers == {"request_id": "r1", "traceparent": "00-aa-01-01"}
    assert deleted.headers == {"traceparent": "00-bb-02-01"}


def test_created_at_is_the_instant_in_the_tweet_id(ports):
    tweet = domain.post_tweet(PostTweet(7, "hi"), ports)
    assert int(tweet.created_at.timestamp() * 1000) == ids.timestamp_ms(tweet.id)
    assert domain.iso(tweet.created_at).endswith("Z")


def test_the_author_sees_a_new_tweet_at_once(ports):
    tweet = domain.post_tweet(PostTweet(7, "hi"), ports)
    page = domain.read_home_timeline(7, 20, None, ports)
    assert [t.id for t in page.items] == [tweet.id]


def test_an_invalid_tweet_writes_nothing(ports):
    with pytest.raises(Problem):
        domain.post_tweet(PostTweet(7, " "), ports)
    assert ports.tweets.tweets == {} and ports.tweets.outbox == []


def test_the_same_idempotency_key_twice_gives_one_tweet(ports):
    first = domain.post_tweet(PostTweet(7, "once", "key-1"), ports)
    second = domain.post_tweet(PostTweet(7, "once", "key-1"), ports)
    assert second == first
    assert len(ports.tweets.tweets) == 1 and len(ports.tweets.outbox) == 1


def test_the_same_key_from_another_author_is_another_tweet(ports):
    first = domain.post_tweet(PostTweet(7, "once", "key-1"), ports)
    second = domain.post_tweet(PostTweet(8, "once", "key-1"), ports)
    assert first.id != second.id


def test_reusing_a_key_for_a_different_text_is_a_422(ports):
    domain.post_tweet(PostTweet(7, "once", "key-1"), ports)
    with pytest.raises(Problem) as caught:
        domain.post_tweet(PostTweet(7, "other", "key-1"), ports)
    assert caught.value.status == 422 and field_errors(caught.value) == ["Idempotency-Key"]


def test_a_concurrent_duplicate_waits_for_the_original_and_answers_its_tweet(ports):
    original = domain.post_tweet(PostTweet(7, "once", "key-1"), ports)
    done = ports.idempotency.records[(7, "key-1")]
    # Rewind the record to "in flight"; it completes while the duplicate waits.
    ports.idempotency.records[(7, "key-1")] = replace(done, state=PENDING,
                                                       since_ms=int(ports.clock() * 1000))
    waits = []

    def original_finishes(seconds):
        waits.append(seconds)
        ports.idempotency.records[(7, "key-1")] = done

    ports.sleep = original_finishes
    again = domain.post_tweet(PostTweet(7, "once", "key-1"), ports)
    assert again == original and len(waits) == 1
    assert len(ports.tweets.outbox) == 1


def test_a_failed_original_is_taken_over_with_the_same_tweet_id(ports):
    ports.tweets.fail_next_save = True
    with pytest.raises(TimeoutError):
        domain.post_tweet(PostTweet(7, "once", "key-1"), ports)
    abandoned = ports.idempotency.records[(7, "key-1")]
    assert abandoned.state == ABANDONED
    tweet = domain.post_tweet(PostTweet(7, "once", "key-1"), ports)
    assert tweet.id == abandoned.tweet_id
    assert ports.idempotency.records[(7, "key-1")].state == DONE


def test_a_stale_pending_claim_is_taken_over(ports):
    old = IdempotencyRecord(ports.ids.next_id(), domain.fingerprint("once"), PENDING,
                            int((ports.clock() - 60) * 1000))
    ports.idempotency.records[(7, "key-1")] = old
    tweet = domain.post_tweet(PostTweet(7, "once", "key-1"), ports)
    assert tweet.id == old.tweet_id


def test_a_key_whose_tweet_was_deleted_is_a_409(ports):
    tweet = domain.post_tweet(PostTweet(7, "once", "key-1"), ports)
    domain.delete_tweet(DeleteTweet(tweet.id, 7), ports)
    with pytest.raises(Problem) as caught:
        domain.post_tweet(PostTweet(7, "once", "key-1"), ports)
    assert caught.value.status == 409


# --------------------------------------------------------------------------- deleting


def test_deleting_removes_the_tweet_everywhere_and_records_tweet_deleted(ports):
    tweet = domain.post_tweet(PostTweet(7, "bye"), ports)
    domain.delete_tweet(DeleteTweet(tweet.id, 7), ports)
    assert tweet.id not in ports.tweets.tweets
    assert tweet.id not in ports.cache.tweets
    assert domain.read_home_timeline(7, 20, None, ports).items == []
    event = events.Event.from_json(ports.tweets.outbox[-1].payload)
    assert event.type == events.TWEET_DELETED
    assert event.payload == {"tweet_id": str(tweet.id), "author_id": "7"}


def test_only_the_author_may_delete_a_tweet(ports):
    tweet = domain.post_tweet(PostTweet(7, "mine"), ports)
    with pytest.raises(Problem) as caught:
        domain.delete_tweet(DeleteTweet(tweet.id, 8), ports)
    assert caught.value.status == 403
    assert tweet.id in ports.tweets.tweets


def test_deleting_an_unknown_tweet_is_a_404(ports):
    with pytest.raises(Problem) as caught:
        domain.delete_tweet(DeleteTweet(999, 7), ports)
    assert caught.value.status == 404


# ---------------------------------------------------------------------------- reading


def test_hydration_prefers_the_cache_and_fills_it_from_the_store(ports):
    stored = Tweet(ports.ids.next_id(), 7, "stored", domain.created_at_of(1 << 22))
    cached = Tweet(ports.ids.next_id(), 7, "cached", domain.created_at_of(1 << 22))
    ports.tweets.tweets[stored.id] = stored
    ports.cache.tweets[cached.id] = cached
    found = domain.hydrate([cached.id, 404, stored.id], ports)
    assert found == [cached, stored]
    assert ports.cache.tweets[stored.id] == stored


def test_author_pages_run_newest_first_without_duplicates(ports):
    posted = [domain.post_tweet(PostTweet(7, f"t{i}"), ports).id for i in range(7)]
    seen, cursor = [], None
    while True:
        page = domain.read_author_tweets(7, 3, domain.decode_cursor(cursor), ports)
        seen += [t.id for t in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == sorted(posted, reverse=True)


def test_a_page_that_ends_exactly_at_the_limit_has_no_next_cursor(ports):
    for i in range(3):
        domain.post_tweet(PostTweet(7, f"t{i}"), ports)
    assert domain.read_author_tweets(7, 3, None, ports).next_cursor is None


def test_the_home_timeline_merges_celebrity_tweets_in_order(ports):
    mine = domain.post_tweet(PostTweet(7, "mine"), ports)
    celeb = domain.post_tweet(PostTweet(99, "famous"), ports)
    ports.home.timelines[99] = set()  # the celebrity's own timeline is not ours
    ports.home.timelines[7].add(celeb.id)  # also fanned out: must appear once
    ports.followees = FakeFollowees([99])
    newer = domain.post_tweet(PostTweet(99, "newer"), ports)
    page = domain.read_home_timeline(7, 20, None, ports)
    assert [t.id for t in page.items] == [newer.id, celeb.id, mine.id]
    assert page.degraded is None


def test_home_timeline_pages_continue_below_the_cursor_across_both_sources(ports):
    ports.followees = FakeFollowees([99])
    posted = []
    for i in range(5):
        posted.append(domain.post_tweet(PostTweet(7, f"mine {i}"), ports).id)
        posted.append(domain.post_tweet(PostTweet(99, f"celeb {i}"), ports).id)
    seen, cursor = [], None
    while True:
        page = domain.read_home_timeline(7, 4, domain.decode_cursor(cursor), ports)
        seen += [t.id for t in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == sorted(posted, reverse=True)


def test_without_users_the_home_timeline_is_served_degraded(ports):
    mine = domain.post_tweet(PostTweet(7, "mine"), ports)
    ports.followees = FakeFollowees(down=True)
    page = domain.read_home_timeline(7, 20, None, ports)
    assert [t.id for t in page.items] == [mine.id]
    assert page.degraded == "celebrity-merge-unavailable"


def test_an_outbox_payload_is_the_shared_envelope():
    message = domain.to_outbox(domain.TweetDeleted(5, 7), 11, "tweets.v1", 16)
    body = json.loads(message.payload)
    assert set(body) == {"event_id", "type", "version", "occurred_at", "payload"}
    assert body["event_id"] == "11"


# ------------------------------------------------------------------------ without Redis


def stop_redis(ports: Ports) -> RedisDown:
    down = RedisDown()
    ports.home = ports.cache = ports.idempotency = down
    return down


def test_without_redis_the_home_timeline_is_rebuilt_from_followees_tweets(ports):
    mine = domain.post_tweet(PostTweet(7, "mine"), ports)
    friend = [domain.post_tweet(PostTweet(8, f"friend {i}"), ports) for i in range(3)]
    domain.post_tweet(PostTweet(9, "a stranger"), ports)
    ports.followees = FakeFollowees(following=[8])
    down = stop_redis(ports)
    page = domain.read_home_timeline(7, 20, None, ports)
    assert [t.id for t in page.items] == sorted([mine.id, *(t.id for t in friend)],
                                                reverse=True)
    assert page.degraded == domain.REBUILT == "home-timeline-rebuilt"
    assert down.calls == 1  # the failed page read only: no cache read or fill
    assert page.next_cursor is None


def test_with_the_fallback_switched_off_a_home_timeline_without_redis_is_refused(ports):
    """The chaos experiments' `home-fallback` switch: no rebuild, the outage shows."""
    domain.post_tweet(PostTweet(8, "friend"), ports)
    ports.followees = FakeFollowees(following=[8])
    ports.rebuild_without_redis = False
    stop_redis(ports)
    with pytest.raises(DependencyUnavailable):
        domain.read_home_timeline(7, 20, None, ports)


def test_a_rebuilt_home_timeline_pages_below_the_cursor(ports):
    posted = [domain.post_tweet(PostTweet(8 + i % 2, f"t{i}"), ports).id for i in range(7)]
    ports.followees = FakeFollowees(following=[8, 9])
    stop_redis(ports)
    seen, cursor = [], None
    while True:
        page = domain.read_home_timeline(7, 3, domain.decode_cursor(cursor), ports)
        seen += [t.id for t in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == sorted(posted, reverse=True)


def test_a_rebuild_reads_a_bounded_number_of_followees(ports):
    ports.followees = FakeFollowees(following=list(range(1000, 1500)))
    ports.rebuild_followees_max = 50
    stop_redis(ports)
    read_authors = []
    original = ports.tweets.recent_tweet_ids

    def recording(author_ids, before, limit):
        read_authors.append((list(author_ids), limit))
        return original(author_ids, before, limit)

    ports.tweets.recent_tweet_ids = recording
    domain.read_home_timeline(7, 20, None, ports)
    assert ports.followees.asked_limits == [50]
    [(authors, limit)] = read_authors
    assert authors[0] == 7 and len(authors) == 51 and limit == 21


def test_without_redis_and_users_the_home_timeline_is_unavailable(ports):
    ports.followees = FakeFollowees(down=True)
    stop_redis(ports)
    with pytest.raises(DependencyUnavailable):
        domain.read_home_timeline(7, 20, None, ports)


def test_without_redis_a_tweet_is_still_accepted_and_stored_with_its_event(ports):
    down = stop_redis(ports)
    tweet = domain.post_tweet(PostTweet(7, "through the outage"), ports)
    assert ports.tweets.tweets[tweet.id] == tweet
    assert [json.loads(m.payload)["payload"]["tweet_id"] for m in ports.tweets.outbox] \
        == [str(tweet.id)]
    assert down.calls == 1  # the best-effort Redis side was tried once


def test_without_redis_a_post_with_an_idempotency_key_is_refused_before_writing(ports):
    stop_redis(ports)
    with pytest.raises(DependencyUnavailable) as caught:
        domain.post_tweet(PostTweet(7, "exactly once", idempotency_key="k"), ports)
    assert caught.value.retry_after == 2
    assert ports.tweets.tweets == {} and ports.tweets.outbox == []


def test_a_failed_batch_keeps_its_error_when_redis_is_gone_too(ports, caplog):
    claim = domain._claim_key(7, "k", domain.fingerprint("x"), ports)
    ports.idempotency = RedisDown()
    with caplog.at_level(logging.WARNING, logger="murmur.timeline"):
        # Logged, not raised: the batch's own error is the one the caller must see.
        assert domain._abandon(7, "k", claim, ports) is None
    assert "idempotency claim left pending" in caplog.text


def test_without_redis_a_delete_still_removes_the_tweet(ports):
    tweet = domain.post_tweet(PostTweet(7, "short-lived"), ports)
    stop_redis(ports)
    domain.delete_tweet(DeleteTweet(tweet.id, 7), ports)
    assert tweet.id not in ports.tweets.tweets
    assert json.loads(ports.tweets.outbox[-1].payload)["type"] == "TweetDeleted"


def test_without_the_cache_tweets_are_read_from_the_store(ports):
    tweet = domain.post_tweet(PostTweet(7, "cached once"), ports)
    ports.cache = RedisDown()
    assert domain.get_tweet(tweet.id, ports) == tweet
