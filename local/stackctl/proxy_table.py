"""The Toxiproxy proxies between each profile's services and the stores.

Every profile has its own set, named like its processes (dev: `redis`; test: `test-redis`)
and listening on the dev port plus the profile's port offset, so a fault put on (or healed
from) one profile's proxies never reaches the other profile's services. One Toxiproxy
server holds them all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from common import config

from .layout import HOST, offset, ports, prefix, proxy_base_port
from .toxiproxy import Toxiproxy


@dataclass(frozen=True)
class Proxy:
    """A Toxiproxy proxy in front of one store, for one profile; services connect to `listen`."""

    store: str  # what `DEP=` names: postgres, redis, cassandra, kafka, redis-fanout
    profile: str
    listen: int
    upstream: int
    direct: int  # where services connect when Toxiproxy is switched off
    env: str  # the services' variable holding the port they connect to
    only: tuple[str, ...] = ()  # if set: the only service processes using it (by base name)

    @property
    def name(self) -> str:
        """Toxiproxy's name of the proxy: the store's, with the profile's process prefix."""
        return prefix(self.profile) + self.store

    def definition(self) -> dict[str, Any]:
        """The proxy as Toxiproxy's config file and /populate take it."""
        return {"name": self.name, "listen": f"{HOST}:{self.listen}",
                "upstream": f"{HOST}:{self.upstream}", "enabled": True}


def kafka_listener(profile: str) -> tuple[str, int]:
    """The Kafka listener behind `profile`'s kafka proxy: (name, port). It advertises that
    proxy's address, so a client bootstrapped through the proxy keeps talking through it."""
    return f"PROXIED_{profile.upper()}", ports().kafka_proxied + offset(profile)


def proxies(profile: str) -> list[Proxy]:
    """`profile`'s proxies, one per store, plus fanout's own way to Redis."""
    p, shift = ports(), offset(profile)

    def proxy(store: str, base: int, upstream: int, direct: int, env: str,
              only: tuple[str, ...] = ()) -> Proxy:
        return Proxy(store, profile, base + shift, upstream, direct, env, only)

    return [
        proxy("postgres", proxy_base_port("PG", 25432), p.postgres, p.postgres, "MURMUR_PG_PORT"),
        proxy("redis", proxy_base_port("REDIS", 26379), p.redis, p.redis, "MURMUR_REDIS_PORT"),
        proxy("cassandra", proxy_base_port("CASSANDRA", 29042), p.cassandra, p.cassandra,
              "MURMUR_CASSANDRA_PORT"),
        proxy("kafka", proxy_base_port("KAFKA", 29092), kafka_listener(profile)[1], p.kafka,
              "MURMUR_KAFKA_PORT"),
        # fanout's own way to Redis, so a fault can hit the fan-out writes alone (the
        # network between fanout and Redis) while reads and posts keep theirs.
        proxy("redis-fanout", proxy_base_port("REDIS_FANOUT", 26380), p.redis, p.redis,
              "MURMUR_REDIS_PORT", only=("fanout",)),
    ]


def all_proxies() -> list[Proxy]:
    """Every profile's proxies: what the one Toxiproxy server holds."""
    return [p for prof in config.PROFILES for p in proxies(prof)]


def proxy(profile: str, store: str) -> Proxy:
    """`profile`'s proxy in front of `store` (KeyError if there is none)."""
    for candidate in proxies(profile):
        if candidate.store == store:
            return candidate
    raise KeyError(store)


def proxies_of(profile: str, process: str) -> list[Proxy]:
    """The proxies a service process connects through: one per store, its own if it has."""
    chosen = {p.env: p for p in proxies(profile) if not p.only}
    chosen.update({p.env: p for p in proxies(profile) if process in p.only})
    return list(chosen.values())


def proxy_definitions() -> list[dict[str, Any]]:
    return [p.definition() for p in all_proxies()]


def populate_proxies() -> None:
    """Make a running Toxiproxy hold every profile's proxies: missing ones are created,
    changed ones fixed, one already right is left as it is (with its toxics: `up` on a stack
    under a fault does not heal it)."""
    Toxiproxy().populate(proxy_definitions())
