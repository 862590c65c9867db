"""`helm test`: the core flow of Murmur end to end, through the edge Service.

Signs up two users, logs both in, has the second follow the first, posts a tweet as the
first, and polls the second one's home timeline until the tweet arrives (it travels
timeline -> outbox relay -> Kafka -> fanout -> Redis); then that the edge serves the web
front end and the public system status lists the services. Standard library only; every wait
is a poll bounded by one overall deadline.

Environment: MURMUR_API (base URL, e.g. http://murmur-edge:8080/api/v1),
TEST_DEADLINE_SECONDS (default 180).
"""

from __future__ import annotations

import json
import os
import secrets
import sys
import time
import urllib.error
import urllib.request

API = os.environ["MURMUR_API"].rstrip("/")
DEADLINE = time.monotonic() + float(os.environ.get("TEST_DEADLINE_SECONDS", "180"))
RETRYABLE = {429, 502, 503, 504}  # starting up, rate limited, or a dependency not ready


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def left() -> float:
    return DEADLINE - time.monotonic()


def call(method: str, path: str, body: dict | None = None, token: str | None = None,
         headers: dict | None = None) -> tuple[int, dict]:
    """One request: (status, JSON body or {}); network errors come back as status 0."""
    request = urllib.request.Request(API + path, method=method,
                                     data=json.dumps(body).encode() if body is not None else None)
    request.add_header("Accept", "application/json")
    if body is not None:
        request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=max(1.0, min(10.0, left()))) as resp:
            raw = resp.read()
            return resp.status, json.loads(raw) if raw else {}
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        try:
            return exc.code, json.loads(raw) if raw else {}
        except ValueError:
            return exc.code, {"detail": raw[:200].decode(errors="replace")}
    except (urllib.error.URLError, OSError) as exc:
        return 0, {"detail": str(exc)}


def until(what: str, attempt, accept=lambda status, body: 200 <= status < 300):
    """Repeat `attempt()` until `accept(status, body)`, backing off, within the deadline.

    Answers that mean "not yet" (no connection, 429, 5xx, or a success that does not
    show the expected state) are retried; any other client error fails the test at once.
    """
    delay = 0.2
    while True:
        status, body = attempt()
        if accept(status, body):
            return status, body
        if 400 <= status < 500 and status not in RETRYABLE:
            sys.exit(f"FAIL: {what}: HTTP {status} {json.dumps(body)[:500]}")
        if left() <= 0:
            sys.exit(f"FAIL: {what}: no success before the deadline "
                     f"(last: HTTP {status} {json.dumps(body)[:300]})")
        time.sleep(min(delay, max(0.0, left())))
        delay = min(delay * 2, 3.0)


def check_front_end() -> None:
    """The edge serves the web front end at / (its page, and a module it loads)."""
    root = API.rsplit("/api/v1", 1)[0]
    for path, kind in (("/", "text/html"), ("/js/app.js", "text/javascript")):
        with urllib.request.urlopen(root + path, timeout=max(1.0, min(10.0, left()))) as resp:
            if resp.status != 200 or not resp.headers.get("Content-Type", "").startswith(kind):
                sys.exit(f"FAIL: {path} answered {resp.status} {resp.headers.get('Content-Type')}")
    log("the web front end is served at /")


def main() -> int:
    suffix = secrets.token_hex(4)
    author, reader = f"ht_author_{suffix}", f"ht_reader_{suffix}"
    password = secrets.token_urlsafe(12)
    log(f"API {API}; users {author}, {reader}")

    tokens = {}
    for name in (author, reader):
        # A retried sign-up may have succeeded the first time: 409 is then fine too.
        until(f"sign up {name}",
              lambda n=name: call("POST", "/users", {"username": n, "password": password,
                                                    "display_name": n}),
              accept=lambda s, b: s in (201, 409))
        _, body = until(f"log in {name}",
                        lambda n=name: call("POST", "/sessions", {"username": n,
                                                                 "password": password}))
        tokens[name] = body["access_token"]
    log("signed up and logged in")

    until(f"{reader} follows {author}",
          lambda: call("PUT", f"/users/me/following/{author}", token=tokens[reader]))
    log("followed")

    text = f"helm test {suffix}"
    key = f"helm-test-{suffix}"  # a retried post returns the same tweet, never a second one
    _, tweet = until("post a tweet",
                     lambda: call("POST", "/tweets", {"text": text}, token=tokens[author],
                                  headers={"Idempotency-Key": key}))
    log(f"posted tweet {tweet['id']}")

    started = time.monotonic()
    _, timeline = until(
        f"tweet {tweet['id']} in {reader}'s home timeline",
        lambda: call("GET", "/timeline?limit=20", token=tokens[reader]),
        accept=lambda s, b: s == 200 and any(
            item.get("id") == tweet["id"] for item in b.get("items", [])))
    item = next(i for i in timeline["items"] if i["id"] == tweet["id"])
    if item.get("text") != text or item.get("author", {}).get("username") != author:
        sys.exit(f"FAIL: the timeline shows the tweet wrongly: {json.dumps(item)}")
    log(f"the tweet reached the follower's home timeline in {time.monotonic() - started:.1f}s")

    check_front_end()
    _, summary = until("the system status", lambda: call("GET", "/system/status"))
    states = {c["name"]: c["status"] for c in summary.get("components", [])}
    if not {"gateway", "users", "timeline", "fanout"} <= states.keys():
        sys.exit(f"FAIL: the system status lacks services: {json.dumps(states)}")
    log(f"system status {summary.get('status')}: {json.dumps(states)}")
    log("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
