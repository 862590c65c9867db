"""The web front end on this machine: page weight and time to the first timeline.

    python bench/frontend.py [--runs 10]      (MURMUR_PROFILE=test by default)

Page weight: the bytes Chromium received (headers and bodies, compressed as nginx sends
them) for the first load of / (the sign-in page, signed out) and of the home timeline
(signed in, a timeline of nine tweets), by resource type, in a fresh browser context each
(nothing cached). Time to first timeline: from navigation start to the first tweet drawn
in the home timeline (a MutationObserver notes `performance.now()`), the median and the
worst of `--runs` cold loads. Seeds its reader through the public API
(local/screenshots.py's seed). Figures only: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "local"))
os.environ.setdefault("MURMUR_PROFILE", "test")

import screenshots  # noqa: E402

# Runs in the page before its own scripts: the moment the first tweet is in the document.
FIRST_TWEET = """
new MutationObserver((_, observer) => {
  if (document.querySelector('li.tweet')) {
    window.__firstTweetMs = performance.now();
    observer.disconnect();
  }
}).observe(document, {childList: true, subtree: true});
"""


def weigh(browser, url: str, ready, who=None) -> dict[str, list[int]]:
    """Bytes received per resource type ([requests, bytes]) for one cold load of `url`."""
    context = browser.new_context()
    if who:
        context.add_init_script(who.init_script())
    page = context.new_page()
    finished = []
    page.on("requestfinished", lambda request: finished.append(request))
    page.goto(url)
    ready(page)
    page.wait_for_load_state("networkidle")
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for request in finished:
        sizes = request.sizes()
        kind = request.resource_type
        totals[kind][0] += 1
        totals[kind][1] += sizes["responseBodySize"] + sizes["responseHeadersSize"]
    context.close()
    return totals


def show(title: str, totals: dict[str, list[int]]) -> None:
    """Print one weight table."""
    print(f"\n{title}")
    print(f"  {'type':<12}{'requests':>9}{'bytes':>10}")
    for kind, (count, size) in sorted(totals.items(), key=lambda kv: -kv[1][1]):
        print(f"  {kind:<12}{count:>9}{size:>10}")
    print(f"  {'total':<12}{sum(c for c, _ in totals.values()):>9}"
          f"{sum(s for _, s in totals.values()):>10}")


def first_timeline_ms(browser, url: str, who) -> float:
    """Navigation start to the first tweet drawn, for one cold load."""
    context = browser.new_context()
    context.add_init_script(who.init_script())
    context.add_init_script(FIRST_TWEET)
    page = context.new_page()
    page.goto(url)
    # The page's policy forbids eval, so wait on the element rather than on an expression.
    page.locator("li.tweet").first.wait_for(state="attached", timeout=30_000)
    ms = page.evaluate("window.__firstTweetMs")
    context.close()
    return ms


def main() -> None:
    """Seed a reader, then print the page weights and the time to the first timeline."""
    from playwright.sync_api import expect, sync_playwright

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    base = screenshots.base_url()
    reader, _ = screenshots.seed(f"{base}/api/v1")
    with sync_playwright() as playwright:
        browser = screenshots.launch(playwright)
        print(f"front end at {base}/, Chromium {browser.version}")
        show("first load of / (sign-in page, signed out)",
             weigh(browser, f"{base}/",
                   lambda p: expect(p.get_by_role("heading", name="Sign in")).to_be_visible()))
        show("first load of the home timeline (signed in, 9 tweets)",
             weigh(browser, f"{base}/#/home",
                   lambda p: expect(p.locator("li.tweet")).to_have_count(9), who=reader))
        times = [first_timeline_ms(browser, f"{base}/#/home", reader) for _ in range(args.runs)]
        browser.close()
    print(f"\ntime to first timeline (navigation start to the first tweet drawn), "
          f"{args.runs} cold loads:")
    print(f"  median {statistics.median(times):.0f} ms, min {min(times):.0f} ms, "
          f"max {max(times):.0f} ms")


if __name__ == "__main__":
    main()
