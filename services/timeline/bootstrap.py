"""Wire the timeline's handlers to their adapters; tests replace any of them by name."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from common import topics
from common.home_timeline import HomeTimelines
from timeline import config as timeline_config
from timeline.adapters import cassandra_store, redis_store, users_client
from timeline.domain import Ports


@dataclass
class Services:
    """The wired service: handler ports plus the clients behind them."""

    config: timeline_config.Config
    ports: Ports
    cassandra: cassandra_store.CassandraSession
    redis: Any
    checks: dict[str, Callable[[], None]] = field(default_factory=dict)

    def close(self) -> None:
        """Release the worker-id lease and close the store clients."""
        release = getattr(self.ports.ids, "release", None)
        if release is not None:
            release()
        self.cassandra.shutdown()
        self.redis.close()


def bootstrap(config: timeline_config.Config | None = None, **overrides: Any) -> Services:
    """Build the service with production adapters; `overrides` replace any of them.

    Override names: cassandra, redis, tweets, cache, home, idempotency, followees, ids.
    Nothing here connects: clients connect on first use, after any fork.
    """
    cfg = config or timeline_config.load()
    db = overrides.get("cassandra") or cassandra_store.CassandraSession(
        cfg.stores, cfg.cassandra_timeout)
    client = overrides.get("redis") or redis_store.connect(cfg.stores)
    cache = overrides.get("cache") or redis_store.RedisTweetCache(client, cfg.tweet_cache_ttl)
    idempotency = overrides.get("idempotency") or redis_store.RedisIdempotency(
        client, cfg.idempotency_ttl)
    home = overrides.get("home") or redis_store.RedisHomeState(
        client, HomeTimelines(client, cap=cfg.home_timeline_cap), cache, idempotency,
        cfg.wakeup_channel)
    followees = overrides.get("followees") or users_client.CachedCelebrityFollowees(
        users_client.UsersClient(cfg.users_url, cfg.users_timeout), client,
        cfg.celebrity_threshold, cfg.celebrity_cache_ttl, cfg.celebrity_authors_max)
    ports = Ports(
        tweets=overrides.get("tweets") or cassandra_store.CassandraTweets(db),
        cache=cache,
        home=home,
        idempotency=idempotency,
        followees=followees,
        ids=overrides.get("ids") or redis_store.leased_ids(client, cfg.process_name),
        tweets_topic=cfg.stores.topic(topics.TWEETS),
        outbox_buckets=cfg.outbox_buckets,
        idempotency_wait=cfg.idempotency_wait,
        celebrity_authors_max=cfg.celebrity_authors_max,
    )
    checks = {"cassandra": db.ping, "redis": lambda: _ping(client)}
    return Services(cfg, ports, db, client, checks)


def _ping(client: Any) -> None:
    if not client.ping():
        raise ConnectionError("redis did not answer PING")
