"""The local platform behaves as documented: stop/start per component, idempotent up,
and a clear error when a component cannot start.

These tests drive the real commands (`make stop/start`, `stackctl up`) against the running
test profile, and one throwaway platform in a temporary folder for the failure case.
"""

from __future__ import annotations

import socket
import time

import pytest

from conftest import make, stackctl, wait_until
import stackctl as platform

# Every store and observability server, and a sample of the test profile's service
# processes (with and without a port).
COMPONENTS = ["redis", "postgres", "kafka", "cassandra", "toxiproxy", "zipkin",
              "victoriametrics", "vmalert", "test-nginx", "test-users", "test-timeline-relay"]


def port_refuses(port: int) -> bool:
    """True when nothing accepts connections on the port."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return False
    except OSError:
        return True


def status_table() -> dict[str, tuple[str, str, str]]:
    """`make status` parsed into {component: (state, port, pid)}."""
    result = make("status")
    assert result.returncode == 0, result.stderr
    rows = [line.split() for line in result.stdout.splitlines()[1:] if line.strip()]
    return {name: (state, port, pid) for name, state, port, pid in rows}


@pytest.mark.parametrize("name", COMPONENTS)
def test_make_stop_closes_the_port_and_make_start_brings_the_component_back_ready(name):
    comp = platform.component(name)
    assert status_table()[name][0] == "up", f"{name} should be up before the test"

    stopped = make("stop", f"SERVICE={name}")
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    if comp.port:
        assert port_refuses(comp.port), f"{name} still accepts connections on {comp.port}"
    assert status_table()[name][0] == "down"

    started = make("start", f"SERVICE={name}")
    assert started.returncode == 0, started.stdout + started.stderr
    assert f"ready  {name}" in started.stdout
    comp.ready()  # a real query answers, not just an open port
    assert status_table()[name][0] == "up"


def test_a_second_up_restarts_nothing_and_creates_nothing():
    """Idempotence. How long it takes is a figure (printed; DESIGN section 9's warm start is
    measured by benchmarks), never a timed assertion."""
    before = status_table()
    t0 = time.monotonic()
    result = stackctl("up")
    elapsed = time.monotonic() - t0
    assert result.returncode == 0, result.stdout + result.stderr
    assert status_table() == before, "a process was restarted by a second up"
    schema_line = next(line for line in result.stdout.splitlines() if "schema" in line)
    assert schema_line.count(": 0 new") == 3, schema_line
    print(f"second up took {elapsed:.1f}s")


def test_a_component_that_cannot_start_names_itself_and_shows_its_log(tmp_path):
    # A throwaway platform in its own folder, whose Redis port is already taken.
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    busy_port = blocker.getsockname()[1]
    env = {"MURMUR_HOME": str(tmp_path / "home"), "MURMUR_REDIS_PORT": str(busy_port)}
    try:
        result = stackctl("start", "redis", env=env, timeout=120)
        assert result.returncode != 0
        log_path = tmp_path / "home" / "log" / "redis.log"
        assert "ERROR: redis did not come up" in result.stderr
        assert f"--- last lines of {log_path} ---" in result.stderr
        assert "Address already in use" in result.stderr
        assert f"--- full log: {log_path}" in result.stderr
    finally:
        stackctl("down", env=env, timeout=60)
        blocker.close()
    wait_until(lambda: not (tmp_path / "home" / "run" / "supervisord.pid").exists(), timeout=30,
               message="the throwaway supervisor to exit")
