"""Gateway settings from the environment, with local defaults (built on common.config).

Each setting is declared once below (`common.config.setting`): its variable(s), default,
type and what it is for. `GatewayConfig.load()` reads them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from common import config
from common.config import Settings, loaded, setting


@dataclass(frozen=True)
class DownstreamConfig(config.PeerConfig, Settings):
    """How the gateway reaches one downstream service: the fields of `PeerConfig`, each
    after the first two read from the gateway's variables below.

    `{NAME}` in a variable is the downstream's name (GATEWAY_USERS_READ_TIMEOUT); where two
    variables are listed, the first one set wins.
    """

    connect_timeout: float = setting(
        ("GATEWAY_{NAME}_CONNECT_TIMEOUT", "GATEWAY_CONNECT_TIMEOUT"), 0.5, parse=float,
        doc="seconds to connect to the downstream")
    read_timeout: float = setting("GATEWAY_{NAME}_READ_TIMEOUT", 2.0, parse=float,
                                  doc="seconds the downstream may take to answer")
    # One pooled connection per worker thread and downstream: a thread never waits for a
    # connection, and one slow downstream can hold at most this many sockets.
    pool_size: int = setting(("GATEWAY_POOL_SIZE", *config.GUNICORN_THREADS.env),
                             config.GUNICORN_THREADS.default, parse=config.GUNICORN_THREADS.parse,
                             doc="pooled connections to the downstream (default: one a thread)")
    fail_max: int = setting("GATEWAY_BREAKER_FAIL_MAX", 5, parse=int,
                            doc="failed calls in a row that open the downstream's breaker")
    reset_timeout: float = setting("GATEWAY_BREAKER_RESET_TIMEOUT", 5.0, parse=float,
                                   doc="seconds the breaker stays open before a trial call")
    retry_attempts: int = setting("GATEWAY_RETRY_ATTEMPTS", 3, parse=int,
                                  doc="tries of an idempotent call")
    retry_base: float = setting("GATEWAY_RETRY_BASE", 0.05, parse=float,
                                doc="first backoff between tries (s)")
    retry_cap: float = setting("GATEWAY_RETRY_CAP", 0.5, parse=float,
                               doc="longest backoff between tries (s)")


def downstream_config(name: str, **defaults: object) -> DownstreamConfig:
    """The settings of downstream `name`, at the URL its callers use."""
    return config.load(DownstreamConfig, name=name,
                       base_url=config.service_url(name).rstrip("/"), defaults=defaults)


@dataclass(frozen=True)
class GatewayConfig(Settings):
    """Everything the gateway needs; `load()` reads it from the environment."""

    # Account writes hash passwords (argon2), so users gets the longer read budget.
    users: DownstreamConfig = loaded(lambda: downstream_config("users", read_timeout=3.0),
                                     doc="how to reach users")
    timeline: DownstreamConfig = loaded(lambda: downstream_config("timeline"),
                                        doc="how to reach timeline")
    jwt_public_key: str = setting(
        "MURMUR_JWT_PUBLIC_KEY", "",
        doc="Ed25519 PEM checking tokens; empty: read jwt_public_key_file when first needed")
    jwt_public_key_file: Path = setting(
        "MURMUR_JWT_PUBLIC_KEY_FILE", lambda c: config.secrets_dir() / "jwt-public.pem",
        parse=Path, doc="file of the public key (default: the generated secret)")
    jwt_leeway: float = setting("GATEWAY_JWT_LEEWAY", 5.0, parse=float,
                                doc="seconds of clock skew a token's times are allowed")
    retry_after: int = setting("GATEWAY_RETRY_AFTER", 1, parse=int,
                               doc="Retry-After (s) of a 503 the gateway answers")
    # Seconds a client request may take in all; every downstream call gets what is left.
    # Below nginx's proxy_read_timeout (10 s), so the client hears the gateway's 503 rather
    # than nginx's 504.
    request_budget: float = setting("GATEWAY_REQUEST_BUDGET", 5.0, parse=float,
                                    doc="seconds a client request may take in all")

    @classmethod
    def load(cls) -> "GatewayConfig":
        """Read the gateway's settings from the environment."""
        return config.load(cls)
