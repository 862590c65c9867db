"""Settings of the fanout worker, read once from the environment (local defaults)."""

from __future__ import annotations

from dataclasses import dataclass

from common import config as common_config
from common import topics
from common.config import Stores, env, env_float, env_int


@dataclass(frozen=True)
class FanoutConfig:
    """Everything the worker needs to know; `load()` fills it from the environment."""

    stores: Stores
    group_id: str
    topics: tuple[str, ...]
    dlq_topic: str
    users_url: str
    timeline_url: str
    port: int
    bind_host: str = "127.0.0.1"
    process_name: str = "fanout"
    celebrity_threshold: int = common_config.CELEBRITY_THRESHOLD_DEFAULT
    home_timeline_cap: int = common_config.HOME_TIMELINE_CAP_DEFAULT
    follower_page_size: int = 5000  # users allows up to 10,000 ids per page
    delivery_batch: int = 1000  # timelines written per Redis script call
    backfill_limit: int = 200  # recent tweets merged into a timeline on follow
    http_connect_timeout: float = 1.0
    http_read_timeout: float = 5.0
    redis_timeout: float = 5.0
    max_poll_records: int = 500
    partition_concurrency: int = 6  # partitions of one poll processed at once
    poll_timeout_ms: int = 500
    offset_reset: str = "earliest"  # a new group starts from the oldest event: none is lost
    poison_attempts: int = 3  # tries of a failing handler before its message is dead-lettered
    poison_backoff_max: float = 1.0
    transient_backoff_initial: float = 0.2  # pause of a partition whose dependency is down
    transient_backoff_max: float = 10.0
    kafka_request_timeout_ms: int = 10_000
    lag_interval: float = 5.0  # seconds between consumer-lag refreshes
    breaker_fail_max: int = 5  # outages in a row before calls to users/timeline fail at once
    breaker_reset: float = 5.0  # seconds a breaker stays open before a trial call


def load() -> FanoutConfig:
    """The worker's configuration for the active profile."""
    stores = common_config.stores()
    return FanoutConfig(
        stores=stores,
        group_id=env("FANOUT_GROUP_ID", f"{stores.topic_prefix}fanout"),
        topics=(stores.topic(topics.TWEETS), stores.topic(topics.FOLLOWS)),
        dlq_topic=stores.topic(topics.FANOUT_DLQ),
        users_url=common_config.service_url("users"),
        timeline_url=common_config.service_url("timeline"),
        port=common_config.service_port("fanout"),
        bind_host=common_config.bind_host(),
        process_name=env("MURMUR_PROCESS", "fanout"),
        celebrity_threshold=common_config.celebrity_threshold(),
        home_timeline_cap=common_config.home_timeline_cap(),
        follower_page_size=env_int("FANOUT_FOLLOWER_PAGE_SIZE", 5000),
        delivery_batch=env_int("FANOUT_DELIVERY_BATCH", 1000),
        backfill_limit=env_int("FANOUT_BACKFILL_LIMIT", 200),
        http_connect_timeout=env_float("FANOUT_HTTP_CONNECT_TIMEOUT", 1.0),
        http_read_timeout=env_float("FANOUT_HTTP_READ_TIMEOUT", 5.0),
        redis_timeout=env_float("FANOUT_REDIS_TIMEOUT", 5.0),
        max_poll_records=env_int("FANOUT_MAX_POLL_RECORDS", 500),
        partition_concurrency=env_int("FANOUT_PARTITION_CONCURRENCY", 6),
        offset_reset=env("FANOUT_OFFSET_RESET", "earliest"),
        poison_attempts=env_int("FANOUT_POISON_ATTEMPTS", 3),
        transient_backoff_max=env_float("FANOUT_TRANSIENT_BACKOFF_MAX", 10.0),
        lag_interval=env_float("FANOUT_LAG_INTERVAL", 5.0),
        breaker_fail_max=env_int("FANOUT_BREAKER_FAIL_MAX", 5),
        breaker_reset=env_float("FANOUT_BREAKER_RESET", 5.0),
    )
