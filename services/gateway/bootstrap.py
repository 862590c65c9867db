"""Wire the gateway: its peers over HTTP and its token verifier, each replaceable by name."""

from __future__ import annotations

from common.client import HttpClient
from common.service import Overrides, Service

from gateway.adapters.timeline import TimelineClient
from gateway.adapters.tokens import TokenVerifier
from gateway.adapters.users import UsersClient
from gateway.config import GatewayConfig
from gateway.service_layer.ports import Ports

OVERRIDABLE = {"users", "timeline", "tokens"}


def bootstrap(config: GatewayConfig | None = None,
              **overrides: object) -> Service[GatewayConfig, Ports]:
    """The wired gateway; pass `users=`, `timeline=` or `tokens=` to replace an adapter."""
    config = config or GatewayConfig.load()
    given = Overrides(OVERRIDABLE, overrides)
    closers: list = []
    users = given.get("users", lambda: UsersClient(HttpClient(config.users)), closers)
    timeline = given.get("timeline", lambda: TimelineClient(HttpClient(config.timeline)),
                         closers)
    tokens = given.get("tokens", lambda: (
        TokenVerifier(config.jwt_public_key, config.jwt_leeway) if config.jwt_public_key
        else TokenVerifier.from_file(config.jwt_public_key_file, config.jwt_leeway)))
    checks = {}
    public_key = getattr(tokens, "public_key", None)
    if callable(public_key):
        # Not ready until users' public key can be read: no token could be checked.
        checks["jwt_public_key"] = public_key
    return Service("gateway", config, Ports(users=users, timeline=timeline, tokens=tokens),
                   checks=checks, closers=closers)
