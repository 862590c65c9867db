"""Kubernetes doing its part: a rolling upgrade under load fails no request, and a
killed pod is replaced."""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter

import requests

from k8s._cluster import Cluster, sign_up


class SteadyLoad:
    """A few client threads reading and posting through the edge until stopped."""

    def __init__(self, api: str, threads: int = 4) -> None:
        self.api, self.stop_event = api, threading.Event()
        self.account = sign_up(api, "kl")
        self.results: Counter[str] = Counter()
        self.failures: list[str] = []
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.loop, args=(i,), daemon=True)
                        for i in range(threads)]

    def loop(self, index: int) -> None:
        session = requests.Session()
        n = 0
        while not self.stop_event.is_set():
            n += 1
            try:
                if n % 5 == 0:
                    resp = session.post(f"{self.api}/tweets", json={"text": f"load {index}-{n}"},
                                        headers={**self.account.headers,
                                                 "Idempotency-Key": str(uuid.uuid4())}, timeout=10)
                elif n % 2:
                    resp = session.get(f"{self.api}/timeline", headers=self.account.headers,
                                       timeout=10)
                else:
                    resp = session.get(f"{self.api}/users/{self.account.username}", timeout=10)
                outcome = str(resp.status_code)
                failed = resp.status_code >= 500 or resp.status_code == 429
                detail = f"{resp.request.method} {resp.url} -> {resp.status_code} {resp.text[:120]}"
            except requests.RequestException as exc:
                outcome, failed, detail = "error", True, f"{type(exc).__name__}: {exc}"
            with self.lock:
                self.results[outcome] += 1
                if failed:
                    self.failures.append(detail)

    def wait_for_requests(self, count: int, timeout: float = 60) -> None:
        """Block until `count` more requests have been answered."""
        with self.lock:
            target = sum(self.results.values()) + count
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if sum(self.results.values()) >= target:
                    return
            time.sleep(0.05)
        raise AssertionError(f"the load made fewer than {count} requests in {timeout}s")

    def __enter__(self) -> "SteadyLoad":
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_event.set()
        for t in self.threads:
            t.join(15)


def rollout_generation(cluster: Cluster, deployment: str) -> tuple[int, int]:
    """(observedGeneration, updatedReplicas) of a Deployment."""
    status = cluster.get("deployment", deployment)["status"]
    return status.get("observedGeneration", 0), status.get("updatedReplicas", 0)


def test_a_rolling_upgrade_of_the_gateway_under_load_fails_no_request(cluster: Cluster,
                                                                     api: str) -> None:
    gateway = cluster.name("gateway")
    before = {p["metadata"]["name"] for p in
              cluster.get("pods", "-l", cluster.selector("gateway"))["items"]}
    assert len(before) >= 2, "a rolling upgrade without a failed request needs two gateways"
    with SteadyLoad(api) as load:
        load.wait_for_requests(30)  # traffic flowing before the rollout begins
        started = time.monotonic()
        cluster.kubectl("rollout", "restart", f"deployment/{gateway}")
        cluster.kubectl("rollout", "status", f"deployment/{gateway}", "--timeout=240s",
                        timeout=260)
        during = time.monotonic() - started
        load.wait_for_requests(30)  # and served by the new pods after it
    after = {p["metadata"]["name"] for p in
             cluster.get("pods", "-l", cluster.selector("gateway"))["items"]
             if not p["metadata"].get("deletionTimestamp")}
    total = sum(load.results.values())
    print(f"\nrolling upgrade of {gateway}: {total} requests in {during:.1f}s of rollout, "
          f"outcomes {dict(load.results)}, failures {len(load.failures)}")
    assert not (after & before), "every gateway pod was replaced"
    assert total >= 50, load.results
    assert load.failures == [], load.failures[:10]


def test_a_killed_pod_is_replaced_by_its_deployment(cluster: Cluster) -> None:
    timeline = cluster.name("timeline")
    [victim, *_] = [p["metadata"]["name"] for p in
                    cluster.get("pods", "-l", cluster.selector("timeline"))["items"]]
    cluster.kubectl("delete", "pod", victim, "--grace-period=0", "--force", "--wait=false")
    started = time.monotonic()
    deadline = started + 180
    while time.monotonic() < deadline:
        pods = cluster.get("pods", "-l", cluster.selector("timeline"))["items"]
        fresh = [p for p in pods if p["metadata"]["name"] != victim
                 and any(c["type"] == "Ready" and c["status"] == "True"
                         for c in p["status"].get("conditions", []))]
        want = cluster.get("deployment", timeline)["spec"]["replicas"]
        if len(fresh) >= want:
            print(f"\n{victim} replaced, Ready after {time.monotonic() - started:.1f}s")
            return
        time.sleep(0.5)
    raise AssertionError(f"{timeline} did not replace {victim} within 180s")
