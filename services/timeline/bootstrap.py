"""Wire the timeline's handlers to their adapters; tests replace any of them by name.

`bootstrap()` builds what the HTTP service needs, `bootstrap_projection()` what the author
projection process needs (Cassandra only). Nothing here connects: clients connect on
first use, after any fork.
"""

from __future__ import annotations

from typing import Any

from common import config as common_config
from common import home_timeline, resilience, topics
from common.client import peer_breaker
from common.service import Overrides, Service
from timeline import config as timeline_config
from timeline.adapters import cassandra_store, redis_store, users_client
from timeline.adapters.cassandra_authors import CachedAuthors, CassandraAuthors
from timeline.adapters.guard import outage_breaker
from timeline.service_layer.ports import Ports, ProjectionPorts

OVERRIDES = {"cassandra", "redis", "tweets", "cache", "home", "idempotency", "followees",
             "authors", "ids", "breakers"}
PROJECTION_OVERRIDES = {"cassandra", "authors"}


def breakers(cfg: timeline_config.Config) -> dict[str, resilience.Breaker]:
    """The process's breakers, one per dependency, failing on outages only; each named
    `timeline.<dependency>` in metrics and logs."""
    return {
        "cassandra": outage_breaker(
            "timeline.cassandra", "cassandra", fail_max=cfg.cassandra_breaker_fail_max,
            reset_timeout=cfg.cassandra_breaker_reset),
        "redis": outage_breaker(
            "timeline.redis", "redis", fail_max=cfg.redis_breaker_fail_max,
            reset_timeout=cfg.redis_breaker_reset),
        "users": peer_breaker("timeline.users", fail_max=cfg.users_breaker_fail_max,
                              reset_timeout=cfg.users_breaker_reset),
    }


def bootstrap(config: timeline_config.Config | None = None,
              **overrides: Any) -> Service[timeline_config.Config, Ports]:
    """The timeline service with production adapters; `overrides` replace any of them.

    Override names: cassandra (a CassandraSession), redis (a client), tweets, cache, home,
    idempotency, followees, authors, ids, breakers (a dict like `breakers(config)`).
    What the caller passes, the caller closes.
    """
    cfg = config or timeline_config.load()
    given = Overrides(OVERRIDES, overrides)
    closers: list = []
    guards = given.get("breakers", lambda: breakers(cfg))
    db = given.get("cassandra", lambda: cassandra_store.CassandraSession(
        cfg.stores, cfg.cassandra_timeout, breaker=guards["cassandra"],
        read_attempts=cfg.read_attempts), closers, close=lambda session: session.shutdown())
    client = given.get("redis", lambda: redis_store.connect(cfg.stores, timeout=cfg.redis_timeout),
                       closers)
    redis_guard = redis_store.guard(guards["redis"])
    cache = given.get("cache", lambda: redis_store.RedisTweetCache(
        client, cfg.tweet_cache_ttl, guarded=redis_guard))
    idempotency = given.get("idempotency", lambda: redis_store.RedisIdempotency(
        client, cfg.idempotency_ttl, guarded=redis_guard))
    home = given.get("home", lambda: redis_store.RedisHomeTimelines(
        client, home_timeline.HomeTimelines(client, cap=cfg.home_timeline_cap), cache,
        idempotency, cfg.wakeup_channel,
        bucket_of=lambda author_id: cassandra_store.outbox_bucket(author_id,
                                                                  cfg.outbox_buckets),
        guarded=redis_guard))

    def celebrity_followees() -> users_client.CachedCelebrityFollowees:
        users = users_client.UsersClient(cfg.users_url, cfg.users_timeout,
                                         breaker=guards["users"], attempts=cfg.read_attempts)
        closers.append(users.close)
        return users_client.CachedCelebrityFollowees(
            users, client, cfg.celebrity_threshold, cfg.celebrity_cache_ttl,
            cfg.celebrity_authors_max, guarded=redis_guard)

    ports = Ports(
        tweets=given.get("tweets", lambda: cassandra_store.CassandraTweets(
            db, cfg.stores.topic(topics.TWEETS), cfg.outbox_buckets, cfg.deleted_tweet_ttl)),
        cache=cache,
        home=home,
        idempotency=idempotency,
        followees=given.get("followees", celebrity_followees),
        authors=given.get("authors", lambda: CachedAuthors(
            CassandraAuthors(db), cfg.author_cache_ttl, cfg.author_cache_size)),
        ids=given.get("ids", lambda: redis_store.leased_ids(client, cfg.process_name), closers,
                      close=lambda ids: ids.release()),
        idempotency_wait=cfg.idempotency_wait,
        celebrity_authors_max=cfg.celebrity_authors_max,
        rebuild_followees_max=cfg.rebuild_followees_max,
        rebuild_without_redis="home-fallback" not in common_config.disabled_safeguards(),
    )
    checks = {"cassandra": db.ping, "redis": lambda: _ping(client)}
    return Service("timeline", cfg, ports, checks, closers)


def bootstrap_projection(config: timeline_config.Config | None = None,
                         **overrides: Any) -> Service[timeline_config.Config, ProjectionPorts]:
    """What the author projection writes to: the authors table in Cassandra.

    Override names: cassandra (a CassandraSession), authors. No breaker: the consumer
    loop backs off by itself while Cassandra is down.
    """
    cfg = config or timeline_config.load()
    given = Overrides(PROJECTION_OVERRIDES, overrides)
    closers: list = []
    db = given.get("cassandra", lambda: cassandra_store.CassandraSession(
        cfg.stores, cfg.cassandra_timeout), closers, close=lambda session: session.shutdown())
    ports = ProjectionPorts(authors=given.get("authors", lambda: CassandraAuthors(db)))
    return Service("timeline-authors", cfg, ports, {"cassandra": db.ping}, closers)


def _ping(client: Any) -> None:
    if not client.ping():
        raise ConnectionError("redis did not answer PING")
