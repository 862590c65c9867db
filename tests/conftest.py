"""Fixtures shared by every test layer: the test profile's real stores.

The tests run against the same servers as `make up` but in the test profile's own
namespace (database murmur_test, keyspace murmur_test, topic prefix `test.`, Redis db 1),
so they never touch the demo data.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Callable, Iterator

import pytest

os.environ.setdefault("MURMUR_PROFILE", "test")

from common import config  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def pytest_configure() -> None:
    if os.environ["MURMUR_PROFILE"] != "test":
        raise pytest.UsageError("tests run in the test profile only (MURMUR_PROFILE=test)")


def unique(prefix: str = "t") -> str:
    """A short name no earlier run has used."""
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


def wait_until(check: Callable[[], object], timeout: float = 10.0, interval: float = 0.05,
               message: str = "condition") -> object:
    """Poll `check` until it returns a truthy value; fail with `message` at the deadline."""
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    value: object = None
    while time.monotonic() < deadline:
        try:
            value = check()
            if value:
                return value
        except Exception as exc:  # noqa: BLE001 - keep polling; report the last error
            last_error = exc
        time.sleep(interval)
    raise AssertionError(f"{message} not reached within {timeout}s"
                         + (f" (last error: {last_error!r})" if last_error
                            else f" (last value: {value!r})"))


def stackctl(*args: str, env: dict[str, str] | None = None,
             timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run the platform tool for the test profile and capture its output."""
    return subprocess.run(
        [sys.executable, str(REPO / "local/stackctl"), "--profile", "test", *args],
        cwd=REPO, env={**os.environ, **(env or {})}, capture_output=True, text=True,
        timeout=timeout,
    )


def service_env(name: str) -> dict[str, str]:
    """The environment a running supervised program was started with."""
    import stackctl

    info = stackctl.process_info(name)
    assert info["statename"] == "RUNNING", f"{name} is {info['statename']}"
    raw = Path(f"/proc/{info['pid']}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


def make(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run a make target of the project, as a user would, in the test profile."""
    return subprocess.run(["make", "--no-print-directory", *args, "PROFILE=test"], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="session")
def stores() -> config.Stores:
    """Addresses of the test profile's stores."""
    return config.stores()


@pytest.fixture()
def pg(stores: config.Stores) -> Iterator["object"]:
    """An autocommit-off psycopg connection to the test database."""
    import psycopg

    with psycopg.connect(stores.pg_conninfo) as conn:
        yield conn


@pytest.fixture()
def redis_client(stores: config.Stores) -> Iterator["object"]:
    """A redis-py client on the test profile's database."""
    import redis

    client = redis.Redis.from_url(stores.redis_url, socket_timeout=5)
    yield client
    client.close()


@pytest.fixture(scope="session")
def cassandra_session(stores: config.Stores) -> Iterator["object"]:
    """A Cassandra session bound to the test keyspace."""
    from cassandra.cluster import Cluster

    cluster = Cluster(list(stores.cassandra_hosts), port=stores.cassandra_port,
                      connect_timeout=10)
    session = cluster.connect(stores.keyspace)
    session.default_timeout = 20
    yield session
    cluster.shutdown()
