"""Wire the gateway's collaborators: production defaults, replaceable in tests."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.adapters.timeline import TimelineClient
from gateway.adapters.users import UsersClient
from gateway.auth import TokenVerifier
from gateway.config import GatewayConfig
from gateway.downstream import Downstream


@dataclass
class Gateway:
    """Everything a request handler of the gateway talks to."""

    config: GatewayConfig
    users: UsersClient
    timeline: TimelineClient
    tokens: TokenVerifier

    def close(self) -> None:
        """Release pooled connections."""
        self.users.http.close()
        self.timeline.http.close()


def bootstrap(config: GatewayConfig, **overrides: object) -> Gateway:
    """The gateway's collaborators; pass `users=`, `timeline=` or `tokens=` to replace one."""
    users = overrides.get("users") or UsersClient(Downstream(config.users, config.retry_after))
    timeline = overrides.get("timeline") or TimelineClient(
        Downstream(config.timeline, config.retry_after))
    tokens = overrides.get("tokens")
    if tokens is None:
        tokens = (TokenVerifier(config.jwt_public_key, config.jwt_leeway)
                  if config.jwt_public_key else
                  TokenVerifier.from_file(config.jwt_public_key_file, config.jwt_leeway))
    return Gateway(config=config, users=users, timeline=timeline,  # type: ignore[arg-type]
                   tokens=tokens)  # type: ignore[arg-type]
