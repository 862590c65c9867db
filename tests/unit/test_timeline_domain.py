"""The timeline's use cases, run against in-memory ports (no infrastructure)."""

from __future__ import annotations

import logging
from dataclasses import replace

import pytest

from unit._timeline_fakes import FakeFollowees, RedisDown, memory_ports
from common import ids, rules
from timeline.domain import model
from timeline.domain.commands import DeleteTweet, PostTweet
from timeline.domain.errors import (AuthorNotFound, DependencyUnavailable, IdempotencyConflict,
                                    NotTheAuthor, TweetNotFound)
from timeline.domain.events import TweetDeleted, TweetPosted
from timeline.domain.model import (ABANDONED, DONE, PENDING, Author, IdempotencyRecord, Tweet)
from timeline.service_layer import handlers
from timeline.service_layer.ports import Ports


@pytest.fixture
def ports() -> Ports:
    return memory_ports()


def post(ports: Ports, author_id: int, text: str, key: str | None = None, **more):
    return handlers.post_tweet(PostTweet(author_id, text, key, **more), ports).tweet


def field_errors(error: rules.InvalidInput) -> list[str]:
    return [e["field"] for e in error.errors]


def every_page(read, limit: int) -> list[int]:
    """The ids of every page of a listing, following `last_id` to the end."""
    seen, before = [], None
    for _ in range(50):
        page = read(limit, before)
        seen += [item.tweet.id for item in page.items]
        if page.last_id is None:
            return seen
        before = page.last_id
    raise AssertionError("the listing never ended")


# --------------------------------------------------------------------------- the model


def test_the_merge_deduplicates_and_orders_newest_first():
    page, last = model.merge_timeline([9, 7, 5, 3], [8, 7, 2], limit=10)
    assert page == [9, 8, 7, 5, 3, 2]
    assert last is None


def test_the_merge_cuts_at_the_limit_and_continues_below_the_last_id():
    page, last = model.merge_timeline([9, 7, 5], [8, 6], limit=3)
    assert page == [9, 8, 7]
    assert last == 7


def test_the_merge_of_nothing_is_an_empty_last_page():
    assert model.merge_timeline([], [], limit=5) == ([], None)


def test_only_a_newer_profile_version_supersedes_an_author():
    v2 = Author(7, "ann", "Ann", 2)
    assert v2.supersedes(None)
    assert Author(7, "ann", "Ann B.", 3).supersedes(v2)
    assert not Author(7, "ann", "Old Ann", 1).supersedes(v2)
    assert not Author(7, "ann", "Ann again", 2).supersedes(v2)
    assert not model.seed_author(7, "ann").supersedes(Author(7, "ann", "Ann", 1))


def test_an_author_not_yet_known_has_only_an_id():
    unknown = Author(7)
    assert not unknown.known
    assert (unknown.username, unknown.display_name) == (None, None)


def test_created_at_is_the_instant_in_the_tweet_id(ports):
    tweet = post(ports, 7, "hi")
    assert int(tweet.created_at.timestamp() * 1000) == ids.timestamp_ms(tweet.id)
    assert model.iso(tweet.created_at).endswith("Z")


# ---------------------------------------------------------------------------- posting


@pytest.mark.parametrize("text", ["", "   ", "\n\t", "x" * 281, None, 42, ["hi"], "a\x00b"])
def test_a_tweet_without_1_to_280_characters_is_refused_and_writes_nothing(ports, text):
    with pytest.raises(rules.InvalidInput) as caught:
        handlers.post_tweet(PostTweet(7, text), ports)
    assert field_errors(caught.value) == ["text"]
    assert ports.tweets.tweets == {} and ports.tweets.outbox == []


def test_a_tweet_is_stripped_and_may_hold_exactly_280_characters(ports):
    assert post(ports, 7, "  hi  ").text == "hi"
    assert post(ports, 7, " " + "é" * 280 + "\n").text == "é" * 280


