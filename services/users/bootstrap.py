"""Wiring: the users use cases on their production adapters (tests swap any of them)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import redis

from common import topics
from users import config as users_config
from common.ids import LeasedIds, owner_name
from users.adapters.postgres import PostgresUsers, create_pool, postgres_breaker
from users.adapters.redis_cache import RedisProfileCache, redis_breaker
from users.adapters.tokens import Argon2Passwords, JwtIssuer
from users.domain import Ports


@dataclass
class Wiring:
    """The assembled service: use-case ports, readiness checks, and what to close at exit."""

    config: users_config.UsersConfig
    ports: Ports
    checks: dict[str, Callable[[], Any]]
    closers: list[Callable[[], Any]] = field(default_factory=list)

    def close(self) -> None:
        """Release pools, clients and the worker-id lease."""
        for close in reversed(self.closers):
            close()


def redis_client(cfg: users_config.UsersConfig) -> redis.Redis:
    """A Redis client on the profile's database with bounded connect and read timeouts."""
    return redis.Redis.from_url(
        cfg.stores.redis_url,
        socket_timeout=cfg.redis_timeout,
        socket_connect_timeout=cfg.redis_timeout,
        health_check_interval=30,
    )


def pg_pool(cfg: users_config.UsersConfig):
    """The service's Postgres connection pool."""
    return create_pool(cfg.stores.pg_conninfo, min_size=cfg.pg_pool_min,
                       max_size=cfg.pg_pool_max, timeout=cfg.pg_pool_timeout,
                       statement_timeout_ms=cfg.pg_statement_timeout_ms, name=cfg.process,
                       reconnect_timeout=cfg.pg_reconnect_timeout)


def bootstrap(config: users_config.UsersConfig | None = None, **overrides: Any) -> Wiring:
    """Build the service; `overrides` replace adapters by name: pool, redis, users,
    profiles, passwords, tokens, ids, postgres_breaker, redis_breaker."""
    cfg = config or users_config.load()
    closers: list[Callable[[], Any]] = []

    users = overrides.get("users")
    if users is None:
        pool = overrides.get("pool")
        if pool is None:
            pool = pg_pool(cfg)
            closers.append(pool.close)
        breaker = overrides.get("postgres_breaker") or postgres_breaker(
            fail_max=cfg.pg_breaker_fail_max, reset_timeout=cfg.pg_breaker_reset_timeout)
        users = PostgresUsers(pool, cfg.topic(topics.FOLLOWS), breaker=breaker)

    client = overrides.get("redis")
    if client is None and not {"profiles", "ids"} <= overrides.keys():
        client = redis_client(cfg)
        closers.append(client.close)
    profiles = overrides.get("profiles") or RedisProfileCache(
        client, cfg.profile_cache_ttl,
        breaker=overrides.get("redis_breaker") or redis_breaker(
            fail_max=cfg.redis_breaker_fail_max, reset_timeout=cfg.redis_breaker_reset_timeout))
    ids = overrides.get("ids")
    if ids is None:
        ids = LeasedIds(client, owner_name("users"), cfg.worker_lease_prefix,
                        cfg.worker_lease_ttl)
        closers.append(ids.close)

    ports = Ports(
        users=users,
        profiles=profiles,
        passwords=overrides.get("passwords") or Argon2Passwords(
            cfg.argon2_time_cost, cfg.argon2_memory_kib, cfg.argon2_parallelism),
        tokens=overrides.get("tokens") or JwtIssuer(cfg.jwt_private_key, cfg.jwt_expires_in),
        ids=ids,
    )
    checks = {name: adapter.ping for name, adapter in
              (("postgres", users), ("redis", profiles)) if hasattr(adapter, "ping")}
    return Wiring(cfg, ports, checks, closers)
