"""What the gateway's resilience costs, and how fast it fails.

    python bench/resilience.py [--stack] [--threads 8] [--seconds 5]

1. Fail-fast latency with the timeline breaker open: p50/p99 of the gateway's 503 to
   GET /api/v1/timeline. In-process by default: the gateway app served over HTTP by a
   threaded WSGI server, its timeline pointed at a closed port. With `--stack`, through the
   running test profile instead: test-timeline is stopped, test-gateway-1 is measured
   directly, and test-timeline is started again afterwards (run it under the stack lock).
2. The throughput cost of the wrappers (deadline, breaker, retry policy): `--threads`
   threads calling a fast local HTTP server (its own process) through `HttpClient.call`,
   with the wrappers and without them (no deadline, a pass-through breaker, no retry
   policy), as a ratio; plus the wrappers' CPU per call around a call that does nothing.
3. A breaker does not cap throughput: `--threads` threads through one `Breaker` around a
   call that sleeps 5 ms, against plain `pybreaker.CircuitBreaker.call`, which holds its
   lock for the whole call and so serialises the threads.

Figures only: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Callable

import urllib3

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "services"))

from common import config, resilience  # noqa: E402
from common.client import HttpClient, PeerConfig  # noqa: E402
from gateway.config import DownstreamConfig, GatewayConfig  # noqa: E402

PASSWORD = "bench-password-1"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def closed_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        return listener.getsockname()[1]


def report_latencies(label: str, seconds: list[float], statuses: set[int]) -> None:
    ms = [s * 1000 for s in seconds]
    print(f"  {label}: n={len(ms)} statuses={sorted(statuses)} "
          f"p50={percentile(ms, 0.50):.2f} ms p99={percentile(ms, 0.99):.2f} ms "
          f"max={max(ms):.2f} ms")


# ----------------------------------------------------------------- 1. fail-fast latency


def timed_gets(http: urllib3.PoolManager, url: str, headers: dict[str, str],
               count: int) -> tuple[list[float], set[int], set[str]]:
    """`count` sequential GETs: durations, statuses and the Retry-After values seen."""
    durations, statuses, retry_after = [], set(), set()
    for _ in range(count):
        started = time.perf_counter()
        resp = http.request("GET", url, headers=headers, retries=False, timeout=10)
        durations.append(time.perf_counter() - started)
        statuses.add(resp.status)
        retry_after.add(resp.headers.get("Retry-After", "-"))
    return durations, statuses, retry_after


def fail_fast_in_process(requests: int) -> None:
    import json

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    import jwt
    from werkzeug.serving import make_server

    from common import jwks
    from gateway.entrypoints.app import create_app
    from gateway.adapters.tokens import TokenVerifier

    key = Ed25519PrivateKey.generate()
    public = json.dumps(jwks.key_set([key.public_key()]))
    down = f"http://127.0.0.1:{closed_port()}"
    cfg = GatewayConfig(
        users=DownstreamConfig("users", down, 0.5, 2.0, 8),
        users_sign_in=DownstreamConfig("users_sign_in", down, 0.5, 3.0, 8),
        timeline=DownstreamConfig("timeline", down, 0.5, 2.0, 8, reset_timeout=600),
        jwt_public_keys=public, jwt_public_keys_file=Path("unused"), jwt_leeway=5, retry_after=1)
    server = make_server("127.0.0.1", 0, create_app(cfg, tokens=TokenVerifier(public)),
                         threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    now = int(time.time())
    token = jwt.encode({"iss": jwks.ISSUER, "aud": jwks.AUDIENCE, "sub": "1",
                        "username": "bench", "iat": now, "exp": now + 3600}, key,
                       algorithm="EdDSA", headers={"kid": jwks.thumbprint(key.public_key())})
    url = f"http://127.0.0.1:{server.server_port}/api/v1/timeline"
    http = urllib3.PoolManager(maxsize=1)
    auth = {"Authorization": f"Bearer {token}"}
    try:
        timed_gets(http, url, auth, 1)  # trips the breaker: its retries meet refusals
        durations, statuses, retry_after = timed_gets(http, url, auth, requests)
    finally:
        server.shutdown()
    print("1. fail-fast, timeline breaker open (in-process gateway over HTTP, werkzeug):")
    report_latencies("GET /api/v1/timeline", durations, statuses)
    print(f"  Retry-After seen: {sorted(retry_after)}")


def component(name: str) -> str:
    """The local platform's name of service `name` in this profile."""
    profile = config.profile().name
    return name if profile == "dev" else f"{profile}-{name}"