def test_posting_stores_the_tweet_with_a_tweet_posted_event_and_its_headers(ports):
    tweet = post(ports, 7, "  hello  ", event_headers={"request_id": "r1",
                                                       "traceparent": "00-aa-01-01"})
    assert tweet.text == "hello" and tweet.author_id == 7
    assert ports.tweets.tweets[tweet.id] == tweet
    [(event, headers)] = ports.tweets.outbox
    assert isinstance(event, TweetPosted)
    assert (event.tweet_id, event.author_id) == (tweet.id, 7)
    assert event.created_at == tweet.created_at
    assert event.event_id != tweet.id
    assert event.payload() == {"tweet_id": str(tweet.id), "author_id": "7",
                               "created_at": model.iso(tweet.created_at), "fan_out": True}
    assert headers == {"request_id": "r1", "traceparent": "00-aa-01-01"}


def test_a_delete_stores_its_event_with_the_headers_of_its_own_request(ports):
    tweet = post(ports, 7, "traced", event_headers={"traceparent": "00-aa-01-01"})
    handlers.delete_tweet(DeleteTweet(tweet.id, 7, {"traceparent": "00-bb-02-01"}), ports)
    (_, posted), (deleted_event, deleted) = ports.tweets.outbox
    assert posted == {"traceparent": "00-aa-01-01"}
    assert deleted == {"traceparent": "00-bb-02-01"}
    assert deleted_event.payload() == {"tweet_id": str(tweet.id), "author_id": "7",
                                       "fan_out": True}


def test_the_author_sees_a_new_tweet_at_once(ports):
    tweet = post(ports, 7, "hi")
    page = handlers.show_home_timeline(7, 20, None, ports)
    assert [item.tweet.id for item in page.items] == [tweet.id]


def test_the_same_idempotency_key_twice_gives_one_tweet(ports):
    first = handlers.post_tweet(PostTweet(7, "once", "key-1"), ports)
    second = handlers.post_tweet(PostTweet(7, "once", "key-1"), ports)
    assert second == first
    assert len(ports.tweets.tweets) == 1 and len(ports.tweets.outbox) == 1


def test_the_same_key_from_another_author_is_another_tweet(ports):
    assert post(ports, 7, "once", "key-1").id != post(ports, 8, "once", "key-1").id


def test_reusing_a_key_for_a_different_text_is_invalid_input(ports):
    post(ports, 7, "once", "key-1")
    with pytest.raises(rules.InvalidInput) as caught:
        post(ports, 7, "other", "key-1")
    assert field_errors(caught.value) == ["Idempotency-Key"]
    assert len(ports.tweets.tweets) == 1


def test_a_concurrent_duplicate_waits_for_the_original_and_answers_its_tweet(ports):
    original = post(ports, 7, "once", "key-1")
    done = ports.idempotency.records[(7, "key-1")]
    # Rewind the record to "in flight"; it completes while the duplicate waits.
    ports.idempotency.records[(7, "key-1")] = replace(done, state=PENDING,
                                                       since_ms=int(ports.clock() * 1000))
    waits = []

    def original_finishes(seconds):
        waits.append(seconds)
        ports.idempotency.records[(7, "key-1")] = done

    ports.sleep = original_finishes
    again = post(ports, 7, "once", "key-1")
    assert again == original and len(waits) == 1
    assert len(ports.tweets.outbox) == 1


def test_a_duplicate_that_outwaits_the_original_is_a_conflict_worth_retrying(ports):
    ports.idempotency.records[(7, "key-1")] = IdempotencyRecord(
        ports.ids.next_id(), model.fingerprint("once"), PENDING, int(ports.clock() * 1000))
    ports.idempotency_wait = 0.05
    with pytest.raises(IdempotencyConflict) as caught:
        post(ports, 7, "once", "key-1")
    assert caught.value.retry_in == 1
    assert ports.tweets.tweets == {}


