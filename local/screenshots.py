"""Regenerate docs/screenshots/*.png: each page of the web front end on the running stack.

    python local/screenshots.py            (make screenshots; MURMUR_PROFILE=test by default)

Seeds a little data through the public API first (three members who follow one another,
a few tweets each, delivered by the fan-out), then opens every page in Debian's headless
Chromium, driven by Playwright, and writes one PNG per page. Then the observability UIs of
the local platform: Zipkin's page of one seeded post's trace, and two of vmui's Murmur
dashboards once VictoriaMetrics holds the seeding's traffic.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

import requests

import trace_tree

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "services"))
os.environ.setdefault("MURMUR_PROFILE", "test")

from common import config  # noqa: E402
from stackctl.layout import ports  # noqa: E402

PASSWORD = "screenshots-password-1"
VIEWPORT = {"width": 1280, "height": 860}
# The observability UIs lay out panels side by side: a wider window shows more of them.
WIDE = {"width": 1600, "height": 1000}


def base_url() -> str:
    """The edge of the chosen profile (MURMUR_WEB_URL overrides)."""
    return config.env("MURMUR_WEB_URL", f"http://127.0.0.1:{config.profile().http_port}")


@dataclass
class Member:
    """A member made for the pictures."""

    username: str
    token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def init_script(self) -> str:
        """What the app keeps in sessionStorage once this member has signed in."""
        return (f"sessionStorage.setItem('murmur.token', {json.dumps(self.token)});"
                f"sessionStorage.setItem('murmur.username', {json.dumps(self.username)});")


def check(resp: requests.Response, status: int) -> requests.Response:
    """Stop with the problem's text when the API answers something else."""
    if resp.status_code != status:
        raise SystemExit(f"{resp.request.method} {resp.url}: {resp.status_code} {resp.text[:200]}")
    return resp


def member(http: requests.Session, api: str, name: str, display: str) -> Member:
    """Create an account and open a session for it."""
    username = f"{name}_{uuid.uuid4().hex[:6]}"
    check(http.post(f"{api}/users", json={"username": username, "password": PASSWORD,
                                          "display_name": display}, timeout=10), 201)
    session = check(http.post(f"{api}/sessions", json={"username": username,
                                                      "password": PASSWORD}, timeout=10), 200)
    return Member(username, session.json()["access_token"])


def seed(api: str, tweets_each: int = 4) -> tuple[Member, list[Member], list[str]]:
    """A reader who follows two authors, with tweets in the reader's home timeline; returns
    them and the ids of the authors' tweets."""
    http = requests.Session()
    reader = member(http, api, "ada", "Ada Lovelace")
    authors = [member(http, api, "grace", "Grace Hopper"),
               member(http, api, "edsger", "Edsger Dijkstra")]
    lines = ["Shipped the new fan-out worker today.", "Breakers closed again after the drill.",
             "Reading about consistent hashing.", "Cursor paging, not offsets: stable pages.",
             "Idempotency keys make retries boring.", "Half-open means one trial call."]
    for author in authors:
        check(http.put(f"{api}/users/me/following/{author.username}", headers=reader.auth,
                       timeout=10), 204)
    ids = []
    for n in range(tweets_each):
        for i, author in enumerate(authors):
            text = lines[(n * 2 + i) % len(lines)]
            posted = check(http.post(f"{api}/tweets", json={"text": text},
                                     headers={**author.auth, "Idempotency-Key": uuid.uuid4().hex},
                                     timeout=10), 201)
            ids.append(posted.json()["id"])
    check(http.post(f"{api}/tweets", json={"text": "Hello from the front end!"},
                    headers=reader.auth, timeout=10), 201)
    # The fan-out is asynchronous: wait (with a deadline) until every tweet has arrived.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        home = check(http.get(f"{api}/timeline?limit=100", headers=reader.auth, timeout=10), 200)
        if set(ids) <= {t["id"] for t in home.json()["items"]}:
            return reader, authors, ids
        time.sleep(0.2)
    raise SystemExit("the seeded tweets did not reach the reader's home timeline within 60 s")


def poll(check, what: str, timeout: float = 60.0, interval: float = 0.5):
    """`check()`'s first truthy value, polled until `timeout`; stop with `what` otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = check()
        except OSError:  # a server restarting: ask again
            value = None
        if value:
            return value
        time.sleep(interval)
    raise SystemExit(f"{what} not there within {timeout:.0f} s")


def post_trace(zipkin: trace_tree.Zipkin, tweet_id: str) -> str:
    """Id of the trace of posting `tweet_id`, once Zipkin holds it whole: the gateway's root
    span down to fanout's Redis write that delivered it."""
    process = f"{config.profile().name}-fanout"

    def delivered_in() -> str | None:
        found = zipkin.get("/api/v2/traces", serviceName="fanout", limit=5,
                           annotationQuery=f"murmur.tweet_id={tweet_id} and "
                                           f"murmur.process={process}")
        return next((s["traceId"] for spans in found or [] for s in spans
                     if s.get("name") == "home_timeline.deliver"), None)

    def whole(trace_id: str) -> bool:
        spans = zipkin.trace(trace_id)
        services = {s["service"] for s in spans}
        root = any(not s["parent_id"] and s["service"] == "gateway" for s in spans)
        redis = any(s["service"] == "fanout" and s["attributes"].get("db.system") == "redis"
                    for s in spans)
        return root and redis and {"timeline", "timeline-relay", "fanout"} <= services

    trace_id = poll(delivered_in, "the post's trace in Zipkin")
    poll(lambda: whole(trace_id), "every span of the post's trace in Zipkin")
    return trace_id


