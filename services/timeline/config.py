"""Settings of the timeline service and its outbox relay, read from the environment once.

Each setting is declared once below (`common.config.setting`): its variable, default,
type and what it is for. `load()` reads them; `Config(stores, users_url)` gives the defaults.
"""

from __future__ import annotations

from dataclasses import dataclass

from common import config as common
from common.config import Settings, computed, loaded, setting


@dataclass(frozen=True)
class Config(Settings):
    """Everything the timeline processes need to know about their surroundings."""

    stores: common.Stores = loaded(common.stores, doc="the backing stores")
    users_url: str = loaded(lambda: common.service_url("users"), doc="base URL of users")
    users_timeout: float = setting("TIMELINE_USERS_TIMEOUT", 0.5, parse=float,
                                   doc="seconds a call to users may take")
    celebrity_threshold: int = computed(lambda c: c.stores.profile.celebrity_threshold,
                                        doc="the profile's celebrity threshold")
    celebrity_cache_ttl: int = setting("TIMELINE_CELEBRITY_CACHE_TTL", 30, parse=int,
                                       doc="seconds a user's list of celebrity followees is reused")
    celebrity_authors_max: int = setting("TIMELINE_CELEBRITY_AUTHORS_MAX", 200, parse=int,
                                         doc="celebrities merged into one timeline read, at most")
    home_timeline_cap: int = common.HOME_TIMELINE_CAP.field()
    cursor_key: str = common.CURSOR_KEY.field()
    tweet_cache_ttl: int = setting("TIMELINE_TWEET_CACHE_TTL", 24 * 3600, parse=int,
                                   doc="seconds a cached tweet is kept")
    idempotency_ttl: int = setting("TIMELINE_IDEMPOTENCY_TTL", 24 * 3600, parse=int,
                                   doc="seconds an Idempotency-Key is remembered")
    idempotency_wait: float = setting("TIMELINE_IDEMPOTENCY_WAIT", 3.0, parse=float,
                                      doc="how long a duplicate waits for the original to finish")
    # As long as an Idempotency-Key: a retried DELETE within it answers 204 again.
    deleted_tweet_ttl: int = setting("TIMELINE_DELETED_TWEET_TTL", 24 * 3600, parse=int,
                                     doc="seconds a deleted tweet's author is remembered")
    cassandra_timeout: float = setting("TIMELINE_CASSANDRA_TIMEOUT", 2.0, parse=float,
                                       doc="seconds a Cassandra request may take")
    request_budget: float = setting("TIMELINE_REQUEST_BUDGET", 3.0, parse=float,
                                    doc="deadline of a request that brings none (Murmur-Deadline)")
    read_attempts: int = setting("TIMELINE_READ_ATTEMPTS", 3, parse=int,
                                 doc="tries of an idempotent read (Cassandra, users)")
    cassandra_breaker_fail_max: int = setting(
        "TIMELINE_CASSANDRA_BREAKER_FAIL_MAX", 5, parse=int,
        doc="Cassandra outages in a row that open its breaker")
    cassandra_breaker_reset: float = setting("TIMELINE_CASSANDRA_BREAKER_RESET", 3.0, parse=float,
                                             doc="seconds open before a half-open trial")
    redis_timeout: float = setting("TIMELINE_REDIS_TIMEOUT", 1.0, parse=float,
                                   doc="seconds a Redis call may take")
    redis_breaker_fail_max: int = setting("TIMELINE_REDIS_BREAKER_FAIL_MAX", 5, parse=int,
                                          doc="Redis outages in a row that open its breaker")
    redis_breaker_reset: float = setting("TIMELINE_REDIS_BREAKER_RESET", 2.0, parse=float,
                                         doc="seconds the Redis breaker stays open")
    users_breaker_fail_max: int = setting(
        "TIMELINE_USERS_BREAKER_FAIL_MAX", 5, parse=int,
        doc="failed calls to users in a row that open its breaker")
    users_breaker_reset: float = setting("TIMELINE_USERS_BREAKER_RESET", 3.0, parse=float,
                                         doc="seconds the users breaker stays open")
    rebuild_followees_max: int = setting(
        "TIMELINE_REBUILD_FOLLOWEES_MAX", 200, parse=int,
        doc="authors merged into a home timeline rebuilt without Redis")
    outbox_buckets: int = setting("TIMELINE_OUTBOX_BUCKETS", 16, parse=int,
                                  doc="partitions of the Cassandra outbox")
    relay_batch: int = setting("TIMELINE_RELAY_BATCH", 500, parse=int,
                               doc="outbox rows published per batch")
    relay_idle_poll: float = setting("TIMELINE_RELAY_IDLE_POLL", 0.1, parse=float,
                                     doc="seconds between polls of an idle outbox")
    relay_sweep_interval: float = setting("TIMELINE_RELAY_SWEEP_INTERVAL", 1.0, parse=float,
                                          doc="seconds between sweeps of every bucket")
    relay_lease_ttl: int = setting("TIMELINE_RELAY_LEASE_TTL", 10, parse=int,
                                   doc="seconds a relay's bucket lease lives unrenewed")
    kafka_timeout_ms: int = setting("TIMELINE_KAFKA_TIMEOUT_MS", 5000, parse=int,
                                    doc="Kafka producer request timeout")
    process_name: str = setting("MURMUR_PROCESS", "timeline",
                                doc="name of this process in logs, metrics and span files")
    author_cache_ttl: float = setting("TIMELINE_AUTHOR_CACHE_TTL", 10.0, parse=float,
                                      doc="seconds an author's name is reused in a process")
    author_cache_size: int = setting("TIMELINE_AUTHOR_CACHE_SIZE", 10_000, parse=int,
                                     doc="authors kept per process, at most")
    # /healthz, /readyz, /metrics of the author projection.
    authors_probe_port: int = common.PORT.field(
        default=lambda c: c.stores.profile.port_of("timeline-authors"))

    @property
    def wakeup_channel(self) -> str:
        """Redis pub/sub channel nudging the relay (channels ignore the Redis db number)."""
        return f"{self.stores.keyspace}:outbox-wakeup"

    @property
    def authors_group_id(self) -> str:
        """Kafka consumer group of the author projection (one per profile)."""
        # -v2 since the projection applies CelebrityStatusChanged: a projection that did
        # not know the type skipped it, so a new group reads the compacted users topic
        # again from its start. Its writes are version-stamped: the replay changes nothing
        # but the statuses it had missed.
        return f"{self.stores.topic_prefix}timeline-authors-v2"


def load() -> Config:
    """The configuration described by the environment, with local defaults."""
    return common.load(Config)
