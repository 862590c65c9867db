"""Shared plumbing of the set-up entrypoints that create a service's data.

`python -m users.migrate`, `python -m timeline.migrate` and `python -m common.topics` each
create what they own (database and migrations, keyspace and tables, topics), idempotently.
On Kubernetes they run as Jobs while the stores may still be starting, so each retries its
connection for a bounded time (MURMUR_SETUP_TIMEOUT seconds, default 180), prints what it
did, and exits non-zero with one clear line when it cannot. The local platform's bootstrap
(`local/bootstrap.py`) calls the same functions once, without waiting: its stores are ready.
"""

from __future__ import annotations

import sys
import time
from typing import Callable, TypeVar

from common import config

T = TypeVar("T")

DEFAULT_TIMEOUT = 180.0
RETRY_PAUSE = 2.0


def setup_timeout() -> float:
    """Seconds a set-up entrypoint keeps retrying a store that does not answer yet."""
    return config.env_float("MURMUR_SETUP_TIMEOUT", DEFAULT_TIMEOUT)


def say(what: str, message: str) -> None:
    """Print one progress line of a set-up entrypoint."""
    print(f"{what}: {message}", flush=True)


def describe(exc: BaseException, limit: int = 300) -> str:
    """An exception as one line of at most `limit` characters (driver errors run long)."""
    text = " ".join(f"{type(exc).__name__}: {exc}".split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def retrying(what: str, step: Callable[[], T], transient: tuple[type[BaseException], ...],
             timeout: float, pause: float = RETRY_PAUSE) -> T:
    """Run `step`, again after `pause` while it raises one of `transient`, for `timeout` s."""
    deadline = time.monotonic() + timeout
    attempt = 1
    while True:
        try:
            return step()
        except transient as exc:
            if time.monotonic() + pause > deadline:
                raise
            say(what, f"not ready yet (attempt {attempt}: {describe(exc)}); "
                      f"retrying in {pause:.0f}s")
            attempt += 1
            time.sleep(pause)


def main(what: str, run: Callable[[config.Stores, float], str]) -> int:
    """Run a set-up step with the environment's store settings; the process exit status."""
    started = time.monotonic()
    try:
        summary = run(config.stores(), setup_timeout())
    except Exception as exc:  # noqa: BLE001 - one clear line and a non-zero status
        print(f"{what}: FAILED after {time.monotonic() - started:.1f}s: "
              f"{describe(exc, 2000)}", file=sys.stderr, flush=True)
        return 1
    say(what, f"{summary} ({time.monotonic() - started:.1f}s)")
    return 0
