"""The timeline app against the test profile's real Cassandra and Redis."""

from __future__ import annotations

import random
import threading
from dataclasses import replace

import pytest
from cassandra import ConsistencyLevel, Unavailable
from cassandra.cluster import NoHostAvailable

from common import events, home_timeline, topics
from timeline.adapters import cassandra_store, redis_store, users_client
from timeline.adapters.cassandra_authors import CassandraAuthors
from timeline.domain.commands import DeleteTweet
from timeline.domain.errors import DependencyUnavailable
from timeline.domain.events import TweetPosted
from timeline.domain.model import Author, Tweet, created_at_of, seed_author
from timeline.entrypoints.app import create_app
from timeline.service_layer import handlers


@pytest.fixture(scope="module")
def app(timeline_cfg, followees, db, rds):
    app = create_app(timeline_cfg, followees=followees, cassandra=db, redis=rds)
    yield app
    app.extensions["timeline"].close()


@pytest.fixture(scope="module")
def service(app):
    return app.extensions["timeline"]


@pytest.fixture
def client(app):
    return app.test_client()


def new_user_id() -> int:
    return random.randrange(1 << 40, 1 << 62)


def post(client, author_id: int, text: str, key: str | None = None,
         username: str | None = None):
    headers = {"X-User-Id": str(author_id)}
    if key:
        headers["Idempotency-Key"] = key
    if username:
        headers["Murmur-Username"] = username
    return client.post("/tweets", json={"text": text}, headers=headers)


def cql(db, statement: str, *args):
    return list(db.session.execute(statement.format(ks=db.stores.keyspace), args))


def unrelayed_author(buckets: int) -> int:
    """An author whose events land in a bucket beyond the relay's, so rows stay put."""
    while True:
        author = new_user_id()
        if cassandra_store.outbox_bucket(author, buckets) >= 1000:
            return author


def test_readiness_checks_cassandra_and_redis(client):
    resp = client.get("/readyz")
    assert resp.status_code == 200
    assert resp.json["checks"] == ["cassandra", "redis"]


def test_a_post_answers_201_with_the_tweet_and_its_author(client):
    author = new_user_id()
    resp = post(client, author, "  hello murmur  ")
    assert resp.status_code == 201
    body = resp.json
    assert list(body) == ["id", "author", "text", "created_at"]
    assert body["author"] == {"id": str(author), "username": None, "display_name": None}
    assert body["text"] == "hello murmur"
    assert isinstance(body["id"], str) and body["created_at"].endswith("Z")
    assert client.get(f"/tweets/{body['id']}").json == body


def test_a_first_post_seeds_the_author_at_the_lowest_version(client, db):
    author, name = new_user_id(), f"seed_{random.randrange(10**9)}"
    body = post(client, author, "my first tweet", username=name).json
    assert body["author"] == {"id": str(author), "username": name, "display_name": name}
    [row] = cql(db, "SELECT username, version, writetime(username) AS written "
                "FROM {ks}.authors WHERE id = %s", author)
    assert (row.username, row.version, row.written) == (name, 0, 0)
    [by_name] = cql(db, "SELECT id, writetime(id) AS written "
                    "FROM {ks}.authors_by_username WHERE username = %s", name)
    assert (by_name.id, by_name.written) == (author, 0)


def test_the_projection_keeps_the_newest_version_whatever_the_order(db):
    authors = CassandraAuthors(db)
    author = new_user_id()
    authors.record(Author(author, "ann", "Ann C.", 3))
    authors.record(Author(author, "ann", "Ann B.", 2))  # late
    authors.record(seed_author(author, "ann"))  # a post, after users' events
    assert authors.get_many([author]) == {author: Author(author, "ann", "Ann C.", 3)}
    authors.record(Author(author, "ann", "Ann D.", 4))
    assert authors.get_many([author])[author].display_name == "Ann D."


def test_the_projection_finds_an_author_by_username_at_the_newest_version(db):
    authors = CassandraAuthors(db)
    author, name = new_user_id(), f"byname_{random.randrange(10**9)}"
    assert authors.id_by_username(name) is None
    authors.record(Author(author, name, "By Name", 3))
    authors.record(seed_author(author, name))  # a post's seed, after users' event
    assert authors.id_by_username(name) == author
    [row] = cql(db, "SELECT id, writetime(id) AS written "
                "FROM {ks}.authors_by_username WHERE username = %s", name)
    assert (row.id, row.written) == (author, 3)