def stackctl(*args: str) -> None:
    subprocess.run([sys.executable, str(REPO / "local/stackctl"), "--profile",
                    config.profile().name, *args], check=True, cwd=REPO,
                   stdout=subprocess.DEVNULL)


def wait_ready(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if urllib3.request("GET", url, timeout=2, retries=False).status == 200:
                return
        except urllib3.exceptions.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} not ready within {timeout}s")


def fail_fast_through_stack(requests: int) -> None:
    offset = config.profile().port_offset
    gateway = f"http://127.0.0.1:{config.SERVICE_PORTS['gateway'] + offset}/api/v1"
    timeline_ready = f"http://127.0.0.1:{config.SERVICE_PORTS['timeline'] + offset}/readyz"
    http = urllib3.PoolManager(maxsize=1)
    name = f"bench_ff_{uuid.uuid4().hex[:8]}"
    body = {"username": name, "password": PASSWORD}
    assert http.request("POST", f"{gateway}/users", json=body).status == 201
    token = http.request("POST", f"{gateway}/sessions", json=body).json()["access_token"]
    auth = {"Authorization": f"Bearer {token}"}
    healthy, statuses, _ = timed_gets(http, f"{gateway}/timeline", auth, 200)
    stackctl("stop", component("timeline"))
    try:
        # Each gunicorn worker has its own breaker: warm every one of them open.
        timed_gets(http, f"{gateway}/timeline", auth, 100)
        durations, down_statuses, retry_after = timed_gets(http, f"{gateway}/timeline", auth,
                                                           requests)
    finally:
        stackctl("start", component("timeline"))
        wait_ready(timeline_ready)
    print("1. fail-fast, timeline stopped (running stack, test-gateway-1 directly):")
    report_latencies("healthy GET /api/v1/timeline", healthy, statuses)
    report_latencies("timeline down, breaker open", durations, down_statuses)
    print(f"  Retry-After seen: {sorted(retry_after)}")


# ------------------------------------------------------------ 2. cost of the wrappers


