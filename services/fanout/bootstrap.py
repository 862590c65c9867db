"""Wire the fanout worker's adapters behind its ports; each one replaceable by name."""

from __future__ import annotations

from typing import Any, Callable

from common.client import HttpClient, PeerConfig
from common.service import Overrides, Service

from fanout import config as fanout_config
from fanout.config import FanoutConfig
from fanout.domain.model import Policy
from fanout.service_layer.ports import Ports

OVERRIDABLE = {"followers", "home_timelines", "tweets", "dead_letters", "redriven"}


def policy(config: FanoutConfig) -> Policy:
    """The hybrid fan-out policy the config sets."""
    return Policy(celebrity_threshold=config.celebrity_threshold,
                  backfill_limit=config.backfill_limit,
                  history_limit=config.home_timeline_cap)


def peer(config: FanoutConfig, name: str, base_url: str, pool_size: int) -> PeerConfig:
    """How the worker reaches users or timeline."""
    return PeerConfig(name, base_url, connect_timeout=config.http_connect_timeout,
                      read_timeout=config.http_read_timeout, pool_size=pool_size,
                      fail_max=config.breaker_fail_max, reset_timeout=config.breaker_reset,
                      retry_attempts=config.http_retry_attempts)


def bootstrap(config: FanoutConfig | None = None,
              **overrides: Any) -> Service[FanoutConfig, Ports]:
    """The wired worker; pass `followers=`, `home_timelines=`, `tweets=`, `dead_letters=` or
    `redriven=` to replace an adapter. The consumer loops are the entrypoints' (the worker
    in fanout.entrypoints.worker, the redrive in fanout.entrypoints.redrive)."""
    config = config or fanout_config.load()
    given = Overrides(OVERRIDABLE, overrides)
    closers: list[Callable[[], Any]] = []
    checks: dict[str, Callable[[], Any]] = {}
    width = max(1, config.partition_concurrency)
    clients: list[Any] = []  # the one Redis client, made on first need

    def redis_client() -> Any:
        if not clients:
            from fanout.adapters import redis_home_timelines

            # Bounded pool: one connection per partition processed at once, plus readiness.
            client = redis_home_timelines.client(config.stores.redis_url, config.redis_timeout,
                                                 max_connections=width + 2)
            closers.append(client.close)
            clients.append(client)
        return clients[0]

    def users() -> Any:
        from concurrent.futures import ThreadPoolExecutor

        from fanout.adapters.users import UsersFollowerSource

        # One read-ahead thread and two connections per partition processed at once.
        return UsersFollowerSource(
            HttpClient(peer(config, "users", config.users_url, 2 * width), caller="fanout"),
            page_size=config.follower_page_size,
            read_ahead=ThreadPoolExecutor(width, thread_name_prefix="users-read-ahead"))

    def tweets() -> Any:
        from fanout.adapters.timeline import TimelineTweetIds

        return TimelineTweetIds(HttpClient(peer(config, "timeline", config.timeline_url, width),
                                            caller="fanout"))

    def home_timelines() -> Any:
        from common.home_timeline import HomeTimelines
        from fanout.adapters import redis_home_timelines

        made = redis_home_timelines.RedisHomeTimelines(
            HomeTimelines(redis_client(), cap=config.home_timeline_cap,
                          batch=config.delivery_batch))
        checks["redis"] = made.ping
        return made

    def redriven() -> Any:
        from fanout.adapters.redis_redrive import RedisRedriveLedger

        return RedisRedriveLedger(redis_client, config.group_id, config.redrive_marker_ttl)

    def dead_letters() -> Any:
        from fanout.adapters.kafka import KafkaDeadLetters

        return KafkaDeadLetters.create(config)

    ports = Ports(followers=given.get("followers", users, closers),
                  home_timelines=given.get("home_timelines", home_timelines),
                  tweets=given.get("tweets", tweets, closers),
                  dead_letters=given.get("dead_letters", dead_letters, closers),
                  redriven=given.get("redriven", redriven))
    return Service("fanout", config, ports, checks=checks, closers=closers)
