"""What a person sees in the front end while a store fails: the degraded banner while the
test profile's Redis is cut, and an open circuit breaker on the system page while its
Cassandra answers slowly. Each fault is removed in `finally`, and the test waits until the
page shows the system healthy again, so the tests after it start from a steady state."""

from __future__ import annotations

import re
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Iterator

import requests
from playwright.sync_api import expect

from conftest import stackctl, wait_until
from e2e.conftest import API

# A breaker closes after its reset timeout and one successful trial call.
RECOVERY_MS = 90_000


@contextmanager
def fault(*args: str) -> Iterator[None]:
    """A Toxiproxy fault on one of the test profile's stores, healed whatever happens."""
    dependency = args[1]
    added = stackctl("toxic", *args)
    try:
        assert added.returncode == 0, added.stdout + added.stderr
        yield
    finally:
        healed = stackctl("toxic", "heal", dependency)
        assert healed.returncode == 0, healed.stdout + healed.stderr


@contextmanager
def reads(paths: list[str], workers: int = 4) -> Iterator[None]:
    """Read `paths` through nginx over and over, from a few threads, while the block runs."""
    stop = threading.Event()

    def loop(path: str) -> None:
        with requests.Session() as http:
            while not stop.is_set():
                try:
                    http.get(API + path, timeout=10)
                except requests.RequestException:
                    pass  # a slow or refused read is what the fault is for

    with ThreadPoolExecutor(workers) as pool:
        for n in range(workers):
            pool.submit(loop, paths[n % len(paths)])
        try:
            yield
        finally:
            stop.set()


def test_the_home_timeline_shows_the_degraded_banner_while_redis_is_cut(open_tab, api) -> None:
    ada, bob = api.sign_up("web"), api.sign_up("web")
    api.follow(ada, bob)
    text = "read while redis is away"
    tweet = api.tweet(bob, text)
    # Delivered before the page opens: a tweet fanned out later waits behind "1 new tweet".
    wait_until(lambda: tweet["id"] in api.home_ids(ada), timeout=30,
               message="the tweet in the follower's home timeline")
    page = open_tab(ada).open("#/home")
    expect(page.get_by_text(text)).to_be_visible(timeout=30_000)
    banner = page.locator("[data-banner^=degraded]")
    expect(banner).to_have_count(0)

    with fault("cut", "redis"):
        # The page polls the timeline every few seconds; the fallback answers from Cassandra.
        expect(banner).to_be_visible(timeout=30_000)
        expect(banner).to_have_text(re.compile(r"^Served from a fallback: \S+"))
        assert banner.get_attribute("data-kind") == "degraded"
        expect(page.get_by_text(text)).to_be_visible()
        # The banner is in the page's live region, so it is announced.
        assert page.locator("#banners[aria-live=polite]").locator("[data-banner^=degraded]").count() == 1

    # Once Redis is back, the next full answer takes the banner down.
    expect(banner).to_have_count(0, timeout=RECOVERY_MS)


def test_the_system_page_shows_an_open_breaker_while_cassandra_is_slow(open_tab, api) -> None:
    ada = api.sign_up("web")
    api.tweet(ada, "a read for the slow store")
    page = open_tab().open("#/system")
    components = page.locator("svg.diagram [data-component]")
    expect(components).to_have_count(12)
    for name in ("nginx", "gateway", "users", "timeline", "fanout", "postgres", "redis",
                 "cassandra", "kafka"):
        expect(page.locator(f"svg.diagram [data-component='{name}']")).to_have_attribute(
            "data-status", "up")
    open_rows = page.locator("tr[data-breaker][data-state=open]")
    expect(open_rows).to_have_count(0)
    expect(page.locator("tr[data-breaker]").first).to_be_visible()

    with fault("add", "cassandra", "latency", "3000"):
        # Reads of a user's tweets go to Cassandra; at 3 s each, the breakers trip.
        with reads([f"/users/{ada.username}/tweets"]):
            expect(open_rows.first).to_be_visible(timeout=60_000)
            expect(open_rows.first.locator(".badge")).to_have_text("open")
            opened = open_rows.first.get_attribute("data-breaker")
            assert opened in {"timeline.cassandra", "gateway.timeline"}, opened
            expect(page.locator("[data-overall]")).not_to_have_attribute("data-overall", "ok")

    # With the latency gone, reads let each breaker's trial through and they close.
    with reads([f"/users/{ada.username}/tweets"], workers=1):
        expect(open_rows).to_have_count(0, timeout=RECOVERY_MS)
