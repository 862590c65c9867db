"""The edge: only /api/v1 is public, errors are problems, limits answer 413, 414, 429 and
431, and a malformed request is a 400."""

from __future__ import annotations

import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import requests


def test_the_openapi_document_is_served(api) -> None:
    resp = api.get("/openapi.json")
    assert resp.status_code == 200
    doc = resp.json()
    assert doc["openapi"].startswith("3.")
    assert "/api/v1/timeline" in doc["paths"]


def test_an_unknown_route_is_a_404_problem(api, problem) -> None:
    problem(api.get("/no/such/route"), 404)
    problem(api.get("/../../etc/passwd"), 404)


def test_a_wrong_method_is_a_405_problem(api, problem) -> None:
    resp = api.request("PATCH", "/tweets")
    problem(resp, 405)


def test_nothing_internal_is_reachable_through_nginx(api, problem) -> None:
    root = api.base.rsplit("/api/v1", 1)[0]
    for path in ("/healthz", "/readyz", "/metrics", "/internal/users/1/followee-ids",
                 "/stub_status", "/api/v1/healthz", "/api/v1/metrics",
                 "/api/v1/internal/users/1/followee-ids",
                 "/users/x", "/api/v2/users/x"):
        for method in ("GET", "POST"):
            problem(requests.request(method, root + path, timeout=5), 404)


def test_a_request_id_is_minted_or_passed_through(api) -> None:
    minted = api.get("/openapi.json").headers["X-Request-ID"]
    assert len(minted) >= 16
    assert api.get("/openapi.json", headers={"X-Request-ID": "e2e-req-1"}).headers[
        "X-Request-ID"] == "e2e-req-1"
    # An id unfit for logs is replaced, not passed on.
    assert api.get("/openapi.json", headers={"X-Request-ID": "a b"}).headers[
        "X-Request-ID"] != "a b"


def test_a_body_over_the_limit_is_a_413_problem(api, problem) -> None:
    ada = api.sign_up()
    resp = api.post("/tweets", data=b'{"text": "' + b"a" * 200_000 + b'"}',
                    headers={**ada.auth, "Content-Type": "application/json"})
    problem(resp, 413)


def test_a_burst_over_the_rate_limit_is_a_429_with_retry_after(api, problem) -> None:
    limited: list[requests.Response] = []
    stop = threading.Event()
    local = threading.local()

    def hammer(_: int) -> None:
        http = getattr(local, "http", None) or requests.Session()
        local.http = http
        while not stop.is_set():
            resp = http.get(f"{api.base}/no-such-route", timeout=5)
            if resp.status_code == 429:
                limited.append(resp)
                stop.set()

    deadline = threading.Timer(20, stop.set)
    deadline.start()
    try:
        with ThreadPoolExecutor(max_workers=24) as pool:
            list(pool.map(hammer, range(24)))
    finally:
        deadline.cancel()
    assert limited, "no 429 within 20s of a burst"
    body = problem(limited[0], 429)
    assert body["detail"]
    assert int(limited[0].headers["Retry-After"]) >= 1
    # Leave the bucket drained for the tests that follow.
    api.wait_until(lambda: api.get("/openapi.json").status_code == 200, timeout=10,
                   message="rate limit lifted")


def test_an_overlong_uri_is_a_414_problem(api, problem) -> None:
    problem(api.get("/timeline", params={"x": "a" * 5000}), 414)


def test_an_oversized_header_is_a_431_problem(api, problem) -> None:
    resp = api.get("/timeline", headers={"Authorization": "Bearer " + "a" * 8192})
    problem(resp, 431)
    assert resp.headers["X-Request-ID"]
    # All headers together over the edge's buffers, none of them too long by itself.
    padding = {f"X-Padding-{i}": "b" * 3000 for i in range(8)}
    problem(api.get("/openapi.json", headers=padding), 431)
    # A header just under the limit is the gateway's to judge (here: an invalid token).
    problem(api.get("/timeline", headers={"Authorization": "Bearer " + "a" * 3500}), 401)


def raw_exchange(api, request: bytes) -> bytes:
    """What nginx answers to `request` sent as it is, bytes on a connection of its own."""
    edge = urlsplit(api.base)
    with socket.create_connection((edge.hostname, edge.port or 80), timeout=5) as conn:
        conn.sendall(request)
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    return answer


def test_a_malformed_request_is_still_a_400_problem(api) -> None:
    for request in (b"GARBAGE\r\n\r\n",
                    b"GET /api/v1/openapi.json HTTP/1.1\r\nHost: x\r\nNo colon here\r\n\r\n"):
        head, _, body = raw_exchange(api, request).partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 400"), head
        assert b"Content-Type: application/problem+json" in head
        assert b'"status":400' in body
