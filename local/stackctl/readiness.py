"""When a component is ready: each answers a real request, and `wait_ready` waits for them."""

from __future__ import annotations

import socket
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from common import config

from .layout import HOST, ports
from .supervisord import process_info
from .toxiproxy import Toxiproxy

if TYPE_CHECKING:
    from .components import Component

Check = Callable[[], None]  # raises until the component answers


def ready_postgres() -> None:
    import psycopg

    s = config.stores()
    with psycopg.connect(host=HOST, port=ports().postgres, dbname="postgres", user=s.pg_user,
                         password=s.pg_password, connect_timeout=2) as conn:
        conn.execute("SELECT 1").fetchone()


def ready_redis() -> None:
    import redis

    client = redis.Redis(host=HOST, port=ports().redis, socket_timeout=2,
                         socket_connect_timeout=2)
    try:
        assert client.ping()
    finally:
        client.close()


def ready_kafka() -> None:
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=f"{HOST}:{ports().kafka}",
                             request_timeout_ms=3000, client_id="murmur-stackctl")
    try:
        # Metadata with a live controller means the broker serves requests.
        if not admin.describe_cluster().get("controller_id", -1) >= 0:
            raise RuntimeError("no controller yet")
    finally:
        admin.close()


def ready_cassandra() -> None:
    from cassandra.cluster import Cluster

    cluster = Cluster([HOST], port=ports().cassandra, connect_timeout=3,
                      control_connection_timeout=3)
    try:
        session = cluster.connect()
        session.execute("SELECT release_version FROM system.local", timeout=3).one()
    finally:
        cluster.shutdown()


def ready_toxiproxy() -> None:
    Toxiproxy(timeout=2).version()


def http_get(url: str) -> None:
    with urllib.request.urlopen(url, timeout=2) as resp:
        resp.read()


def ready_http(url: str) -> Check:
    def check() -> None:
        http_get(url)

    return check


def ready_nginx(status_port: int) -> Check:
    return ready_http(f"http://{HOST}:{status_port}/healthz")


def wait_ready(comps: list[Component]) -> None:
    """Poll each component's readiness check until its deadline, with progress; exit 1
    naming each component that did not come up, with the end of its log."""
    t0 = time.monotonic()
    results: dict[str, tuple[bool, str, float]] = {}
    lock = threading.Lock()

    def watch(comp: Component) -> None:
        deadline = t0 + comp.timeout
        last_error = ""
        while time.monotonic() < deadline:
            state = process_info(comp.name)["statename"]
            if state in ("FATAL", "EXITED", "STOPPED", "UNKNOWN"):
                last_error = f"process state {state}"
                break
            try:
                comp.ready()
                if state != "RUNNING":  # answering, but supervisord has not confirmed it yet
                    raise RuntimeError(f"process state {state}")
                with lock:
                    results[comp.name] = (True, "", time.monotonic() - t0)
                    print(f"  ready  {comp.name:<16} {time.monotonic() - t0:6.1f}s", flush=True)
                return
            except Exception as exc:  # noqa: BLE001 - any failure means "not ready yet"
                last_error = f"{type(exc).__name__}: {exc}".strip()
            time.sleep(0.5)
        else:
            last_error = f"not ready within {comp.timeout:.0f}s ({last_error})"
        with lock:
            results[comp.name] = (False, last_error, time.monotonic() - t0)

    threads = [threading.Thread(target=watch, args=(c,), daemon=True) for c in comps]
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        time.sleep(0.5)
        waiting = [c.name for c in comps if c.name not in results]
        if waiting and int(time.monotonic() - t0) % 5 == 0:
            print(f"  waiting ({time.monotonic() - t0:4.0f}s): {', '.join(waiting)}", flush=True)
            time.sleep(0.5)
    failed = [c for c in comps if not results[c.name][0]]
    for comp in failed:
        print(f"\nERROR: {comp.name} did not come up: {results[comp.name][1]}", file=sys.stderr)
        print(f"--- last lines of {comp.log} ---", file=sys.stderr)
        print(tail(comp.log, 25), file=sys.stderr)
        print(f"--- full log: {comp.log}", file=sys.stderr)
    if failed:
        sys.exit(1)


def tail(path: Path, lines: int) -> str:
    if not path.exists():
        return "(no log written)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def wait_port_closed(port_no: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            sock.settimeout(0.5)
            if sock.connect_ex((HOST, port_no)) != 0:
                return
        time.sleep(0.2)


def poll(check: Callable[[], bool], timeout: float, what: str) -> None:
    """Wait until `check()` holds; exit with an error naming `what` at the deadline."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            sys.exit(f"ERROR: {what} did not happen within {timeout:.0f}s")
        time.sleep(0.1)
