"""Wires the fanout worker: production adapters by default, any of them replaceable."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from common.home_timeline import HomeTimelines
from common.http import service_session
from fanout import config as fanout_config
from fanout.adapters import http
from fanout.config import FanoutConfig
from fanout.domain import FollowerSource, Policy, Ports, Timelines, TweetIdSource
from fanout.processing import DeadLetters, RecordProcessor


@dataclass
class Fanout:
    """The wired worker parts; `close()` releases every client it made."""

    config: FanoutConfig
    ports: Ports
    policy: Policy
    processor: RecordProcessor
    consumer: Any  # a KafkaConsumer, or a test's stand-in
    checks: dict[str, Callable[[], None]]
    closers: list[Callable[[], None]] = field(default_factory=list)

    def close(self) -> None:
        """Close clients in reverse order of creation; one failing does not stop the rest."""
        for close in reversed(self.closers):
            try:
                close()
            except Exception:  # noqa: BLE001 - best effort at shutdown
                pass


def bootstrap(config: FanoutConfig | None = None, *, followers: FollowerSource | None = None,
              timelines: Timelines | None = None, tweets: TweetIdSource | None = None,
              dead_letters: DeadLetters | None = None, consumer: Any = None,
              sleep: Callable[[float], None] | None = None) -> Fanout:
    """Build the worker's parts; pass any of them to replace the production adapter."""
    config = config or fanout_config.load()
    closers: list[Callable[[], None]] = []
    checks: dict[str, Callable[[], None]] = {}
    timeout = (config.http_connect_timeout, config.http_read_timeout)

    if followers is None:
        from concurrent.futures import ThreadPoolExecutor

        from fanout.adapters.users import UsersFollowerSource

        # One read-ahead thread and two connections per partition processed at once.
        width = max(1, config.partition_concurrency)
        users = UsersFollowerSource(
            config.users_url, service_session(2 * width),
            page_size=config.follower_page_size, timeout=timeout,
            read_ahead=ThreadPoolExecutor(width, thread_name_prefix="users-read-ahead"),
            breaker=http.breaker("users", fail_max=config.breaker_fail_max,
                                 reset_timeout=config.breaker_reset))
        closers.append(users.close)
        followers = users
    if tweets is None:
        from fanout.adapters.timeline import TimelineTweetIds

        tweet_ids = TimelineTweetIds(config.timeline_url,
                                     service_session(max(1, config.partition_concurrency)),
                                     timeout=timeout,
                                     breaker=http.breaker("timeline",
                                                          fail_max=config.breaker_fail_max,
                                                          reset_timeout=config.breaker_reset))
        closers.append(tweet_ids.close)
        tweets = tweet_ids
    if timelines is None:
        from fanout.adapters import redis_timelines

        # Bounded pool: one connection per partition processed at once, plus readiness.
        client = redis_timelines.client(config.stores.redis_url, config.redis_timeout,
                                        max_connections=config.partition_concurrency + 2)
        closers.append(client.close)
        redis_port = redis_timelines.RedisTimelines(
            HomeTimelines(client, cap=config.home_timeline_cap, batch=config.delivery_batch))
        checks["redis"] = redis_port.ping
        timelines = redis_port
    if dead_letters is None:
        from fanout.adapters.kafka import KafkaDeadLetters

        kafka_dlq = KafkaDeadLetters.create(config)
        closers.append(kafka_dlq.close)
        dead_letters = kafka_dlq
    if consumer is None:
        from fanout.adapters import kafka

        consumer = kafka.consumer(config)
        # close() without committing: the worker commits exactly what it processed.
        closers.append(lambda: consumer.close(autocommit=False))
        # The worker's own consumer runs the production loop, so the lag monitor runs too.
        closers.append(kafka.lag_monitor(config).start().close)

    ports = Ports(followers=followers, timelines=timelines, tweets=tweets)
    policy = Policy(celebrity_threshold=config.celebrity_threshold,
                    backfill_limit=config.backfill_limit,
                    history_limit=config.home_timeline_cap)
    processor = RecordProcessor(ports, policy, dead_letters, attempts=config.poison_attempts,
                                backoff_max=config.poison_backoff_max,
                                **({"sleep": sleep} if sleep else {}))
    return Fanout(config, ports, policy, processor, consumer, checks, closers)
