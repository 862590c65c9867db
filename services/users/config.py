"""Settings of the users service, read once from the environment (local defaults).

Each setting is declared once below (`common.config.setting`): its variable, default,
type and what it is for. `load()` reads them; `UsersConfig(stores=...)` gives the defaults.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from common import config as common_config
from common import jwks
from common.config import Settings, computed, loaded, setting


@dataclass(frozen=True)
class UsersConfig(Settings):
    """Everything the users processes (API and outbox relay) are tuned by."""

    stores: common_config.Stores = loaded(common_config.stores, doc="the backing stores")
    process: str = setting("MURMUR_PROCESS", "users",
                           doc="name of this process in logs, metrics and span files")
    # Postgres: a bounded pool is this service's bulkhead towards its database.
    pg_pool_min: int = setting("USERS_PG_POOL_MIN", 1, parse=int,
                               doc="Postgres connections kept open at least")
    pg_pool_max: int = setting("USERS_PG_POOL_MAX", lambda c: c.stores.pg_pool_size, parse=int,
                               doc="Postgres connections at most (default MURMUR_PG_POOL_SIZE)")
    # Below the gateway's 2 s timeout on users calls: a connection not had within it is
    # Postgres's failure and counts towards the breaker. A wait cut short by the caller's
    # deadline counts for nothing, so a longer wait would never open the breaker.
    pg_pool_timeout: float = setting("USERS_PG_POOL_TIMEOUT", 1.0, parse=float,
                                     doc="seconds a request waits for a free connection")
    pg_statement_timeout_ms: int = setting("USERS_PG_STATEMENT_TIMEOUT_MS", 2000, parse=int,
                                           doc="Postgres statement_timeout")
    # How long the pool keeps retrying one lost connection before the next request starts
    # a fresh attempt: short, so a database that comes back is used within seconds.
    pg_reconnect_timeout: float = setting("USERS_PG_RECONNECT_TIMEOUT", 3.0, parse=float,
                                          doc="seconds the pool retries one lost connection")
    # Circuit breakers: open after `fail_max` consecutive failures, try again after `reset`.
    pg_breaker_fail_max: int = setting("USERS_PG_BREAKER_FAIL_MAX", 3, parse=int,
                                       doc="Postgres outages in a row that open its breaker")
    pg_breaker_reset_timeout: float = setting("USERS_PG_BREAKER_RESET_TIMEOUT", 5.0,
                                              parse=float,
                                              doc="seconds the Postgres breaker stays open")
    redis_breaker_fail_max: int = setting("USERS_REDIS_BREAKER_FAIL_MAX", 3, parse=int,
                                          doc="Redis outages in a row that open its breaker")
    redis_breaker_reset_timeout: float = setting("USERS_REDIS_BREAKER_RESET_TIMEOUT", 5.0,
                                                 parse=float,
                                                 doc="seconds the Redis breaker stays open")
    # Redis profile cache.
    redis_timeout: float = setting("USERS_REDIS_TIMEOUT", 0.5, parse=float,
                                   doc="seconds a Redis call may take")
    # Bounded pool: at most redis_pool_max connections per process; a call waits up to
    # redis_pool_timeout seconds for a free one (then the cache counts it as a miss).
    redis_pool_max: int = setting("USERS_REDIS_POOL_MAX", 16, parse=int,
                                  doc="Redis connections a process holds at most")
    redis_pool_timeout: float = setting("USERS_REDIS_POOL_TIMEOUT", 0.5, parse=float,
                                        doc="seconds a call waits for a free Redis connection")
    profile_cache_ttl: int = setting("USERS_PROFILE_CACHE_TTL", 300, parse=int,
                                     doc="seconds a cached profile is kept")
    # Sessions.
    jwt_expires_in: int = setting("USERS_JWT_EXPIRES_IN", 3600, parse=int,
                                  doc="seconds a session token is valid")
    jwt_private_key: str = setting("MURMUR_JWT_PRIVATE_KEY", "", secret=True,
                                   doc="Ed25519 PEM signing the tokens (else the key file)")
    # The local platform's key file: rotation replaces it, and users signs with the new key
    # once it has seen the change (it looks at most every jwt_key_check_interval seconds).
    jwt_private_key_file: Path = setting(
        "MURMUR_JWT_PRIVATE_KEY_FILE", lambda c: common_config.jwt_keys_dir() / "private.pem",
        parse=Path, doc="file of the signing key (default: the profile's generated one)")
    jwt_key_check_interval: float = setting(
        "USERS_JWT_KEY_CHECK_INTERVAL", 1.0, parse=float,
        doc="seconds between two looks at the key file for a rotated key")
    jwt_issuer: str = setting("MURMUR_JWT_ISSUER", jwks.ISSUER,
                              doc="the tokens' iss (the gateway expects the same)")
    jwt_audience: str = setting("MURMUR_JWT_AUDIENCE", jwks.AUDIENCE,
                                doc="the tokens' aud (the gateway expects the same)")
    argon2_time_cost: int = setting("USERS_ARGON2_TIME_COST", 3, parse=int,
                                    doc="argon2 passes over memory")
    argon2_memory_kib: int = setting("USERS_ARGON2_MEMORY_KIB", 65536, parse=int,
                                     doc="argon2 memory per hash (KiB)")
    argon2_parallelism: int = setting("USERS_ARGON2_PARALLELISM", 4, parse=int,
                                      doc="argon2 lanes")
    # The bulkhead of sign-up and sign-in: argon2 must not take every thread or core.
    password_slots: int = setting("USERS_PASSWORD_SLOTS", 2, parse=int,
                                  doc="password hashes running at once, per process")
    password_slot_wait: float = setting("USERS_PASSWORD_SLOT_WAIT", 1.0, parse=float,
                                        doc="seconds a sign-in waits for a hashing slot")
    # Failed sign-ins, counted in Redis over fixed windows; at the limit, 429.
    sign_in_window: int = setting("USERS_SIGN_IN_WINDOW", 60, parse=int,
                                  doc="seconds over which failed sign-ins are counted")
    sign_in_account_failures: int = setting("USERS_SIGN_IN_ACCOUNT_FAILURES", 5, parse=int,
                                            doc="failed sign-ins per account and window")
    sign_in_address_failures: int = setting("USERS_SIGN_IN_ADDRESS_FAILURES", 20, parse=int,
                                            doc="failed sign-ins per address and window")
    # Page cursors (followers, following).
    cursor_key: str = common_config.CURSOR_KEY.field()
    # Ids.
    worker_lease_prefix: str = setting("USERS_WORKER_LEASE_PREFIX", "ids:worker",
                                       doc="Redis key prefix of the id worker leases")
    worker_lease_ttl: int = setting("USERS_WORKER_LEASE_TTL", 30, parse=int,
                                    doc="seconds an id worker lease lives unrenewed")
    # Internal API limits.
    max_follower_ids_page: int = 10_000  # not a setting: the internal API's contract
    # Follows that cross it change the followee's celebrity status (CelebrityStatusChanged).
    celebrity_threshold: int = computed(lambda c: c.stores.profile.celebrity_threshold,
                                        doc="the profile's celebrity threshold")
    # Outbox relay.
    relay_batch_size: int = setting("USERS_RELAY_BATCH_SIZE", 500, parse=int,
                                    doc="outbox rows published per batch")
    relay_poll_interval: float = setting("USERS_RELAY_POLL_INTERVAL", 0.1, parse=float,
                                         doc="fallback poll when no NOTIFY arrives (s)")
    relay_retry_backoff: float = setting("USERS_RELAY_RETRY_BACKOFF", 1.0, parse=float,
                                         doc="pause after Kafka or Postgres failed (s)")
    # Published outbox rows are kept this long (what was published when, a window to
    # publish again), then deleted a bounded batch at a time; 0 deletes them at once.
    outbox_retention: float = setting("USERS_OUTBOX_RETENTION", 3600.0, parse=float,
                                      doc="seconds a published outbox row is kept")
    outbox_prune_interval: float = setting("USERS_OUTBOX_PRUNE_INTERVAL", 60.0, parse=float,
                                           doc="seconds between two prunes of the outbox")
    outbox_prune_batch: int = setting("USERS_OUTBOX_PRUNE_BATCH", 1000, parse=int,
                                      doc="published rows deleted per prune, at most")
    kafka_request_timeout_ms: int = setting("USERS_KAFKA_REQUEST_TIMEOUT_MS", 5000, parse=int,
                                            doc="Kafka producer request timeout")
    kafka_delivery_timeout_ms: int = setting("USERS_KAFKA_DELIVERY_TIMEOUT_MS", 10_000,
                                             parse=int, doc="Kafka producer delivery timeout")
    kafka_max_block_ms: int = setting("USERS_KAFKA_MAX_BLOCK_MS", 5000, parse=int,
                                      doc="how long a send may block for metadata or buffer")

    def topic(self, name: str) -> str:
        """Topic name with the profile's prefix."""
        return self.stores.topic(name)


def load() -> UsersConfig:
    """The configuration from the environment."""
    return common_config.load(UsersConfig)