def test_a_page_by_username_is_the_page_of_the_author_it_names(client):
    author, name = new_user_id(), f"pager_{random.randrange(10**9)}"
    posted = [post(client, author, f"by name {i}", username=name).json["id"]
              for i in range(3)]
    first = client.get(f"/authors/by-username/{name}/tweets?limit=2")
    assert first.status_code == 200
    assert first.json == client.get(f"/authors/{author}/tweets?limit=2").json
    rest = client.get(f"/authors/by-username/{name}/tweets?limit=2"
                      f"&cursor={first.json['next_cursor']}").json
    assert [t["id"] for t in first.json["items"] + rest["items"]] == \
        sorted(posted, key=int, reverse=True)
    assert rest["next_cursor"] is None
    assert {t["author"]["username"] for t in first.json["items"]} == {name}


def test_a_username_the_projection_does_not_hold_is_a_404(client):
    resp = client.get(f"/authors/by-username/nobody_{random.randrange(10**9)}/tweets")
    assert resp.status_code == 404
    assert resp.mimetype == "application/problem+json"
    assert resp.json["detail"] == "No such user."


def test_the_projection_reads_many_authors_at_once_and_skips_the_unknown(db):
    authors = CassandraAuthors(db)
    known = [new_user_id() for _ in range(5)]
    for i, author in enumerate(known):
        authors.record(Author(author, f"user{i}", f"User {i}", 1))
    unknown = new_user_id()
    found = authors.get_many([*known, unknown])
    assert sorted(found) == sorted(known)
    assert found[known[2]] == Author(known[2], "user2", "User 2", 1)


@pytest.mark.parametrize("payload", [{"text": ""}, {"text": " " * 5}, {"text": "x" * 281},
                                     {}, {"text": 5}, ["text"]])
def test_an_invalid_post_is_a_422_problem(client, payload):
    resp = client.post("/tweets", json=payload, headers={"X-User-Id": "5"})
    assert resp.status_code == 422
    assert resp.mimetype == "application/problem+json"
    assert resp.json["errors"]


def test_a_post_without_a_user_is_a_401(client):
    assert client.post("/tweets", json={"text": "hi"}).status_code == 401


def test_the_batch_writes_tweet_author_row_and_outbox_event_together(service, db, timeline_cfg):
    buckets = 100_000
    repo = cassandra_store.CassandraTweets(db, timeline_cfg.stores.topic(topics.TWEETS), buckets)
    ids = service.ports.ids
    author = unrelayed_author(buckets)
    bucket = cassandra_store.outbox_bucket(author, buckets)
    tweet_id = ids.next_id()
    tweet = Tweet(tweet_id, author, "batched", created_at_of(tweet_id))
    event = TweetPosted(ids.next_id(), tweet_id, author, tweet.created_at)
    repo.save_posted(tweet, event, {"request_id": "r-1"})
    try:
        [row] = cql(db, "SELECT author_id, text FROM {ks}.tweets WHERE id = %s", tweet_id)
        assert (row.author_id, row.text) == (author, "batched")
        assert cql(db, "SELECT tweet_id FROM {ks}.user_tweets WHERE author_id = %s",
                   author)[0].tweet_id == tweet_id
        [event_row] = cql(db, "SELECT topic, key, payload, headers FROM {ks}.outbox "
                          "WHERE bucket = %s AND event_id = %s", bucket, event.event_id)
        assert (event_row.topic, event_row.key) == ("test.tweets.v1", str(author))
        assert dict(event_row.headers) == {"request_id": "r-1"}
        envelope = events.Event.from_json(event_row.payload)
        assert envelope.type == "TweetPosted" and envelope.payload["tweet_id"] == str(tweet_id)
    finally:
        cql(db, "DELETE FROM {ks}.outbox WHERE bucket = %s", bucket)


def test_the_batch_runs_at_the_configured_consistency_level(service, db, timeline_cfg):
    assert db.batch().consistency_level == ConsistencyLevel.ONE
    # With one replica, TWO cannot be met: the write must be refused, and nothing written.
    strict = cassandra_store.CassandraSession(
        replace(timeline_cfg.stores, cassandra_consistency="TWO"), request_timeout=5)
    try:
        repo = cassandra_store.CassandraTweets(strict, "test.tweets.v1", 16)
        tweet_id = service.ports.ids.next_id()
        author = new_user_id()
        tweet = Tweet(tweet_id, author, "strict", created_at_of(tweet_id))
        event = TweetPosted(service.ports.ids.next_id(), tweet_id, author, tweet.created_at)
        with pytest.raises(DependencyUnavailable) as caught:
            repo.save_posted(tweet, event, {})
        assert isinstance(caught.value.__cause__, NoHostAvailable)
        [refusal] = caught.value.__cause__.errors.values()
        assert isinstance(refusal, Unavailable)
        assert refusal.consistency == ConsistencyLevel.TWO
        assert cql(db, "SELECT id FROM {ks}.tweets WHERE id = %s", tweet_id) == []
        assert cql(db, "SELECT tweet_id FROM {ks}.user_tweets WHERE author_id = %s",
                   author) == []
    finally:
        strict.shutdown()