def test_a_failed_original_is_taken_over_with_the_same_tweet_id(ports):
    ports.tweets.fail_next_save = True
    with pytest.raises(TimeoutError):
        post(ports, 7, "once", "key-1")
    abandoned = ports.idempotency.records[(7, "key-1")]
    assert abandoned.state == ABANDONED
    tweet = post(ports, 7, "once", "key-1")
    assert tweet.id == abandoned.tweet_id
    assert ports.idempotency.records[(7, "key-1")].state == DONE


def test_a_stale_pending_claim_is_taken_over(ports):
    old = IdempotencyRecord(ports.ids.next_id(), model.fingerprint("once"), PENDING,
                            int((ports.clock() - 60) * 1000))
    ports.idempotency.records[(7, "key-1")] = old
    assert post(ports, 7, "once", "key-1").id == old.tweet_id


def test_a_key_whose_tweet_was_deleted_is_a_conflict_not_worth_retrying(ports):
    tweet = post(ports, 7, "once", "key-1")
    handlers.delete_tweet(DeleteTweet(tweet.id, 7), ports)
    with pytest.raises(IdempotencyConflict) as caught:
        post(ports, 7, "once", "key-1")
    assert caught.value.retry_in is None


# ------------------------------------------------------------------ authors of a post


def test_a_post_answers_the_author_from_the_projection(ports):
    ports.authors.rows[7] = Author(7, "ann", "Ann", 3)
    posted = handlers.post_tweet(PostTweet(7, "hi", author_username="ann"), ports)
    assert posted.author == Author(7, "ann", "Ann", 3)
    assert ports.authors.writes == 0  # a known author is not written again


def test_a_brand_new_authors_post_seeds_the_projection_with_their_username(ports):
    posted = handlers.post_tweet(PostTweet(7, "first!", author_username="newbie"), ports)
    assert posted.author == Author(7, "newbie", "newbie", model.SEED_VERSION)
    assert ports.authors.rows[7] == posted.author
    # users' UserRegistered, arriving later, replaces the seed.
    ports.authors.record(Author(7, "newbie", "New Bie", 1))
    later = handlers.show_tweet(posted.tweet.id, ports)
    assert later.author == Author(7, "newbie", "New Bie", 1)


def test_a_post_without_a_username_by_an_unknown_author_names_only_the_id(ports):
    posted = handlers.post_tweet(PostTweet(7, "who am i"), ports)
    assert posted.author == Author(7)
    assert ports.authors.rows == {}


def test_a_post_is_answered_even_when_the_projection_does_not(ports):
    ports.authors.down = True
    posted = handlers.post_tweet(PostTweet(7, "still posted", author_username="ann"), ports)
    assert ports.tweets.tweets[posted.tweet.id] == posted.tweet
    assert posted.author == model.seed_author(7, "ann")


# --------------------------------------------------------------------------- deleting


def test_deleting_removes_the_tweet_everywhere_and_records_tweet_deleted(ports):
    tweet = post(ports, 7, "bye")
    handlers.delete_tweet(DeleteTweet(tweet.id, 7), ports)
    assert tweet.id not in ports.tweets.tweets
    assert tweet.id not in ports.cache.tweets
    assert handlers.show_home_timeline(7, 20, None, ports).items == []
    event = ports.tweets.events[-1]
    assert isinstance(event, TweetDeleted)
    assert (event.tweet_id, event.author_id) == (tweet.id, 7)


def test_only_the_author_may_delete_a_tweet(ports):
    tweet = post(ports, 7, "mine")
    with pytest.raises(NotTheAuthor):
        handlers.delete_tweet(DeleteTweet(tweet.id, 8), ports)
    assert tweet.id in ports.tweets.tweets


def test_deleting_an_unknown_tweet_is_not_found(ports):
    with pytest.raises(TweetNotFound) as caught:
        handlers.delete_tweet(DeleteTweet(999, 7), ports)
    assert caught.value.tweet_id == 999