def serve_fast(port: int, ready: "multiprocessing.synchronize.Event") -> None:
    """A minimal HTTP/1.1 keep-alive server answering every request with a small JSON body."""
    body = b'{"id":"1","username":"bench"}'
    answer = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
              b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await reader.readuntil(b"\r\n\r\n"):
                writer.write(answer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", port)
        ready.set()
        async with server:
            await server.serve_forever()

    asyncio.run(main())


class _PassThrough:
    """A breaker that is not there."""

    def call(self, func: Callable[..., object], *args: object, **kwargs: object) -> object:
        return func(*args, **kwargs)


FAILED: dict[str, int] = {}  # calls that raised, by exception type, over the whole run


def throughput(call: Callable[[], object], threads: int, seconds: float) -> float:
    """Successful calls per second made by `threads` threads running `call` for `seconds`.

    A call that raises (on a loaded machine a deadline can pass) is counted in FAILED, not
    in the rate: the benchmark reports it and carries on instead of stopping.
    """
    stop = time.monotonic() + seconds
    counts = [0] * threads
    lock = threading.Lock()

    def loop(i: int) -> None:
        n = 0
        while time.monotonic() < stop:
            try:
                call()
            except Exception as exc:  # noqa: BLE001 - counted and reported, never fatal
                with lock:
                    FAILED[type(exc).__name__] = FAILED.get(type(exc).__name__, 0) + 1
                continue
            n += 1
        counts[i] = n

    workers = [threading.Thread(target=loop, args=(i,)) for i in range(threads)]
    started = time.monotonic()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return sum(counts) / (time.monotonic() - started)


def wrapper_cost(threads: int, seconds: float) -> None:
    port = closed_port()
    ready = multiprocessing.Event()
    server = multiprocessing.Process(target=serve_fast, args=(port, ready), daemon=True)
    server.start()
    ready.wait(10)
    def downstream() -> HttpClient:
        return HttpClient(PeerConfig("bench", f"http://127.0.0.1:{port}", 0.5, 2.0, threads))

    plain, guarded = downstream(), downstream()
    plain.breaker = _PassThrough()  # type: ignore[assignment]

    def bare() -> object:
        return plain.call("GET", "/users/bench", idempotent=False)

    def wrapped() -> object:
        token = resilience.start_deadline(None, 5.0)  # as the gateway does per request
        try:
            return guarded.call("GET", "/users/bench")
        finally:
            resilience.end_deadline(token)

    try:
        throughput(bare, threads, 1.0)  # warm up connections
        throughput(wrapped, threads, 1.0)
        rounds = []
        for _ in range(3):  # alternate, so drift on the machine hits both alike
            rounds.append((throughput(bare, threads, seconds), throughput(wrapped, threads,
                                                                          seconds)))
    finally:
        plain.close()
        guarded.close()
        server.terminate()
    off = statistics.mean(r[0] for r in rounds)
    on = statistics.mean(r[1] for r in rounds)
    print(f"2. wrappers' cost, {threads} threads through one HttpClient to a local server "
          f"(own process), {seconds:.0f} s x 3 rounds each:")
    print(f"  without deadline/breaker/retry: {off:8.0f} calls/s")
    print(f"  with    deadline/breaker/retry: {on:8.0f} calls/s   on/off = {on / off:.3f}")
    if FAILED:
        print("  calls that failed (not counted above): "
              + ", ".join(f"{name} {n}" for name, n in sorted(FAILED.items())))

    breaker = resilience.Breaker("bench-noop")
    policy = resilience.retrying("bench", "GET")
    n = 50_000
    started = time.perf_counter()
    for _ in range(n):
        pass
    empty = time.perf_counter() - started
    token = resilience.start_deadline(None, 5.0)
    started = time.perf_counter()
    for _ in range(n):
        resilience.timeout_within(2.0)
        resilience.deadline_headers()
        resilience.call_with_retries(policy, breaker.call, int)
    wrapped_s = time.perf_counter() - started - empty
    resilience.end_deadline(token)
    print(f"  CPU of the wrappers around a call doing nothing: {wrapped_s / n * 1e6:.1f} µs "
          "per call (one thread)")


# --------------------------------------------------------- 3. breakers and threads


def breaker_parallelism(threads: int, calls_each: int = 25, call_seconds: float = 0.005) -> None:
    import pybreaker

    def sleepy() -> None:
        time.sleep(call_seconds)

    def elapsed(call: Callable[[], object]) -> float:
        workers = [threading.Thread(target=lambda: [call() for _ in range(calls_each)])
                   for _ in range(threads)]
        started = time.perf_counter()
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        return time.perf_counter() - started

    ours = resilience.Breaker("bench-parallel")
    plain = pybreaker.CircuitBreaker(name="bench-plain")
    total = threads * calls_each
    ideal = call_seconds * total / threads
    serial = call_seconds * total
    ours_s = elapsed(lambda: ours.call(sleepy))
    plain_s = elapsed(lambda: plain.call(sleepy))
    print(f"3. {threads} threads x {calls_each} calls of {call_seconds * 1000:.0f} ms through "
          "one breaker:")
    print(f"  ideal (parallel) {ideal * 1000:.0f} ms, fully serialised {serial * 1000:.0f} ms")
    print(f"  common.resilience.Breaker.call: {ours_s * 1000:6.0f} ms "
          f"({ours_s / ideal:.2f}x ideal)")
    print(f"  pybreaker.CircuitBreaker.call:  {plain_s * 1000:6.0f} ms "
          f"({plain_s / ideal:.2f}x ideal)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stack", action="store_true",
                        help="measure fail-fast through the running stack (stops test-timeline)")
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    import logging
    logging.disable(logging.WARNING)  # the failures below are the point, not news
    if args.stack:
        fail_fast_through_stack(args.requests)
    else:
        fail_fast_in_process(args.requests)
    wrapper_cost(args.threads, args.seconds)
    breaker_parallelism(args.threads)


if __name__ == "__main__":
    main()
