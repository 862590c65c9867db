"""Settings of the fanout worker, read once from the environment (local defaults).

Each setting is declared once below (`common.config.setting`): its variable, default,
type and what it is for. `load()` reads them; building `FanoutConfig(stores, users_url,
timeline_url)` gives the defaults.
"""

from __future__ import annotations

from dataclasses import dataclass

from common import config as common_config
from common import topics
from common.config import Settings, Stores, computed, loaded, setting


@dataclass(frozen=True)
class FanoutConfig(Settings):
    """Everything the worker needs to know; `load()` fills it from the environment."""

    stores: Stores = loaded(common_config.stores, doc="the backing stores")
    users_url: str = loaded(lambda: common_config.service_url("users"), doc="base URL of users")
    timeline_url: str = loaded(lambda: common_config.service_url("timeline"),
                               doc="base URL of timeline")
    group_id: str = setting("FANOUT_GROUP_ID", lambda c: f"{c.stores.topic_prefix}fanout",
                            doc="Kafka consumer group (default: the profile's prefix + fanout)")
    topics: tuple[str, ...] = computed(
        lambda c: (c.stores.topic(topics.TWEETS), c.stores.topic(topics.FOLLOWS)),
        doc="the topics consumed")
    dlq_topic: str = computed(lambda c: c.stores.topic(topics.FANOUT_DLQ),
                              doc="where poison messages go")
    port: int = common_config.PORT.field(default=lambda c: c.stores.profile.port_of("fanout"))
    bind_host: str = common_config.BIND_HOST.field()
    process_name: str = setting("MURMUR_PROCESS", "fanout",
                                doc="name of this process in logs, metrics and span files")
    celebrity_threshold: int = computed(lambda c: c.stores.profile.celebrity_threshold,
                                        doc="the profile's celebrity threshold")
    home_timeline_cap: int = common_config.HOME_TIMELINE_CAP.field()
    follower_page_size: int = setting("FANOUT_FOLLOWER_PAGE_SIZE", 5000, parse=int,
                                      doc="follower ids per page (users allows up to 10,000)")
    delivery_batch: int = setting("FANOUT_DELIVERY_BATCH", 1000, parse=int,
                                  doc="timelines written per Redis script call")
    backfill_limit: int = setting("FANOUT_BACKFILL_LIMIT", 200, parse=int,
                                  doc="recent tweets merged into a timeline on follow")
    http_connect_timeout: float = setting("FANOUT_HTTP_CONNECT_TIMEOUT", 1.0, parse=float,
                                          doc="seconds to connect to users or timeline")
    http_read_timeout: float = setting("FANOUT_HTTP_READ_TIMEOUT", 5.0, parse=float,
                                       doc="seconds users or timeline may take to answer")
    redis_timeout: float = setting("FANOUT_REDIS_TIMEOUT", 5.0, parse=float,
                                   doc="seconds a Redis call may take")
    max_poll_records: int = setting("FANOUT_MAX_POLL_RECORDS", 500, parse=int,
                                    doc="records one poll returns at most")
    partition_concurrency: int = setting("FANOUT_PARTITION_CONCURRENCY", 6, parse=int,
                                         doc="partitions of one poll processed at once")
    poll_timeout_ms: int = 500
    offset_reset: str = setting("FANOUT_OFFSET_RESET", "earliest",
                                doc="where a new group starts: earliest, so no event is lost")
    handler_attempts: int = setting("FANOUT_HANDLER_ATTEMPTS", 3, parse=int,
                                    doc="tries in a row of a failing handler before its "
                                        "partition is held and the record tried again later")
    handler_backoff_max: float = 1.0
    transient_backoff_initial: float = 0.2  # first pause of a held partition
    transient_backoff_max: float = setting("FANOUT_TRANSIENT_BACKOFF_MAX", 10.0, parse=float,
                                           doc="longest pause of a held partition (its "
                                               "dependency down, or its record failing) (s)")
    kafka_request_timeout_ms: int = 10_000
    lag_interval: float = setting("FANOUT_LAG_INTERVAL", 5.0, parse=float,
                                  doc="seconds between consumer-lag refreshes")
    breaker_fail_max: int = setting("FANOUT_BREAKER_FAIL_MAX", 5, parse=int,
                                    doc="outages in a row before calls to users/timeline fail "
                                        "at once")
    breaker_reset: float = setting("FANOUT_BREAKER_RESET", 5.0, parse=float,
                                   doc="seconds a breaker stays open before a trial call")
    http_retry_attempts: int = setting("FANOUT_HTTP_RETRY_ATTEMPTS", 3, parse=int,
                                       doc="tries of a call to users or timeline that got "
                                           "no answer")
    record_budget: float = setting("FANOUT_RECORD_BUDGET", 30.0, parse=float,
                                   doc="seconds one record's calls may take in all (their "
                                       "deadline, passed on in Murmur-Deadline)")
    redrive_group_id: str = setting("FANOUT_REDRIVE_GROUP_ID", lambda c: f"{c.group_id}-redrive",
                                    doc="Kafka consumer group of the redrive on the "
                                        "dead-letter topic (default: the group + -redrive)")
    redrive_marker_ttl: int = setting("FANOUT_REDRIVE_MARKER_TTL", 30 * 24 * 3600, parse=int,
                                      doc="seconds the redrive remembers an event it "
                                          "replayed (longer than the topic keeps it)")


def load() -> FanoutConfig:
    """The worker's configuration for the active profile."""
    return common_config.load(FanoutConfig)