def test_the_same_idempotency_key_twice_makes_one_tweet(client, db):
    author = new_user_id()
    first = post(client, author, "only once", key="k-1")
    second = post(client, author, "only once", key="k-1")
    assert (first.status_code, second.status_code) == (201, 201)
    assert first.json == second.json
    assert len(cql(db, "SELECT tweet_id FROM {ks}.user_tweets WHERE author_id = %s",
                   author)) == 1


def test_concurrent_requests_with_one_key_make_one_tweet(app, db):
    author = new_user_id()
    barrier = threading.Barrier(6)
    answers = []

    def send():
        client = app.test_client()
        barrier.wait()
        answers.append(post(client, author, "racing", key="same-key"))

    threads = [threading.Thread(target=send) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert [a.status_code for a in answers] == [201] * 6
    assert len({a.json["id"] for a in answers}) == 1
    assert len(cql(db, "SELECT tweet_id FROM {ks}.user_tweets WHERE author_id = %s",
                   author)) == 1


def test_a_reused_key_with_another_text_is_a_422(client):
    author = new_user_id()
    assert post(client, author, "first", key="k").status_code == 201
    resp = post(client, author, "second", key="k")
    assert resp.status_code == 422
    assert resp.json["errors"][0]["field"] == "Idempotency-Key"


def test_the_author_sees_the_tweet_in_the_home_timeline_at_once(client, rds):
    author = new_user_id()
    tweet = post(client, author, "read your writes").json
    page = client.get("/timeline", headers={"X-User-Id": str(author)}).json
    assert page["items"][0] == tweet
    assert rds.exists(redis_store.tweet_key(int(tweet["id"])))


def test_delete_removes_rows_cache_and_own_timeline_entry(client, db, rds):
    author = new_user_id()
    tweet_id = int(post(client, author, "short-lived").json["id"])
    headers = {"X-User-Id": str(author)}
    assert client.delete(f"/tweets/{tweet_id}", headers=headers).status_code == 204
    assert cql(db, "SELECT id FROM {ks}.tweets WHERE id = %s", tweet_id) == []
    assert cql(db, "SELECT tweet_id FROM {ks}.user_tweets WHERE author_id = %s",
               author) == []
    assert rds.get(redis_store.tweet_key(tweet_id)) == redis_store.DELETED
    assert rds.zscore(home_timeline.key(author), home_timeline.encode(tweet_id)) \
        is None
    assert client.get(f"/tweets/{tweet_id}").status_code == 404
    assert client.get("/timeline", headers=headers).json["items"] == []


def test_a_repeated_delete_answers_its_author_204_and_anyone_else_404(client, db, timeline_cfg):
    author = new_user_id()
    tweet_id = int(post(client, author, "retried").json["id"])
    headers = {"X-User-Id": str(author)}
    assert client.delete(f"/tweets/{tweet_id}", headers=headers).status_code == 204
    assert client.delete(f"/tweets/{tweet_id}", headers=headers).status_code == 204
    assert client.delete(f"/tweets/{tweet_id}",
                         headers={"X-User-Id": str(author + 1)}).status_code == 404
    assert client.get(f"/tweets/{tweet_id}").status_code == 404
    [remembered] = cql(db, "SELECT author_id, TTL(author_id) AS ttl FROM {ks}.deleted_tweets "
                           "WHERE id = %s", tweet_id)
    assert remembered.author_id == author
    assert 0 < remembered.ttl <= timeline_cfg.deleted_tweet_ttl


def test_a_repeated_delete_writes_no_second_tweet_deleted(service, db, timeline_cfg):
    buckets = 100_000
    repo = cassandra_store.CassandraTweets(db, timeline_cfg.stores.topic(topics.TWEETS), buckets)
    ports = replace(service.ports, tweets=repo)
    author = unrelayed_author(buckets)
    bucket = cassandra_store.outbox_bucket(author, buckets)
    tweet_id = ports.ids.next_id()
    tweet = Tweet(tweet_id, author, "once", created_at_of(tweet_id))
    repo.save_posted(tweet, TweetPosted(ports.ids.next_id(), tweet_id, author, tweet.created_at),
                     {})
    try:
        assert handlers.delete_tweet(DeleteTweet(tweet_id, author), ports) is True
        assert handlers.delete_tweet(DeleteTweet(tweet_id, author), ports) is False
        types = [events.Event.from_json(row.payload).type for row in
                 cql(db, "SELECT payload FROM {ks}.outbox WHERE bucket = %s", bucket)]
        assert types == ["TweetPosted", "TweetDeleted"]
        assert repo.deleted_author(tweet_id) == author
    finally:
        cql(db, "DELETE FROM {ks}.outbox WHERE bucket = %s", bucket)


def test_a_read_racing_a_delete_cannot_put_the_tweet_back_in_the_cache(client, service):
    author = new_user_id()
    body = post(client, author, "racy").json
    stale = service.ports.cache.get_many([int(body["id"])])[int(body["id"])]
    assert client.delete(f"/tweets/{body['id']}",
                         headers={"X-User-Id": str(author)}).status_code == 204
    service.ports.cache.put_many([stale])  # a reader that loaded it just before
    assert client.get(f"/tweets/{body['id']}").status_code == 404


def test_only_the_author_may_delete_and_unknown_tweets_are_404(client):
    author = new_user_id()
    tweet_id = post(client, author, "mine").json["id"]
    resp = client.delete(f"/tweets/{tweet_id}", headers={"X-User-Id": str(author + 1)})
    assert resp.status_code == 403 and resp.mimetype == "application/problem+json"
    assert client.get(f"/tweets/{tweet_id}").status_code == 200
    assert client.delete("/tweets/1", headers={"X-User-Id": str(author)}).status_code == 404
    assert client.get("/tweets/not-an-id").status_code == 404


def test_author_pages_run_newest_first_without_duplicates(client):
    author = new_user_id()
    posted = [post(client, author, f"tweet {i}").json["id"] for i in range(7)]
    seen, cursor = [], None
    for _ in range(10):
        query = f"/authors/{author}/tweets?limit=3" + (f"&cursor={cursor}" if cursor else "")
        page = client.get(query).json
        seen += [t["id"] for t in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(posted, key=int, reverse=True)


def test_a_bad_cursor_or_limit_is_a_422(client):
    assert client.get("/authors/5/tweets?cursor=nonsense").status_code == 422
    assert client.get("/authors/5/tweets?limit=0").status_code == 422
    assert client.get("/timeline?limit=101", headers={"X-User-Id": "5"}).status_code == 422


def test_the_home_timeline_merges_followed_celebrities_tweets(client, followees):
    reader, celebrity = new_user_id(), new_user_id()
    own = post(client, reader, "my own").json["id"]
    famous = [post(client, celebrity, f"famous {i}").json["id"] for i in range(3)]
    followees.by_user[reader] = [celebrity]
    headers = {"X-User-Id": str(reader)}
    first = client.get("/timeline?limit=2", headers=headers).json
    rest = client.get(f"/timeline?limit=2&cursor={first['next_cursor']}", headers=headers).json
    ids = [t["id"] for t in first["items"] + rest["items"]]
    assert ids == sorted([own, *famous], key=int, reverse=True)
    assert rest["next_cursor"] is None


def test_without_users_the_timeline_is_served_degraded(timeline_cfg):
    app = create_app(replace(timeline_cfg, users_url="http://127.0.0.1:9", users_timeout=0.2))
    try:
        client = app.test_client()
        reader, name = new_user_id(), f"reader_{random.randrange(10**9)}"
        own = post(client, reader, "still here", username=name).json["id"]
        resp = client.get("/timeline", headers={"X-User-Id": str(reader)})
        assert resp.status_code == 200
        assert resp.headers["Murmur-Degraded"] == "celebrity-merge-unavailable"
        assert [(t["id"], t["author"]["username"]) for t in resp.json["items"]] == [(own, name)]
        # Single tweets and author pages never needed users at all.
        assert client.get(f"/tweets/{own}").json["author"]["username"] == name
        page = client.get(f"/authors/{reader}/tweets")
        assert page.status_code == 200 and "Murmur-Degraded" not in page.headers
    finally:
        app.extensions["timeline"].close()


def test_celebrity_followees_are_cached_briefly_in_redis(rds):
    class CountingUsers:
        calls = 0

        def followee_ids(self, user_id, min_followers, limit, pulled=False):
            CountingUsers.calls += 1
            return [11, 12] if min_followers == 2000 else []

    cached = users_client.CachedCelebrityFollowees(CountingUsers(), rds, 2000, 5, 100)
    user = new_user_id()
    assert cached.celebrities(user) == [11, 12]
    assert cached.celebrities(user) == [11, 12]
    assert CountingUsers.calls == 1
    assert 0 < rds.ttl(f"celebs:{user}") <= 5


def test_backfill_ids_are_the_newest_first_and_bounded(client):
    author = new_user_id()
    posted = [post(client, author, f"b{i}").json["id"] for i in range(4)]
    resp = client.get(f"/internal/authors/{author}/tweet-ids?limit=3")
    assert resp.json == {"ids": sorted(posted, key=int, reverse=True)[:3]}
    assert client.get(f"/internal/authors/{author}/tweet-ids?limit=801").status_code == 422


def test_two_processes_lease_different_worker_ids(rds):
    first = redis_store.leased_ids(rds, "test-a")
    second = redis_store.leased_ids(rds, "test-b")
    try:
        first.next_id(), second.next_id()
        assert first.worker_id != second.worker_id
    finally:
        first.release()
        second.release()