def test_the_author_repeating_a_delete_succeeds_again_without_a_second_event(ports):
    tweet = post(ports, 7, "said twice")
    assert handlers.delete_tweet(DeleteTweet(tweet.id, 7), ports) is True
    assert handlers.delete_tweet(DeleteTweet(tweet.id, 7), ports) is False
    assert [type(e) for e in ports.tweets.events] == [TweetPosted, TweetDeleted]


def test_someone_else_deleting_a_deleted_tweet_learns_only_that_it_does_not_exist(ports):
    tweet = post(ports, 7, "gone")
    handlers.delete_tweet(DeleteTweet(tweet.id, 7), ports)
    with pytest.raises(TweetNotFound):
        handlers.delete_tweet(DeleteTweet(tweet.id, 8), ports)
    assert len(ports.tweets.events) == 2


def test_a_delete_is_no_longer_repeatable_once_the_store_forgot_it(ports):
    tweet = post(ports, 7, "long ago")
    handlers.delete_tweet(DeleteTweet(tweet.id, 7), ports)
    ports.tweets.deleted.clear()  # its remembered deletion expired
    with pytest.raises(TweetNotFound):
        handlers.delete_tweet(DeleteTweet(tweet.id, 7), ports)


# ---------------------------------------------------------------------------- reading


def test_a_tweet_is_read_from_the_cache_first_and_filled_from_the_store(ports):
    stored = Tweet(ports.ids.next_id(), 7, "stored", model.created_at_of(1 << 22))
    cached = Tweet(ports.ids.next_id(), 7, "cached", model.created_at_of(1 << 22))
    ports.tweets.tweets[stored.id] = stored
    ports.cache.tweets[cached.id] = cached
    assert handlers.show_tweet(cached.id, ports).tweet == cached
    assert handlers.show_tweet(stored.id, ports).tweet == stored
    assert ports.cache.tweets[stored.id] == stored
    with pytest.raises(TweetNotFound):
        handlers.show_tweet(404, ports)


def test_author_pages_run_newest_first_without_duplicates(ports):
    posted = [post(ports, 7, f"t{i}").id for i in range(7)]
    seen = every_page(lambda limit, before: handlers.list_user_tweets(7, limit, before, ports),
                      3)
    assert seen == sorted(posted, reverse=True)


def test_a_page_that_ends_exactly_at_the_limit_is_the_last(ports):
    for i in range(3):
        post(ports, 7, f"t{i}")
    assert handlers.list_user_tweets(7, 3, None, ports).last_id is None


def test_a_page_by_username_is_the_page_of_the_author_the_projection_names(ports):
    ports.authors.rows[7] = Author(7, "ann", "Ann", 2)
    posted = [post(ports, 7, f"t{i}").id for i in range(5)]
    post(ports, 8, "someone else's")
    by_name = handlers.list_tweets_by_username("ann", 2, None, ports)
    assert by_name == handlers.list_user_tweets(7, 2, None, ports)
    assert [i.author for i in by_name.items] == [Author(7, "ann", "Ann", 2)] * 2
    seen = every_page(
        lambda limit, before: handlers.list_tweets_by_username("ann", limit, before, ports), 2)
    assert seen == sorted(posted, reverse=True)


def test_a_known_author_without_tweets_has_an_empty_last_page(ports):
    ports.authors.rows[7] = Author(7, "ann", "Ann", 1)
    page = handlers.list_tweets_by_username("ann", 20, None, ports)
    assert (page.items, page.last_id) == ([], None)


def test_an_author_seeded_by_a_first_post_is_found_by_username(ports):
    tweet = post(ports, 8, "hello", author_username="newbie")
    page = handlers.list_tweets_by_username("newbie", 20, None, ports)
    assert [i.tweet.id for i in page.items] == [tweet.id]


