"""The isolation property, measured: what an attacker costs an ordinary user.

    python bench/isolation.py [--seconds 10]

For each hostile pattern (NUL bodies, a login flood, deep nesting, oversized tokens), an
attacker on an address of its own sends it from 8 threads as fast as the edge lets it,
while one ordinary user reads profiles and home timelines and posts. Prints the user's
success ratio and p99 latency beside a run without the attacker, measured in the same
invocation, and what the attacker was answered. Then the sign-in throttle: how many
failed sign-ins a single account, and a single address, get in a minute before a 429.
Figures only: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import sys
import uuid
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "services"), str(REPO / "tests")]

from common import config  # noqa: E402
from e2e._addresses import fresh_address, session_from  # noqa: E402
from e2e._hostile import PATTERNS, Victim, attack  # noqa: E402

PASSWORD = "bench-password-1"


def api() -> str:
    return f"http://127.0.0.1:{config.profile().http_port}/api/v1"


def member(base: str, http: requests.Session) -> tuple[str, dict[str, str]]:
    name = f"iso_{uuid.uuid4().hex[:10]}"
    assert http.post(f"{base}/users", json={"username": name, "password": PASSWORD},
                     timeout=15).status_code == 201
    token = http.post(f"{base}/sessions", json={"username": name, "password": PASSWORD},
                      timeout=15).json()["access_token"]
    return name, {"Authorization": f"Bearer {token}"}


def attempts_before_429(base: str, body: dict[str, str] | None) -> tuple[int, str]:
    """Failed sign-ins from one fresh address before the first 429 (at most 200); for one
    account when `body` is given, else for new usernames each time."""
    with session_from(fresh_address()) as http:
        for n in range(1, 201):
            payload = body or {"username": f"n{uuid.uuid4().hex[:12]}", "password": "guess"}
            resp = http.post(f"{base}/sessions", json=payload, timeout=15)
            if resp.status_code == 429:
                return n - 1, resp.headers.get("Retry-After", "?")
    return 200, "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    base = api()
    with requests.Session() as http:
        name, auth = member(base, http)
    print(f"isolation, {args.seconds:.0f} s per run, victim: profile read, home timeline, post")
    print(f"{'attacker':<18} {'victim ok':>12} {'p99 ms':>8} {'x quiet':>8}  attacker answers")
    quiet = Victim(base, auth, name)
    attack(None, base, quiet, args.seconds)
    ok = len(quiet.answers) - len(quiet.failures())
    print(f"{'none':<18} {ok:>5}/{len(quiet.answers):<6} {quiet.p99_ms():>8.1f} {1.0:>8.2f}  -")
    for pattern, send in PATTERNS.items():
        victim = Victim(base, auth, name)
        hostile = attack(send, base, victim, args.seconds)
        ok = len(victim.answers) - len(victim.failures())
        ratio = victim.p99_ms() / quiet.p99_ms() if quiet.p99_ms() else float("nan")
        answers = ", ".join(f"{status}x{count}" for status, count in sorted(hostile.items()))
        print(f"{pattern:<18} {ok:>5}/{len(victim.answers):<6} {victim.p99_ms():>8.1f} "
              f"{ratio:>8.2f}  {answers}")
    with requests.Session() as http:
        target, _ = member(base, http)
    account, account_wait = attempts_before_429(base, {"username": target, "password": "wrong"})
    address, address_wait = attempts_before_429(base, None)
    print("sign-in throttle (failed attempts before the first 429, in one minute):")
    print(f"  one account:  {account} (Retry-After {account_wait} s)")
    print(f"  one address:  {address} (Retry-After {address_wait} s)")


if __name__ == "__main__":
    main()
