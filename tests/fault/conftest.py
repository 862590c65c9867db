"""Fault-test fixtures: real faults through `make stop/start` and Toxiproxy.

Every fault test states its steady-state hypothesis in its docstring, injects one real
fault, asserts what the system does meanwhile, removes the fault and asserts recovery.
Faults are always removed in a `finally`, so one failing test cannot leave the stack
broken for the next. And before each test the steady state must hold (every probe read
answers 200, no breaker of any worker is open): a test must not see the tail of
the fault before it, nor blame its own fault for it.
"""

from __future__ import annotations

import json
import urllib.request
from typing import Any, Iterator

import pytest

from conftest import make, wait_until
from fault._client import Api, Member, assert_steady

TOXIPROXY_API = "http://127.0.0.1:18474"
# Longer than any breaker's reset timeout plus a trial, well inside a fault's recovery.
STEADY_DEADLINE = 30.0


class Toxiproxy:
    """A small client of Toxiproxy's HTTP API for the proxies in front of each store.

    The proxies are named after the store they front (postgres, redis, cassandra, kafka);
    the services of the test profile connect through them.
    """

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(f"{TOXIPROXY_API}{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=5) as resp:
            raw = resp.read()
        return json.loads(raw) if raw else None

    def proxies(self) -> dict[str, Any]:
        """Every proxy by name."""
        return self._call("GET", "/proxies")

    def add_latency(self, proxy: str, ms: int, jitter: int = 0) -> None:
        """Delay every response from the store by `ms` milliseconds."""
        self._call("POST", f"/proxies/{proxy}/toxics", {
            "name": f"{proxy}_latency", "type": "latency", "stream": "downstream",
            "attributes": {"latency": ms, "jitter": jitter}})

    def add_timeout(self, proxy: str, ms: int = 0) -> None:
        """Stop all data and close the connection after `ms` (0: hold it open forever)."""
        self._call("POST", f"/proxies/{proxy}/toxics", {
            "name": f"{proxy}_timeout", "type": "timeout", "stream": "downstream",
            "attributes": {"timeout": ms}})

    def add_reset(self, proxy: str) -> None:
        """Reset every connection (TCP RST) at once."""
        self._call("POST", f"/proxies/{proxy}/toxics", {
            "name": f"{proxy}_reset", "type": "reset_peer", "stream": "downstream",
            "attributes": {"timeout": 0}})

    def cut(self, proxy: str) -> None:
        """Disable the proxy: connections are refused, as if the store were gone."""
        self._call("POST", f"/proxies/{proxy}", {"enabled": False})

    def heal(self, proxy: str) -> None:
        """Remove every toxic of `proxy` and enable it again."""
        for toxic in self._call("GET", f"/proxies/{proxy}/toxics") or []:
            self._call("DELETE", f"/proxies/{proxy}/toxics/{toxic['name']}")
        self._call("POST", f"/proxies/{proxy}", {"enabled": True})


@pytest.fixture()
def toxiproxy() -> Iterator[Toxiproxy]:
    """The Toxiproxy client; every proxy is healed after the test, pass or fail."""
    client = Toxiproxy()
    try:
        yield client
    finally:
        for name in client.proxies():
            client.heal(name)


class Components:
    """`make stop/start SERVICE=x` for the test profile, remembering what to restart."""

    def __init__(self) -> None:
        self.stopped: list[str] = []

    def stop(self, name: str) -> None:
        result = make("stop", f"SERVICE={name}")
        assert result.returncode == 0, result.stdout + result.stderr
        self.stopped.append(name)

    def start(self, name: str) -> None:
        result = make("start", f"SERVICE={name}")
        assert result.returncode == 0, result.stdout + result.stderr
        if name in self.stopped:
            self.stopped.remove(name)


@pytest.fixture()
def components() -> Iterator[Components]:
    """Stop and start components; anything left stopped is started again after the test."""
    comps = Components()
    try:
        yield comps
    finally:
        for name in list(comps.stopped):
            comps.start(name)


@pytest.fixture(scope="session")
def prober() -> Member:
    """An account whose reads probe the steady state."""
    api = Api()
    try:
        return wait_until(lambda: api.sign_up("fault_probe"), timeout=60, interval=0.5,
                          message="signing up the steady-state prober")
    finally:
        api.close()


@pytest.fixture(autouse=True)
def steady_state(prober: Member) -> None:
    """Wait until the steady state holds before the test injects its fault."""
    wait_until(lambda: assert_steady(prober), timeout=STEADY_DEADLINE, interval=0.5,
               message="the steady state (probe reads answer 200, no breaker open)")


__all__ = ["Toxiproxy", "Components", "wait_until"]
