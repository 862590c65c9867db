"""Gateway settings from the environment, with local defaults (built on common.config)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from common import config


@dataclass(frozen=True)
class DownstreamConfig:
    """How the gateway reaches one downstream service."""

    name: str
    base_url: str
    connect_timeout: float
    read_timeout: float
    pool_size: int
    # The breaker opens after `fail_max` failed calls in a row and tries one call again
    # after `reset_timeout` seconds.
    fail_max: int = 5
    reset_timeout: float = 5.0
    # Idempotent calls are tried at most `retry_attempts` times, waiting a random time up to
    # retry_base * 2^n (at most retry_cap) seconds between tries.
    retry_attempts: int = 3
    retry_base: float = 0.05
    retry_cap: float = 0.5


@dataclass(frozen=True)
class GatewayConfig:
    """Everything the gateway needs; `load()` reads it from the environment."""

    users: DownstreamConfig
    timeline: DownstreamConfig
    jwt_public_key: str  # PEM; empty means "read jwt_public_key_file when first needed"
    jwt_public_key_file: Path
    jwt_leeway: float
    retry_after: int
    # Seconds a client request may take in all; every downstream call gets what is left.
    request_budget: float = 5.0

    @classmethod
    def load(cls) -> "GatewayConfig":
        """Read the gateway's settings from the environment."""
        # One pooled connection per worker thread and downstream: a thread never waits for
        # a connection, and one slow downstream can hold at most this many sockets.
        pool = config.env_int("GATEWAY_POOL_SIZE", config.env_int("GUNICORN_THREADS", 8))
        connect = config.env_float("GATEWAY_CONNECT_TIMEOUT", 0.5)
        fail_max = config.env_int("GATEWAY_BREAKER_FAIL_MAX", 5)
        reset_timeout = config.env_float("GATEWAY_BREAKER_RESET_TIMEOUT", 5.0)
        attempts = config.env_int("GATEWAY_RETRY_ATTEMPTS", 3)
        retry_base = config.env_float("GATEWAY_RETRY_BASE", 0.05)
        retry_cap = config.env_float("GATEWAY_RETRY_CAP", 0.5)

        def downstream(name: str, default_read: float) -> DownstreamConfig:
            prefix = f"GATEWAY_{name.upper()}"
            return DownstreamConfig(
                name=name,
                base_url=config.service_url(name).rstrip("/"),
                connect_timeout=config.env_float(f"{prefix}_CONNECT_TIMEOUT", connect),
                read_timeout=config.env_float(f"{prefix}_READ_TIMEOUT", default_read),
                pool_size=pool,
                fail_max=fail_max,
                reset_timeout=reset_timeout,
                retry_attempts=attempts,
                retry_base=retry_base,
                retry_cap=retry_cap,
            )

        return cls(
            # Account writes hash passwords (argon2), so users gets the longer read budget.
            users=downstream("users", 3.0),
            timeline=downstream("timeline", 2.0),
            jwt_public_key=config.env("MURMUR_JWT_PUBLIC_KEY", ""),
            jwt_public_key_file=Path(config.env(
                "MURMUR_JWT_PUBLIC_KEY_FILE", str(config.secrets_dir() / "jwt-public.pem"))),
            jwt_leeway=config.env_float("GATEWAY_JWT_LEEWAY", 5.0),
            retry_after=config.env_int("GATEWAY_RETRY_AFTER", 1),
            # Below nginx's proxy_read_timeout (10 s), so the client hears the gateway's 503
            # rather than nginx's 504.
            request_budget=config.env_float("GATEWAY_REQUEST_BUDGET", 5.0),
        )
