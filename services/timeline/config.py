"""Settings of the timeline service and its outbox relay, read from the environment once."""

from __future__ import annotations

from dataclasses import dataclass

from common import config as common


@dataclass(frozen=True)
class Config:
    """Everything the timeline processes need to know about their surroundings."""

    stores: common.Stores
    users_url: str
    users_timeout: float = 0.5
    celebrity_threshold: int = common.CELEBRITY_THRESHOLD_DEFAULT
    celebrity_cache_ttl: int = 30  # seconds a user's list of celebrity followees is reused
    celebrity_authors_max: int = 200  # celebrities merged into one timeline read, at most
    home_timeline_cap: int = common.HOME_TIMELINE_CAP_DEFAULT
    tweet_cache_ttl: int = 24 * 3600
    idempotency_ttl: int = 24 * 3600
    idempotency_wait: float = 3.0  # how long a duplicate waits for the original to finish
    cassandra_timeout: float = 2.0
    request_budget: float = 3.0  # deadline of a request that brings none (Murmur-Deadline)
    read_attempts: int = 3  # tries of an idempotent read (Cassandra, users)
    cassandra_breaker_fail_max: int = 5
    cassandra_breaker_reset: float = 3.0  # seconds open before a half-open trial
    redis_timeout: float = 1.0
    redis_breaker_fail_max: int = 5
    redis_breaker_reset: float = 2.0
    users_breaker_fail_max: int = 5
    users_breaker_reset: float = 3.0
    rebuild_followees_max: int = 200  # authors merged into a home timeline rebuilt without Redis
    outbox_buckets: int = 16
    relay_batch: int = 500
    relay_idle_poll: float = 0.1
    relay_sweep_interval: float = 1.0
    relay_lease_ttl: int = 10
    kafka_timeout_ms: int = 5000
    process_name: str = "timeline"

    @property
    def wakeup_channel(self) -> str:
        """Redis pub/sub channel nudging the relay (channels ignore the Redis db number)."""
        return f"{self.stores.keyspace}:outbox-wakeup"


def load() -> Config:
    """The configuration described by the environment, with local defaults."""
    env, env_int, env_float = common.env, common.env_int, common.env_float
    return Config(
        stores=common.stores(),
        users_url=common.service_url("users"),
        users_timeout=env_float("TIMELINE_USERS_TIMEOUT", 0.5),
        celebrity_threshold=common.celebrity_threshold(),
        celebrity_cache_ttl=env_int("TIMELINE_CELEBRITY_CACHE_TTL", 30),
        celebrity_authors_max=env_int("TIMELINE_CELEBRITY_AUTHORS_MAX", 200),
        home_timeline_cap=common.home_timeline_cap(),
        tweet_cache_ttl=env_int("TIMELINE_TWEET_CACHE_TTL", 24 * 3600),
        idempotency_ttl=env_int("TIMELINE_IDEMPOTENCY_TTL", 24 * 3600),
        idempotency_wait=env_float("TIMELINE_IDEMPOTENCY_WAIT", 3.0),
        cassandra_timeout=env_float("TIMELINE_CASSANDRA_TIMEOUT", 2.0),
        request_budget=env_float("TIMELINE_REQUEST_BUDGET", 3.0),
        read_attempts=env_int("TIMELINE_READ_ATTEMPTS", 3),
        cassandra_breaker_fail_max=env_int("TIMELINE_CASSANDRA_BREAKER_FAIL_MAX", 5),
        cassandra_breaker_reset=env_float("TIMELINE_CASSANDRA_BREAKER_RESET", 3.0),
        redis_timeout=env_float("TIMELINE_REDIS_TIMEOUT", 1.0),
        redis_breaker_fail_max=env_int("TIMELINE_REDIS_BREAKER_FAIL_MAX", 5),
        redis_breaker_reset=env_float("TIMELINE_REDIS_BREAKER_RESET", 2.0),
        users_breaker_fail_max=env_int("TIMELINE_USERS_BREAKER_FAIL_MAX", 5),
        users_breaker_reset=env_float("TIMELINE_USERS_BREAKER_RESET", 3.0),
        rebuild_followees_max=env_int("TIMELINE_REBUILD_FOLLOWEES_MAX", 200),
        outbox_buckets=env_int("TIMELINE_OUTBOX_BUCKETS", 16),
        relay_batch=env_int("TIMELINE_RELAY_BATCH", 500),
        relay_idle_poll=env_float("TIMELINE_RELAY_IDLE_POLL", 0.1),
        relay_sweep_interval=env_float("TIMELINE_RELAY_SWEEP_INTERVAL", 1.0),
        relay_lease_ttl=env_int("TIMELINE_RELAY_LEASE_TTL", 10),
        kafka_timeout_ms=env_int("TIMELINE_KAFKA_TIMEOUT_MS", 5000),
        process_name=env("MURMUR_PROCESS", "timeline"),
    )
