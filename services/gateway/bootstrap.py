"""Wire the gateway: its peers over HTTP and its token verifier, each replaceable by name."""

from __future__ import annotations

from common import jwks
from common.client import HttpClient
from common.service import Overrides, Service

from gateway.adapters.status import HttpStatusSources
from gateway.adapters.timeline import TimelineClient
from gateway.adapters.tokens import TokenVerifier
from gateway.adapters.users import UsersClient
from gateway.config import GatewayConfig, status_sources
from gateway.service_layer.ports import Ports

OVERRIDABLE = {"users", "timeline", "tokens", "status"}


def token_verifier(config: GatewayConfig) -> TokenVerifier:
    """The verifier of the key set the environment gives (fixed), else of the key file's,
    followed as rotation changes it."""
    keys = config.jwt_public_keys or jwks.WatchedFile(
        config.jwt_public_keys_file, jwks.read_key_set, config.jwt_keys_check_interval)
    return TokenVerifier(keys, issuer=config.jwt_issuer, audience=config.jwt_audience,
                         leeway=config.jwt_leeway)


def bootstrap(config: GatewayConfig | None = None,
              **overrides: object) -> Service[GatewayConfig, Ports]:
    """The wired gateway; pass `users=`, `timeline=`, `tokens=` or `status=` to replace an
    adapter."""
    config = config or GatewayConfig.load()
    given = Overrides(OVERRIDABLE, overrides)
    closers: list = []
    users = given.get("users", lambda: UsersClient(
        HttpClient(config.users, caller="gateway"),
        HttpClient(config.users_sign_in, caller="gateway")), closers)
    timeline = given.get("timeline", lambda: TimelineClient(
        HttpClient(config.timeline, caller="gateway")), closers)
    tokens = given.get("tokens", lambda: token_verifier(config))
    checks = {}
    key_set = getattr(tokens, "key_set", None)
    if callable(key_set):
        # Not ready until users' public keys can be read: no token could be checked.
        checks["jwt_public_keys"] = key_set
    status = given.get("status", lambda: HttpStatusSources(
        {name: config.status_urls[name] for name in status_sources(config.status_sources)},
        timeout=config.status_timeout, own_checks=checks), closers)
    return Service("gateway", config, Ports(users=users, timeline=timeline, tokens=tokens,
                                            status=status),
                   checks=checks, closers=closers)
