"""The Kubernetes chaos experiments (chaos/experiments/k8s-*.yaml) hold on the deployment.

One run of the chaos runner, as `make chaos-k8s` does it, against the release under test:
a random gateway pod killed under load, the fanout pod killed mid fan-out, the Redis pod
killed, the timeline Deployment scaled to zero. Each experiment checks its own
steady-state hypothesis; this test asserts every verdict held and the figures that make
the headline claims (no request failed, no tweet lost or duplicated, recovery in time).
The runner seeds the deployment for the background load when it has no manifest for it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from k8s._cluster import REPO, Cluster

EXPERIMENTS = ["k8s-fanout-pod-killed", "k8s-gateway-pod-killed", "k8s-redis-pod-killed",
               "k8s-timeline-scaled-to-zero"]


@pytest.fixture(scope="module")
def chaos_run(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The runner's summary of one run of every Kubernetes experiment."""
    if not (REPO / ".venv-load/bin/python").exists():
        pytest.fail("the background load needs Locust: make load-install")
    out = tmp_path_factory.mktemp("chaos-k8s")
    env = {**os.environ, "KUBECTL": cluster.kubectl_bin,
           "MURMUR_CHAOS_NAMESPACE": cluster.namespace, "MURMUR_CHAOS_RELEASE": cluster.release}
    done = subprocess.run([sys.executable, str(REPO / "chaos/run.py"), "--target", "k8s",
                           "--out", str(out)], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=1400)
    print(done.stdout[-3000:])
    summary = out / "summary.json"
    assert summary.exists(), done.stdout[-3000:] + done.stderr[-3000:]
    return {"returncode": done.returncode, "out": Path(out), "output": done.stdout,
            **json.loads(summary.read_text())}


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_every_kubernetes_experiment_holds(chaos_run: dict) -> None:
    verdicts = {e["name"]: e["verdict"] for e in chaos_run["experiments"]}
    assert sorted(verdicts) == EXPERIMENTS, verdicts
    assert all(v == "held" for v in verdicts.values()), chaos_run["output"][-3000:]
    assert chaos_run["returncode"] == 0


@pytest.mark.slow
def test_no_tweet_is_lost_or_duplicated_and_every_experiment_recovers(chaos_run: dict) -> None:
    for experiment in chaos_run["experiments"]:
        f, name = experiment["figures"], experiment["name"]
        assert f["tweets_acked"] >= 1 and f["tweets_acked"] == f["tweets_posted"], (name, f)
        assert f["tweets_lost"] == 0 and f["tweets_duplicated"] == 0, (name, f)
        assert f["idempotency_conflicts"] == 0, (name, f)
        assert f["recovery_s"] is not None and f["recovery_s"] <= 10, (name, f)
        assert f["load_slo_met"] and f["requests"] > 0, (name, f)
        # Refusals only: every failed request of the load was a 503 with Retry-After.
        assert f["requests_failed"] == f["requests_unavailable"], (name, f)


@pytest.mark.slow
def test_the_gateway_kill_fails_no_request_and_the_deployment_replaces_the_pod(
        chaos_run: dict) -> None:
    f = _figures(chaos_run, "k8s-gateway-pod-killed")
    assert f["requests_failed"] == 0 and f["requests_unavailable"] == 0, f
    assert f["gateway_replaced_after_s"] <= 60, f


@pytest.mark.slow
def test_the_fanout_kill_landed_mid_fan_out_and_every_follower_got_the_tweet_once(
        chaos_run: dict) -> None:
    f = _figures(chaos_run, "k8s-fanout-pod-killed")
    assert 0 < f["held_at_kill"] < f["audience"] == 20000, f
    assert f["requests_failed"] == 0, f
    assert f["fanout_replaced_after_s"] <= 120, f


@pytest.mark.slow
def test_reads_degrade_while_redis_is_down_and_the_statefulset_brings_it_back(
        chaos_run: dict) -> None:
    f = _figures(chaos_run, "k8s-redis-pod-killed")
    assert f["redis_outage_reads"] >= 5, f
    assert f["redis_replaced_after_s"] <= 60, f


@pytest.mark.slow
def test_timeline_at_zero_is_refused_fast_and_comes_back(chaos_run: dict) -> None:
    f = _figures(chaos_run, "k8s-timeline-scaled-to-zero")
    assert f["timeline_back_s"] <= 120, f
    observations = [json.loads(line) for line in
                    (chaos_run["out"] / "k8s-timeline-scaled-to-zero/observations.jsonl")
                    .read_text().splitlines()]
    refused = [o for o in observations if o["name"].endswith("-> 503")]
    assert len(refused) == 2 and all(o["ok"] and o["max_ms"] <= 500 for o in refused), refused


def _figures(chaos_run: dict, name: str) -> dict:
    [experiment] = [e for e in chaos_run["experiments"] if e["name"] == name]
    return experiment["figures"]
