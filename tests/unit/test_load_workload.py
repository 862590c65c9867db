"""The load workload: the seed's manifest, who the virtual users are and how busy."""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
from collections import Counter
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import seed  # noqa: E402  (local/seed.py)
from loadtests import workload  # noqa: E402


@pytest.fixture(scope="module")
def manifest_file(tmp_path_factory) -> Path:
    """The manifest the seed writes for a 2,000-user graph (threshold 100)."""
    args = argparse.Namespace(users=2000, celebrities=3, tweets=1)
    rng = random.Random(7)
    followees = seed.build_graph(2000, 3, 20, 100, rng)
    path = tmp_path_factory.mktemp("seed") / "dev.json"
    seed.write_manifest(path, seed.manifest(args, followees, 100, random.Random(7)))
    return path


def test_the_seed_manifest_lists_roles_and_author_follower_pairs(manifest_file):
    data = json.loads(manifest_file.read_text())
    m = workload.load_manifest(manifest_file)
    assert m.password == seed.DEMO_PASSWORD and m.users == 2000
    roles = Counter(a.role for a in m.accounts)
    assert roles["celebrity"] >= 3 and roles["heavy"] == 100 and roles["regular"] > 1000
    assert all(a.followers >= 100 for a in m.by_role("celebrity"))
    assert min(a.following for a in m.by_role("heavy")) >= max(
        a.following for a in m.by_role("regular"))
    assert len(m.fanout_pairs) == 200 and m.celebrity_pairs
    # a fan-out author is under the threshold (so fanned out) and the follower follows them
    counts = {a["username"]: a["followers"] for a in data["accounts"]}
    assert all(author != follower for author, follower in m.fanout_pairs)
    assert all(counts.get(author, 1) < 100 for author, _ in m.fanout_pairs)
    assert len(manifest_file.read_bytes()) < 1_000_000  # fits a ConfigMap


def test_a_missing_or_broken_manifest_says_to_seed(tmp_path):
    with pytest.raises(workload.ManifestError, match="make seed"):
        workload.load_manifest(tmp_path / "none.json")
    (tmp_path / "bad.json").write_text('{"profile": "dev"}')
    with pytest.raises(workload.ManifestError, match="run `make seed` again"):
        workload.load_manifest(tmp_path / "bad.json")


def test_virtual_users_take_roles_by_share_and_heavy_readers_often(manifest_file):
    m = workload.load_manifest(manifest_file)
    rng = random.Random(1)
    picks = [workload.pick_account(m, rng) for _ in range(4000)]
    share = Counter(a.role for a in picks)
    assert share["celebrity"] / 4000 == pytest.approx(0.05, abs=0.02)
    assert share["heavy"] / 4000 == pytest.approx(0.20, abs=0.03)


def test_popular_authors_are_viewed_more(manifest_file):
    m = workload.load_manifest(manifest_file)
    rng = random.Random(2)
    views = Counter(workload.pick_author(m, rng).username for _ in range(20_000))
    celebrities = m.by_role("celebrity")
    unfollowed = [a for a in m.accounts if a.followers == 0]
    per_celebrity = sum(views[a.username] for a in celebrities) / len(celebrities)
    per_unfollowed = sum(views[a.username] for a in unfollowed) / len(unfollowed)
    assert unfollowed and per_celebrity > 50 * per_unfollowed


def test_churn_never_targets_the_user_or_a_freshness_author(manifest_file):
    m = workload.load_manifest(manifest_file)
    rng = random.Random(3)
    authors = {a for a, _ in m.fanout_pairs} | {a for a, _ in m.celebrity_pairs}
    me = m.accounts[0].username
    targets = {workload.churn_target(m, rng, me).username for _ in range(3000)}
    assert me not in targets and not targets & authors


def test_activity_is_skewed_a_few_busy_users_many_light_ones():
    rng = random.Random(4)
    busy = sorted(workload.activity(rng) for _ in range(10_000))
    assert statistics.mean(busy) == pytest.approx(1.0, abs=0.1)
    assert statistics.median(busy) < 0.9  # most are lighter than the mean
    assert sum(busy[-1000:]) > 0.3 * sum(busy)  # the busiest tenth does a third of the work


def test_think_time_averages_mean_over_busyness():
    rng = random.Random(5)
    waits = [workload.think_time(rng, 1.0, 2.0) for _ in range(20_000)]
    assert statistics.mean(waits) == pytest.approx(0.5, rel=0.05)
    assert max(waits) <= 10.0


def test_the_mix_is_deathstarbench_shaped():
    mix = workload.MIX
    assert sum(mix.values()) == 100
    assert mix["home"] + mix["home_page_2"] == pytest.approx(60, abs=3)
    assert mix["user_tweets"] + mix["user_tweets_page_2"] == pytest.approx(30, abs=3)
    assert mix["post"] + mix["delete"] == 10


def test_tweets_fit_and_keys_are_unique():
    rng = random.Random(6)
    assert all(1 <= len(workload.tweet_text(rng)) <= 280 for _ in range(200))
    assert len({workload.idempotency_key() for _ in range(1000)}) == 1000


def test_the_slo_table_goes_into_the_html_reports_body_not_its_scripts(tmp_path):
    from loadtests import run

    page = tmp_path / "report.html"
    page.write_text('<html><head><script>var b = "<body style=x>";</script></head>\n'
                    '<body class="x"><div id="root"></div></body></html>')
    run.add_slo_to_report(page, "objective  verdict\nGET /timeline p95  FAIL <&>")
    text = page.read_text()
    pre = text.index('<pre id="murmur-slo"')
    assert text.index('<body class="x">') < pre < text.index('<div id="root">')
    assert "FAIL &lt;&amp;&gt;" in text and 'var b = "<body style=x>";' in text
    run.add_slo_to_report(page, "again")  # once only
    assert text == page.read_text()


@pytest.mark.parametrize("target, profile, url", [
    ("", "dev", "http://127.0.0.1:8080"), ("", "test", "http://127.0.0.1:8090"),
    ("http://127.0.0.1:30080/api/v1", "dev", "http://127.0.0.1:30080"),
    ("http://example.test:8080/", "dev", "http://example.test:8080"),
])
def test_a_target_is_a_base_url_whatever_form_it_was_given_in(target, profile, url):
    from loadtests import run

    assert run.base_url(argparse.Namespace(target=target, profile=profile)) == url
