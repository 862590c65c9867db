"""The observability UIs as a person opens them: vmui's Murmur dashboards at the `dashboards`
address `make urls` prints, charting traffic just sent through nginx, and Zipkin's page of
one post's trace, from the gateway through timeline and Kafka into fanout.

Samples reach VictoriaMetrics on the next scrape and the recorded series on vmalert's next
evaluation (15 s), so the query API is polled with a deadline before the page is opened;
Zipkin's API is polled the same way until the post's whole trace is in.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import urllib.parse
import urllib.request

import pytest

import stackctl
import trace_tree
from common import config
from conftest import REPO, wait_until
from stackctl.urls import urls
from trace_chain import complete_chain

# Scrape (5 s) + vmalert's evaluation (15 s) + a margin for a busy machine.
METRICS_DEADLINE = 60.0
TRACE_DEADLINE = 30.0
# The series the golden-signals dashboard's "Request rate" panel draws for the gateways.
REQUEST_RATE = 'job:murmur_http_requests:rate1m{job="gateway",profile="%s"}'


def load_dashboards():
    """observability/dashboards.py, the one definition of the dashboards' titles."""
    spec = importlib.util.spec_from_file_location("murmur_dashboards",
                                                  REPO / "observability/dashboards.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while defining
    spec.loader.exec_module(module)
    return module


dashboards = load_dashboards()


def address(name: str) -> str:
    """One address of `make urls` for the test profile, as a browser on this host opens it."""
    return dict(urls(config.profile().name))[name]


def instant(expr: str) -> list[dict]:
    """VictoriaMetrics's answer to an instant query."""
    url = (f"http://127.0.0.1:{stackctl.ports().victoriametrics}/api/v1/query?"
           + urllib.parse.urlencode({"query": expr}))
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.loads(resp.read())["data"]["result"]


def some_traffic(api, posts: int = 5) -> None:
    """An author posts a few tweets and a follower reads them, all through nginx."""
    author, reader = api.sign_up("vmui"), api.sign_up("vmui")
    api.follow(reader, author)
    for n in range(posts):
        api.tweet(author, f"traffic for the dashboards {n}")
        api.home_ids(reader)


def test_the_dashboards_address_of_make_urls_lists_the_three_murmur_dashboards(tab):
    from playwright.sync_api import expect

    page = tab.page
    page.goto(address("dashboards"))
    expect(page.locator(".vm-header-nav-item_active")).to_have_text("Dashboards")
    tabs = page.locator(".vm-predefined-panels-tabs__tab")
    # vmui shows the titles upper-cased with CSS; the text itself is the file's title.
    expect(tabs).to_have_text([d.title for d in sorted(dashboards.DASHBOARDS,
                                                       key=lambda d: d.slug)])


def test_the_golden_signals_request_rate_panel_charts_the_traffic_just_sent(api, tab):
    from playwright.sync_api import expect

    some_traffic(api)
    profile = config.profile().name
    wait_until(lambda: any(float(s["value"][1]) > 0 for s in instant(REQUEST_RATE % profile)),
               timeout=METRICS_DEADLINE, interval=1.0,
               message="the gateways' request rate above 0 in VictoriaMetrics")

    page = tab.page
    page.goto(address("dashboards"))
    page.locator(".vm-predefined-panels-tabs__tab",
                 has_text=dashboards.GOLDEN.title).click()
    panel = page.locator(".vm-predefined-panel").filter(
        has=page.locator(".vm-predefined-panel-header__title").get_by_text("Request rate",
                                                                            exact=True))
    expect(panel.locator(".vm-line-chart canvas").first).to_be_visible()
    gateway = panel.locator(".vm-legend-item").filter(has_text='job="gateway"') \
        .filter(has_text=f'profile="{profile}"')
    expect(gateway).to_have_count(1)
    last = gateway.locator(".vm-legend-item-stats-row").filter(has_text="last:") \
        .locator(".vm-legend-item-stats-row__value")
    expect(last).not_to_have_text("0")


def delivery_trace(tweet_id: str) -> str | None:
    """Id of the trace in which the test-profile fanout delivered `tweet_id`."""
    zipkin = trace_tree.Zipkin(trace_tree.zipkin_url())
    found = zipkin.get("/api/v2/traces", serviceName="fanout", limit=5,
                       annotationQuery=f"murmur.tweet_id={tweet_id} and "
                                       f"murmur.process={config.profile().name}-fanout")
    for spans in found or []:
        for span in map(trace_tree.from_zipkin, spans):
            if span["name"] == "home_timeline.deliver":
                return span["trace_id"]
    return None


def whole_trace(trace_id: str) -> list[dict] | None:
    """The trace's spans once the chain from fanout's Redis write up to the root is in."""
    spans = trace_tree.Zipkin(trace_tree.zipkin_url()).trace(trace_id)
    deliver = next((s for s in spans if s["name"] == "home_timeline.deliver"), None)
    return spans if deliver and complete_chain(spans, deliver) else None


def test_zipkin_shows_the_trace_of_one_post_from_the_gateway_into_fanout(api, tab):
    from playwright.sync_api import expect

    author, follower = api.sign_up("trace"), api.sign_up("trace")
    api.follow(follower, author)
    tweet_id = api.tweet(author, "follow me through Zipkin's UI")["id"]
    wait_until(lambda: tweet_id in api.home_ids(follower), timeout=TRACE_DEADLINE,
               interval=0.1, message="the follower holding the tweet")
    trace_id = wait_until(lambda: delivery_trace(tweet_id), timeout=TRACE_DEADLINE,
                          interval=0.2, message="fanout's delivery span in Zipkin")
    spans = wait_until(lambda: whole_trace(trace_id), timeout=TRACE_DEADLINE, interval=0.2,
                       message="every span of the post's trace in Zipkin")
    assert {"gateway", "timeline", "timeline-relay", "fanout"} <= {s["service"] for s in spans}

    page = tab.page
    page.goto(f"{address('traces')}traces/{trace_id}")
    expect(page.get_by_text(trace_id, exact=True)).to_be_visible()
    # Each span row reads "<service>: <span name>", as Zipkin lower-cases them.
    for row in ("gateway: post /api/v1/tweets", "timeline: post /tweets",
                f"timeline-relay: publish {config.profile().name}.tweets.v1",
                "fanout: home_timeline.deliver"):
        expect(page.get_by_text(row, exact=True).last).to_be_visible()


@pytest.fixture(autouse=True)
def _observability_servers_answer() -> None:
    """Zipkin and VictoriaMetrics are store components: a missing one fails, never skips."""
    for name, port in (("zipkin", stackctl.ports().zipkin),
                       ("victoriametrics", stackctl.ports().victoriametrics)):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2).close()
        except OSError as exc:
            pytest.fail(f"{name} is not answering on port {port} ({exc}); "
                        f"start it with `make start SERVICE={name}`", pytrace=False)