@pytest.mark.parametrize("username", ["nobody", "Ann", "a/b", "", "x" * 31])
def test_a_username_the_projection_does_not_hold_is_author_not_found(ports, username):
    ports.authors.rows[7] = Author(7, "ann", "Ann", 1)
    post(ports, 7, "mine")
    with pytest.raises(AuthorNotFound) as caught:
        handlers.list_tweets_by_username(username, 20, None, ports)
    assert str(caught.value) == "No such user." and caught.value.username == username


def test_a_page_by_username_needs_the_projection(ports):
    ports.authors.rows[7] = Author(7, "ann", "Ann", 1)
    ports.authors.down = True
    with pytest.raises(DependencyUnavailable):
        handlers.list_tweets_by_username("ann", 20, None, ports)


def test_every_tweet_of_a_page_carries_its_author_from_the_projection(ports):
    ports.authors.rows[7] = Author(7, "ann", "Ann", 2)
    ports.authors.rows[99] = Author(99, "star", "The Star", 5)
    ports.followees = FakeFollowees([99])
    mine, theirs = post(ports, 7, "mine"), post(ports, 99, "famous")
    page = handlers.show_home_timeline(7, 20, None, ports)
    assert [(i.tweet.id, i.author.username, i.author.display_name) for i in page.items] == [
        (theirs.id, "star", "The Star"), (mine.id, "ann", "Ann")]
    assert page.degraded == ()


def test_an_author_the_projection_does_not_hold_yet_shows_by_id_only(ports):
    tweet = post(ports, 8, "registered a moment ago")
    item = handlers.show_tweet(tweet.id, ports)
    assert item.author == Author(8) and item.author.username is None


def test_without_the_projection_a_page_is_served_with_ids_only_and_says_so(ports):
    ports.authors.rows[7] = Author(7, "ann", "Ann", 2)
    tweet = post(ports, 7, "mine")
    ports.authors.down = True
    page = handlers.list_user_tweets(7, 20, None, ports)
    assert [(i.tweet.id, i.author) for i in page.items] == [(tweet.id, Author(7))]
    assert page.degraded == (model.AUTHORS_UNAVAILABLE,)


def test_the_home_timeline_merges_celebrity_tweets_in_order(ports):
    mine = post(ports, 7, "mine")
    celeb = post(ports, 99, "famous")
    ports.home.timelines[99] = set()  # the celebrity's own timeline is not ours
    ports.home.timelines[7].add(celeb.id)  # also fanned out: must appear once
    ports.followees = FakeFollowees([99])
    newer = post(ports, 99, "newer")
    page = handlers.show_home_timeline(7, 20, None, ports)
    assert [i.tweet.id for i in page.items] == [newer.id, celeb.id, mine.id]
    assert page.degraded == ()


def test_home_timeline_pages_continue_below_the_cursor_across_both_sources(ports):
    ports.followees = FakeFollowees([99])
    posted = []
    for i in range(5):
        posted.append(post(ports, 7, f"mine {i}").id)
        posted.append(post(ports, 99, f"celeb {i}").id)
    seen = every_page(lambda limit, before: handlers.show_home_timeline(7, limit, before, ports),
                      4)
    assert seen == sorted(posted, reverse=True)


def test_without_users_the_home_timeline_is_served_without_the_celebrity_merge(ports):
    ports.authors.rows[7] = Author(7, "ann", "Ann", 2)
    mine = post(ports, 7, "mine")
    ports.followees = FakeFollowees(down=True)
    page = handlers.show_home_timeline(7, 20, None, ports)
    assert [(i.tweet.id, i.author.username) for i in page.items] == [(mine.id, "ann")]
    assert page.degraded == (model.CELEBRITY_MERGE_UNAVAILABLE,)


def test_backfill_ids_are_the_authors_newest(ports):
    posted = [post(ports, 7, f"b{i}").id for i in range(4)]
    assert handlers.list_author_tweet_ids(7, 3, ports) == sorted(posted, reverse=True)[:3]


# ------------------------------------------------------------------------ without Redis


def stop_redis(ports: Ports) -> RedisDown:
    down = RedisDown()
    ports.home = ports.cache = ports.idempotency = down
    return down


