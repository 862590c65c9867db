"""Gateway settings from the environment, with local defaults (built on common.config).

Each setting is declared once below (`common.config.setting`): its variable(s), default,
type and what it is for. `GatewayConfig.load()` reads them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from common import config, jwks
from common.config import Settings, computed, loaded, setting


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


# The processes the status summary reads (gateway.domain.status.SOURCES), by their name.
STATUS_PROCESSES = ("users", "timeline", "fanout", "users-relay", "timeline-relay",
                    "timeline-authors")


def status_sources(names: tuple[str, ...]) -> tuple[str, ...]:
    """`names` (GATEWAY_STATUS_SOURCES) if each is a process the summary can read;
    SettingError, naming the variable, otherwise."""
    unknown = sorted(set(names) - set(STATUS_PROCESSES))
    if unknown:
        raise config.SettingError(f"GATEWAY_STATUS_SOURCES={','.join(names)!r}: unknown "
                                  f"{unknown}; known: {', '.join(STATUS_PROCESSES)}")
    return names


def status_urls() -> dict[str, str]:
    """Where each process serves /readyz and /metrics: MURMUR_<NAME>_URL (dashes as
    underscores: MURMUR_USERS_RELAY_URL), else its port on 127.0.0.1 in the profile; users
    and timeline at the URLs the API's calls use."""
    return {name: config.SERVICE_URL.read(
        default=f"http://127.0.0.1:{config.profile().port_of(name)}",
        NAME=name.upper().replace("-", "_")).rstrip("/") for name in STATUS_PROCESSES}


def downstream_config(name: str, **defaults: object) -> DownstreamConfig:
    """The settings of downstream `name`, at the URL its callers use."""
    return config.load(DownstreamConfig, name=name,
                       base_url=config.service_url(name).rstrip("/"), defaults=defaults)


@dataclass(frozen=True)
class GatewayConfig(Settings):
    """Everything the gateway needs; `load()` reads it from the environment."""

    users: DownstreamConfig = loaded(lambda: downstream_config("users"),
                                     doc="how to reach users")
    # Sign-up and sign-in run argon2 on users: slower, and the target of password floods.
    # They get a client of their own (pool, breaker, timeouts: GATEWAY_USERS_SIGN_IN_*),
    # so that a flood of them never fills the pool or opens the breaker that profile
    # reads and follows depend on.
    users_sign_in: DownstreamConfig = loaded(
        lambda: config.load(DownstreamConfig, name="users_sign_in",
                            base_url=config.service_url("users").rstrip("/"),
                            defaults={"read_timeout": 3.0}),
        doc="how to reach users for sign-up and sign-in")
    timeline: DownstreamConfig = loaded(lambda: downstream_config("timeline"),
                                        doc="how to reach timeline")
    jwt_public_keys: str = setting(
        "MURMUR_JWT_PUBLIC_KEYS", "",
        doc="JWK Set (JSON) of the keys checking tokens; empty: read jwt_public_keys_file")
    # The local platform's key file: rotation adds a key to it before users signs with it.
    jwt_public_keys_file: Path = setting(
        "MURMUR_JWT_PUBLIC_KEYS_FILE", lambda c: config.jwt_keys_dir() / "jwks.json",
        parse=Path, doc="file of the JWK Set (default: the profile's generated one)")
    jwt_keys_check_interval: float = setting(
        "GATEWAY_JWT_KEYS_CHECK_INTERVAL", 1.0, parse=float,
        doc="seconds between two looks at the key file for a rotated key")
    jwt_issuer: str = setting("MURMUR_JWT_ISSUER", jwks.ISSUER,
                              doc="the iss a token must carry (users signs with it)")
    jwt_audience: str = setting("MURMUR_JWT_AUDIENCE", jwks.AUDIENCE,
                                doc="the aud a token must carry (users signs with it)")
    jwks_max_age: int = setting("GATEWAY_JWKS_MAX_AGE", 300, parse=int,
                                doc="Cache-Control max-age (s) of the published JWK Set")
    jwt_leeway: float = setting("GATEWAY_JWT_LEEWAY", 5.0, parse=float,
                                doc="seconds of clock skew a token's times are allowed")
    retry_after: int = setting("GATEWAY_RETRY_AFTER", 1, parse=int,
                               doc="Retry-After (s) of a 503 the gateway answers")
    # Seconds a client request may take in all; every downstream call gets what is left.
    # Below nginx's proxy_read_timeout (10 s), so the client hears the gateway's 503 rather
    # than nginx's 504.
    request_budget: float = setting("GATEWAY_REQUEST_BUDGET", 5.0, parse=float,
                                    doc="seconds a client request may take in all")

    # The public system status (GET /api/v1/system/status), read from every process.
    status_sources: tuple[str, ...] = setting(
        "GATEWAY_STATUS_SOURCES", STATUS_PROCESSES, parse=config.comma_list,
        doc="processes the system status reads (comma-separated); the others show unknown")
    status_urls: dict[str, str] = computed(lambda _c: status_urls(),
                                           doc="where each process the system status reads "
                                               "serves /readyz and /metrics")
    status_timeout: float = setting("GATEWAY_STATUS_TIMEOUT", 0.5, parse=float,
                                    doc="seconds one read of a process's /readyz or /metrics "
                                        "may take")
    status_max_age: float = setting("GATEWAY_STATUS_MAX_AGE", 2.0, parse=float,
                                    doc="seconds a gateway worker shares one system status "
                                        "(at most one reading of the processes per period)")

    @classmethod
    def load(cls) -> "GatewayConfig":
        """Read the gateway's settings from the environment."""
        return config.load(cls)
