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
        outbox_buckets=env_int("TIMELINE_OUTBOX_BUCKETS", 16),
        relay_batch=env_int("TIMELINE_RELAY_BATCH", 500),
        relay_idle_poll=env_float("TIMELINE_RELAY_IDLE_POLL", 0.1),
        relay_sweep_interval=env_float("TIMELINE_RELAY_SWEEP_INTERVAL", 1.0),
        relay_lease_ttl=env_int("TIMELINE_RELAY_LEASE_TTL", 10),
        kafka_timeout_ms=env_int("TIMELINE_KAFKA_TIMEOUT_MS", 5000),
        process_name=env("MURMUR_PROCESS", "timeline"),
    )