def vm_query(expr: str) -> list[dict]:
    """VictoriaMetrics's answer to an instant query."""
    url = (f"http://127.0.0.1:{ports().victoriametrics}/api/v1/query?"
           + urllib.parse.urlencode({"query": expr}))
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.loads(resp.read())["data"]["result"]


def drive_load(api: str, reader: Member, author: Member, seconds: float = 20.0) -> None:
    """A little steady traffic for the dashboards: reads, and now and then a post."""
    http = requests.Session()
    until, n = time.monotonic() + seconds, 0
    while time.monotonic() < until:
        check(http.get(f"{api}/timeline?limit=20", headers=reader.auth, timeout=10), 200)
        check(http.get(f"{api}/users/{author.username}", timeout=10), 200)
        if n % 5 == 0:
            check(http.post(f"{api}/tweets", json={"text": f"Load for the dashboards, {n}."},
                            headers={**author.auth, "Idempotency-Key": uuid.uuid4().hex},
                            timeout=10), 201)
        n += 1


def recorded(profile: str) -> bool:
    """Whether vmalert has recorded the load: request and post rates above 0."""
    exprs = (f'job:murmur_http_requests:rate1m{{job="gateway",profile="{profile}"}}',
             f'profile:murmur_posts_accepted:rate1m{{profile="{profile}"}}')
    return all(any(float(s["value"][1]) > 0 for s in vm_query(e)) for e in exprs)


def launch(playwright):
    """Debian's Chromium, headless (Playwright's own browser downloads are not used)."""
    executable = shutil.which("chromium")
    if executable is None:
        raise SystemExit("chromium is not installed (apt-get install chromium)")
    return playwright.chromium.launch(executable_path=executable, headless=True)


def main() -> None:
    """Seed, then write one screenshot per page."""
    from playwright.sync_api import expect, sync_playwright

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(REPO / "docs/screenshots"))
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    base = base_url()
    reader, authors, tweet_ids = seed(f"{base}/api/v1")
    with sync_playwright() as playwright:
        browser = launch(playwright)

        def shot(name: str, route: str, ready, who: Member | None = None, full: bool = False,
                 viewport: dict[str, int] = VIEWPORT):
            context = browser.new_context(viewport=viewport, device_scale_factor=1)
            if who:
                context.add_init_script(who.init_script())
            page = context.new_page()
            page.goto(route if "://" in route else f"{base}/{route}")
            ready(page)
            page.screenshot(path=str(out / f"{name}.png"), full_page=full)
            context.close()
            print(f"wrote {out / f'{name}.png'}")

        shot("sign-in", "#/signin",
             lambda p: expect(p.get_by_role("heading", name="Create an account")).to_be_visible())
        shot("home", "#/home",
             lambda p: expect(p.locator("li.tweet")).to_have_count(9), who=reader)
        shot("profile", f"#/u/{authors[0].username}",
             lambda p: (expect(p.get_by_role("button", name="Unfollow")).to_be_visible(),
                        expect(p.locator("li.tweet")).to_have_count(4)), who=reader)
        shot("system", "#/system",
             lambda p: expect(p.locator("svg.diagram [data-component]")).to_have_count(12),
             full=True)

        # The observability UIs are shared by the profiles, on their own ports. The load
        # comes after the front end's pictures, whose tweet counts it would change.
        trace_id = post_trace(trace_tree.Zipkin(trace_tree.zipkin_url()), tweet_ids[-1])
        drive_load(f"{base}/api/v1", reader, authors[0])
        poll(lambda: recorded(config.profile().name), "the load in VictoriaMetrics",
             interval=1.0)
        shot("zipkin-trace", f"{trace_tree.zipkin_url()}/zipkin/traces/{trace_id}",
             lambda p: expect(p.get_by_text("fanout: home_timeline.deliver", exact=True))
             .to_be_visible(), viewport=WIDE)
        vmui = (f"http://127.0.0.1:{ports().victoriametrics}/vmui/#/dashboards?"
                "g0.range_input=15m&g0.relative_time=last_15_minutes")
        for name, title in (("dashboards-golden-signals", "Murmur: golden signals"),
                            ("dashboards-fanout-pipeline", "Murmur: fan-out pipeline")):
            shot(name, vmui, lambda p, title=title: dashboard_ready(p, title), viewport=WIDE)
        browser.close()


def dashboard_ready(page, title: str) -> None:
    """Open one of vmui's custom dashboards and wait until its charts are drawn."""
    from playwright.sync_api import expect

    page.locator(".vm-predefined-panels-tabs__tab", has_text=title).click()
    expect(page.locator(".vm-predefined-panels-tabs__tab_active")).to_have_text(title)
    expect(page.locator(".vm-line-chart canvas").first).to_be_visible()
    expect(page.locator(".vm-legend-item").first).to_be_visible()


if __name__ == "__main__":
    main()