def test_without_redis_the_home_timeline_is_rebuilt_from_followees_tweets(ports):
    mine = post(ports, 7, "mine")
    friend = [post(ports, 8, f"friend {i}") for i in range(3)]
    post(ports, 9, "a stranger")
    ports.followees = FakeFollowees(following=[8])
    down = stop_redis(ports)
    page = handlers.show_home_timeline(7, 20, None, ports)
    assert [i.tweet.id for i in page.items] == sorted([mine.id, *(t.id for t in friend)],
                                                      reverse=True)
    assert page.degraded == (model.HOME_REBUILT,) == ("home-timeline-rebuilt",)
    assert down.calls == 1  # the failed page read only: no cache read or fill
    assert page.last_id is None


def test_with_the_fallback_switched_off_a_home_timeline_without_redis_is_refused(ports):
    """The chaos experiments' `home-fallback` switch: no rebuild, the outage shows."""
    post(ports, 8, "friend")
    ports.followees = FakeFollowees(following=[8])
    ports.rebuild_without_redis = False
    stop_redis(ports)
    with pytest.raises(DependencyUnavailable):
        handlers.show_home_timeline(7, 20, None, ports)


def test_a_rebuilt_home_timeline_pages_below_the_cursor(ports):
    posted = [post(ports, 8 + i % 2, f"t{i}").id for i in range(7)]
    ports.followees = FakeFollowees(following=[8, 9])
    stop_redis(ports)
    seen = every_page(lambda limit, before: handlers.show_home_timeline(7, limit, before, ports),
                      3)
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
    handlers.show_home_timeline(7, 20, None, ports)
    assert ports.followees.asked_limits == [50]
    [(authors, limit)] = read_authors
    assert authors[0] == 7 and len(authors) == 51 and limit == 21


def test_without_redis_and_users_the_home_timeline_is_unavailable(ports):
    ports.followees = FakeFollowees(down=True)
    stop_redis(ports)
    with pytest.raises(DependencyUnavailable):
        handlers.show_home_timeline(7, 20, None, ports)


def test_without_redis_a_tweet_is_still_accepted_and_stored_with_its_event(ports):
    down = stop_redis(ports)
    tweet = post(ports, 7, "through the outage")
    assert ports.tweets.tweets[tweet.id] == tweet
    assert [e.tweet_id for e in ports.tweets.events] == [tweet.id]
    assert down.calls == 1  # the best-effort Redis side was tried once


def test_without_redis_a_post_with_an_idempotency_key_is_refused_before_writing(ports):
    stop_redis(ports)
    with pytest.raises(DependencyUnavailable) as caught:
        post(ports, 7, "exactly once", "k")
    assert caught.value.retry_in == 2
    assert ports.tweets.tweets == {} and ports.tweets.outbox == []


def test_a_failed_batch_keeps_its_error_when_redis_is_gone_too(ports, caplog):
    ports.tweets.fail_next_save = True
    ports.idempotency.replace = RedisDown().replace
    with caplog.at_level(logging.WARNING, logger="murmur.timeline"):
        # The batch's own error is the one the caller sees; the lost hand-over is logged.
        with pytest.raises(TimeoutError):
            post(ports, 7, "x", "k")
    assert "idempotency claim left pending" in caplog.text
    assert ports.idempotency.records[(7, "k")].state == PENDING


def test_without_redis_a_delete_still_removes_the_tweet(ports):
    tweet = post(ports, 7, "short-lived")
    stop_redis(ports)
    handlers.delete_tweet(DeleteTweet(tweet.id, 7), ports)
    assert tweet.id not in ports.tweets.tweets
    assert isinstance(ports.tweets.events[-1], TweetDeleted)


def test_without_the_cache_tweets_are_read_from_the_store(ports):
    tweet = post(ports, 7, "cached once")
    ports.cache = RedisDown()
    assert handlers.show_tweet(tweet.id, ports).tweet == tweet
