"""Where the platform keeps its files and which ports its stores use.

Read from the environment when asked, never at import: a caller (a test, a throwaway
platform in another folder) that sets `MURMUR_HOME` or a `MURMUR_*_PORT` first gets what it
set.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

from common import config

HOST = "127.0.0.1"


@dataclass(frozen=True)
class Paths:
    """The platform's folders: data and rendered configs, logs, sockets and stamps, caches."""

    home: Path
    cache: Path

    @property
    def etc(self) -> Path:
        return self.home / "etc"

    @property
    def log(self) -> Path:
        return self.home / "log"

    @property
    def run(self) -> Path:
        return self.home / "run"


def paths() -> Paths:
    return Paths(home=config.murmur_home(),
                 cache=Path(config.env("MURMUR_CACHE", str(config.REPO_ROOT / ".cache"))))


def venv_bin() -> Path:
    """The bin folder of the Python running this tool (the platform's virtual environment),
    written the same however it was invoked, so the programs' definitions do not change."""
    return Path(os.path.normpath(os.path.abspath(sys.executable))).parent


def _port(name: str, default: int) -> int:
    """A platform port, overridable as MURMUR_<NAME>_PORT."""
    return config.env_int(f"MURMUR_{name}_PORT", default)


@dataclass(frozen=True)
class Ports:
    """The ports of the shared stores and servers (both profiles use the same ones)."""

    postgres: int
    redis: int
    kafka: int
    kafka_controller: int
    kafka_proxied: int  # the dev profile's listener behind its kafka proxy (test: + offset)
    cassandra: int
    cassandra_storage: int
    cassandra_jmx: int
    toxiproxy: int
    nginx_status: int  # the dev profile's nginx status page (test: + offset)
    zipkin: int  # the trace viewer (its API, UI and span collector)
    victoriametrics: int  # the time-series server (Prometheus API, vmui)
    vmalert: int  # the rule evaluator (recording and alerting rules, its UI)


def ports() -> Ports:
    return Ports(
        postgres=_port("PG", 15432),
        redis=_port("REDIS", 16379),
        kafka=_port("KAFKA", 19092),
        kafka_controller=_port("KAFKA_CONTROLLER", 19093),
        kafka_proxied=_port("KAFKA_PROXIED", 19094),
        cassandra=_port("CASSANDRA", 19042),
        cassandra_storage=_port("CASSANDRA_STORAGE", 17000),
        cassandra_jmx=_port("CASSANDRA_JMX", 17199),
        toxiproxy=_port("TOXIPROXY", 18474),
        nginx_status=_port("NGINX_STATUS", 18080),
        zipkin=_port("ZIPKIN", 19411),
        victoriametrics=_port("VICTORIAMETRICS", 18428),
        vmalert=_port("VMALERT", 18880),
    )


def proxy_base_port(name: str, default: int) -> int:
    """The dev profile's port of one Toxiproxy proxy (MURMUR_<NAME>_PROXY_PORT); every other
    profile adds its port offset."""
    return _port(f"{name}_PROXY", default)


def prefix(profile: str) -> str:
    """What a profile's own process and proxy names start with: nothing for dev, `test-`."""
    return "" if profile == "dev" else f"{profile}-"


def offset(profile: str) -> int:
    """What a profile adds to each of its own ports (dev 0, test 10)."""
    return config.PROFILES[profile].port_offset


def write_if_changed(path: Path, text: str) -> bool:
    """Write `text` to `path` unless it already holds it; True when the file changed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and path.read_text() == text:
        return False
    path.write_text(text)
    return True
