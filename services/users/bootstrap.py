"""Wiring: the users use cases on their production adapters (tests swap any of them)."""

from __future__ import annotations

from typing import Any, Callable

from common import jwks, topics
from common.ids import LeasedIds, owner_name
from common.service import Overrides, Service
from users import config as users_config
from users.adapters.postgres import PostgresUsers, create_pool, postgres_breaker
from users.adapters.redis_cache import (
    RedisProfileCache,
    bounded_client,
    close_client,
    redis_breaker,
)
from users.adapters.redis_sign_ins import RedisSignInThrottle
from users.adapters.tokens import Argon2Passwords, JwtIssuer
from users.service_layer.ports import Ports

OVERRIDES = {"pool", "redis", "users", "profiles", "passwords", "tokens", "ids",
             "sign_ins", "postgres_breaker", "redis_breaker"}


def redis_client(cfg: users_config.UsersConfig):
    """A Redis client on the profile's database: bounded pool, bounded waits and timeouts."""
    return bounded_client(cfg.stores.redis_url, max_connections=cfg.redis_pool_max,
                          pool_timeout=cfg.redis_pool_timeout,
                          socket_timeout=cfg.redis_timeout)


def pg_pool(cfg: users_config.UsersConfig):
    """The service's Postgres connection pool."""
    return create_pool(cfg.stores.pg_conninfo, min_size=cfg.pg_pool_min,
                       max_size=cfg.pg_pool_max, timeout=cfg.pg_pool_timeout,
                       statement_timeout_ms=cfg.pg_statement_timeout_ms, name=cfg.process,
                       reconnect_timeout=cfg.pg_reconnect_timeout)


def jwt_issuer(cfg: users_config.UsersConfig) -> JwtIssuer:
    """The token issuer: with the key the environment gives (fixed), else with the key
    file's, followed as rotation replaces it."""
    key = cfg.jwt_private_key or jwks.WatchedFile(
        cfg.jwt_private_key_file, jwks.signing_key, cfg.jwt_key_check_interval).get
    return JwtIssuer(key, cfg.jwt_expires_in, issuer=cfg.jwt_issuer, audience=cfg.jwt_audience)


def bootstrap(config: users_config.UsersConfig | None = None,
              **overrides: Any) -> Service[users_config.UsersConfig, Ports]:
    """Build the service; `overrides` replace adapters by name: pool, redis, users,
    profiles, passwords, tokens, ids, sign_ins, postgres_breaker, redis_breaker."""
    cfg = config or users_config.load()
    given = Overrides(OVERRIDES, overrides)
    closers: list[Callable[[], Any]] = []

    users = given.get("users", lambda: PostgresUsers(
        given.get("pool", lambda: pg_pool(cfg), closers),
        cfg.topic(topics.FOLLOWS), users_topic=cfg.topic(topics.USERS),
        breaker=given.get("postgres_breaker", lambda: postgres_breaker(
            fail_max=cfg.pg_breaker_fail_max, reset_timeout=cfg.pg_breaker_reset_timeout)),
        celebrity_threshold=cfg.celebrity_threshold))

    client = None
    if not (given.has("profiles") and given.has("ids") and given.has("sign_ins")):
        client = given.get("redis", lambda: redis_client(cfg), closers, close=close_client)
    # One breaker for this process's Redis, shared by the adapters that use it.
    redis_guard = given.get("redis_breaker", lambda: redis_breaker(
        fail_max=cfg.redis_breaker_fail_max, reset_timeout=cfg.redis_breaker_reset_timeout))
    profiles = given.get("profiles", lambda: RedisProfileCache(
        client, cfg.profile_cache_ttl, breaker=redis_guard))
    sign_ins = given.get("sign_ins", lambda: RedisSignInThrottle(
        client, redis_guard, window=cfg.sign_in_window,
        account_failures=cfg.sign_in_account_failures,
        address_failures=cfg.sign_in_address_failures))
    ids = given.get("ids", lambda: LeasedIds(client, owner_name("users"),
                                             cfg.worker_lease_prefix, cfg.worker_lease_ttl),
                    closers)

    ports = Ports(
        users=users,
        profiles=profiles,
        passwords=given.get("passwords", lambda: Argon2Passwords(
            cfg.argon2_time_cost, cfg.argon2_memory_kib, cfg.argon2_parallelism,
            slots=cfg.password_slots, slot_wait=cfg.password_slot_wait)),
        tokens=given.get("tokens", lambda: jwt_issuer(cfg)),
        ids=ids,
        sign_ins=sign_ins,
    )
    checks = {name: adapter.ping for name, adapter in
              (("postgres", users), ("redis", profiles)) if hasattr(adapter, "ping")}
    return Service("users", cfg, ports, checks, closers)
