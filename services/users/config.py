"""Settings of the users service, read once from the environment (local defaults)."""

from __future__ import annotations

from dataclasses import dataclass, field

from common import config as common_config
from common.config import env, env_float, env_int, read_secret


@dataclass(frozen=True)
class UsersConfig:
    """Everything the users processes (API and outbox relay) are tuned by."""

    stores: common_config.Stores
    process: str = "users"
    # Postgres: a bounded pool is this service's bulkhead towards its database.
    pg_pool_min: int = 1
    pg_pool_max: int = 8
    pg_pool_timeout: float = 2.0  # seconds a request waits for a free connection
    pg_statement_timeout_ms: int = 2000
    # How long the pool keeps retrying one lost connection before the next request starts
    # a fresh attempt: short, so a database that comes back is used within seconds.
    pg_reconnect_timeout: float = 3.0
    # Circuit breakers: open after `fail_max` consecutive failures, try again after `reset`.
    pg_breaker_fail_max: int = 3
    pg_breaker_reset_timeout: float = 5.0
    redis_breaker_fail_max: int = 3
    redis_breaker_reset_timeout: float = 5.0
    # Redis profile cache.
    redis_timeout: float = 0.5
    profile_cache_ttl: int = 300
    # Sessions.
    jwt_expires_in: int = 3600
    jwt_private_key: str = field(default="", repr=False)  # Ed25519 PEM
    argon2_time_cost: int = 3
    argon2_memory_kib: int = 65536
    argon2_parallelism: int = 4
    # Ids.
    worker_lease_prefix: str = "ids:worker"
    worker_lease_ttl: int = 30
    # Internal API limits.
    max_batch_ids: int = 500
    max_follower_ids_page: int = 10_000
    # Outbox relay.
    relay_batch_size: int = 500
    relay_poll_interval: float = 0.1  # fallback poll when no NOTIFY arrives
    relay_retry_backoff: float = 1.0  # pause after Kafka or Postgres failed
    kafka_request_timeout_ms: int = 5000
    kafka_delivery_timeout_ms: int = 10_000
    kafka_max_block_ms: int = 5000

    def topic(self, name: str) -> str:
        """Topic name with the profile's prefix."""
        return self.stores.topic(name)


def load() -> UsersConfig:
    """The configuration from the environment."""
    stores = common_config.stores()
    return UsersConfig(
        stores=stores,
        process=env("MURMUR_PROCESS", "users"),
        pg_pool_min=env_int("USERS_PG_POOL_MIN", 1),
        pg_pool_max=env_int("USERS_PG_POOL_MAX", stores.pg_pool_size),
        pg_pool_timeout=env_float("USERS_PG_POOL_TIMEOUT", 2.0),
        pg_statement_timeout_ms=env_int("USERS_PG_STATEMENT_TIMEOUT_MS", 2000),
        pg_reconnect_timeout=env_float("USERS_PG_RECONNECT_TIMEOUT", 3.0),
        pg_breaker_fail_max=env_int("USERS_PG_BREAKER_FAIL_MAX", 3),
        pg_breaker_reset_timeout=env_float("USERS_PG_BREAKER_RESET_TIMEOUT", 5.0),
        redis_breaker_fail_max=env_int("USERS_REDIS_BREAKER_FAIL_MAX", 3),
        redis_breaker_reset_timeout=env_float("USERS_REDIS_BREAKER_RESET_TIMEOUT", 5.0),
        redis_timeout=env_float("USERS_REDIS_TIMEOUT", 0.5),
        profile_cache_ttl=env_int("USERS_PROFILE_CACHE_TTL", 300),
        jwt_expires_in=env_int("USERS_JWT_EXPIRES_IN", 3600),
        jwt_private_key=read_secret("jwt-private.pem", "MURMUR_JWT_PRIVATE_KEY"),
        argon2_time_cost=env_int("USERS_ARGON2_TIME_COST", 3),
        argon2_memory_kib=env_int("USERS_ARGON2_MEMORY_KIB", 65536),
        argon2_parallelism=env_int("USERS_ARGON2_PARALLELISM", 4),
        worker_lease_prefix=env("USERS_WORKER_LEASE_PREFIX", "ids:worker"),
        worker_lease_ttl=env_int("USERS_WORKER_LEASE_TTL", 30),
        max_batch_ids=env_int("USERS_MAX_BATCH_IDS", 500),
        relay_batch_size=env_int("USERS_RELAY_BATCH_SIZE", 500),
        relay_poll_interval=env_float("USERS_RELAY_POLL_INTERVAL", 0.1),
        relay_retry_backoff=env_float("USERS_RELAY_RETRY_BACKOFF", 1.0),
        kafka_request_timeout_ms=env_int("USERS_KAFKA_REQUEST_TIMEOUT_MS", 5000),
        kafka_delivery_timeout_ms=env_int("USERS_KAFKA_DELIVERY_TIMEOUT_MS", 10_000),
        kafka_max_block_ms=env_int("USERS_KAFKA_MAX_BLOCK_MS", 5000),
    )
