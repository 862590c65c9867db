"""Wire the timeline's handlers to their adapters; tests replace any of them by name."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from common import config as common_config, resilience, topics, tracing
from common.home_timeline import HomeTimelines
from timeline import config as timeline_config
from timeline.adapters import cassandra_store, redis_store, users_client
from timeline.adapters.guard import transient_breaker
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


def breakers(cfg: timeline_config.Config) -> dict[str, resilience.Breaker]:
    """The process's breakers, one per dependency, failing on outages only."""
    return {
        "cassandra": transient_breaker(
            "cassandra", cassandra_store.TRANSIENT, fail_max=cfg.cassandra_breaker_fail_max,
            reset_timeout=cfg.cassandra_breaker_reset),
        "redis": transient_breaker(
            "redis", redis_store.TRANSIENT, fail_max=cfg.redis_breaker_fail_max,
            reset_timeout=cfg.redis_breaker_reset),
        "users": transient_breaker(
            "users", users_client.TRANSIENT, fail_max=cfg.users_breaker_fail_max,
            reset_timeout=cfg.users_breaker_reset),
    }


def bootstrap(config: timeline_config.Config | None = None, **overrides: Any) -> Services:
    """Build the service with production adapters; `overrides` replace any of them.

    Override names: cassandra, redis, tweets, cache, home, idempotency, followees, ids,
    breakers (a dict like `breakers(config)`, e.g. fresh ones per test).
    Nothing here connects: clients connect on first use, after any fork.
    """
    cfg = config or timeline_config.load()
    guards = overrides.get("breakers") or breakers(cfg)
    db = overrides.get("cassandra") or cassandra_store.CassandraSession(
        cfg.stores, cfg.cassandra_timeout, breaker=guards["cassandra"],
        read_attempts=cfg.read_attempts)
    client = overrides.get("redis") or redis_store.connect(cfg.stores, timeout=cfg.redis_timeout)
    redis_guard = redis_store.guard(guards["redis"])
    cache = overrides.get("cache") or redis_store.RedisTweetCache(
        client, cfg.tweet_cache_ttl, guarded=redis_guard)
    idempotency = overrides.get("idempotency") or redis_store.RedisIdempotency(
        client, cfg.idempotency_ttl, guarded=redis_guard)
    home = overrides.get("home") or redis_store.RedisHomeState(
        client, HomeTimelines(client, cap=cfg.home_timeline_cap), cache, idempotency,
        cfg.wakeup_channel, guarded=redis_guard)
    followees = overrides.get("followees") or users_client.CachedCelebrityFollowees(
        users_client.UsersClient(cfg.users_url, cfg.users_timeout, breaker=guards["users"],
                                 attempts=cfg.read_attempts),
        client, cfg.celebrity_threshold, cfg.celebrity_cache_ttl, cfg.celebrity_authors_max,
        guarded=redis_guard)
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
        rebuild_followees_max=cfg.rebuild_followees_max,
        rebuild_without_redis="home-fallback" not in common_config.disabled_safeguards(),
        trace_context=tracing.current_trace_headers,
    )
    checks = {"cassandra": db.ping, "redis": lambda: _ping(client)}
    return Services(cfg, ports, db, client, checks)


def _ping(client: Any) -> None:
    if not client.ping():
        raise ConnectionError("redis did not answer PING")
