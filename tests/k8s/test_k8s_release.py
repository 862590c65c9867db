"""The deployed release: its test hook, the public API through the edge, and its guards."""

from __future__ import annotations

import json
import time
import uuid

import requests

from k8s._cluster import Cluster, sign_up


def wait_until(check, timeout: float, message: str):
    """Poll `check` until it returns something truthy; fail at the deadline."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except (requests.RequestException, KeyError, ValueError) as exc:
            last = exc
        time.sleep(0.25)
    raise AssertionError(f"{message} not reached within {timeout}s (last: {last!r})")


def test_the_charts_test_hook_passes(cluster: Cluster) -> None:
    result = cluster.helm("test", cluster.release, "--logs", "--timeout", "5m", check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Phase:" in result.stdout and "Succeeded" in result.stdout, result.stdout


def test_every_pod_is_ready_and_every_claim_is_bound(cluster: Cluster) -> None:
    pods = cluster.get("pods", "-l", f"app.kubernetes.io/instance={cluster.release}")["items"]
    running = [p for p in pods if p["status"].get("phase") == "Running"]
    assert len(running) >= 11, [p["metadata"]["name"] for p in pods]
    for pod in running:
        ready = {c["type"]: c["status"] for c in pod["status"]["conditions"]}["Ready"]
        assert ready == "True", pod["metadata"]["name"]
    claims = cluster.get("pvc")["items"]
    assert len(claims) >= 4
    assert {c["status"]["phase"] for c in claims} == {"Bound"}


def test_every_container_runs_as_a_non_root_user_on_a_read_only_root(cluster: Cluster) -> None:
    pods = cluster.get("pods", "-l", f"app.kubernetes.io/instance={cluster.release}")["items"]
    for pod in pods:
        spec = pod["spec"]
        for container in spec["containers"] + spec.get("initContainers", []):
            ctx = {**spec.get("securityContext", {}), **container.get("securityContext", {})}
            where = f"{pod['metadata']['name']}/{container['name']}"
            assert ctx.get("runAsNonRoot") is True, where
            assert ctx.get("readOnlyRootFilesystem") is True, where
            assert ctx.get("allowPrivilegeEscalation") is False, where


def test_a_follower_reads_a_new_tweet_through_the_edge_service(api: str) -> None:
    author, follower = sign_up(api, "ka"), sign_up(api, "kf")
    follow = requests.put(f"{api}/users/me/following/{author.username}", headers=follower.headers,
                          timeout=15)
    assert follow.status_code == 204, follow.text
    key = str(uuid.uuid4())
    posted = requests.post(f"{api}/tweets", json={"text": "hello from the cluster"},
                           headers={**author.headers, "Idempotency-Key": key}, timeout=15)
    assert posted.status_code == 201, posted.text
    tweet = posted.json()
    again = requests.post(f"{api}/tweets", json={"text": "hello from the cluster"},
                          headers={**author.headers, "Idempotency-Key": key}, timeout=15)
    assert again.json()["id"] == tweet["id"]

    def in_home_timeline():
        page = requests.get(f"{api}/timeline", headers=follower.headers, timeout=15).json()
        return [t for t in page["items"] if t["id"] == tweet["id"]]

    [seen] = wait_until(in_home_timeline, 60, "the tweet in the follower's home timeline")
    assert seen["author"]["username"] == author.username
    profile = requests.get(f"{api}/users/{author.username}", timeout=15)
    assert profile.json()["followers_count"] == 1
    assert requests.get(f"{api}/tweets/{tweet['id']}", timeout=15).status_code == 200
    deleted = requests.delete(f"{api}/tweets/{tweet['id']}", headers=author.headers, timeout=15)
    assert deleted.status_code == 204
    wait_until(lambda: not in_home_timeline(), 60, "the deleted tweet gone from the timeline")
    missing = requests.get(f"{api}/no/such/route", timeout=15)
    assert missing.status_code == 404
    assert missing.headers["Content-Type"].startswith("application/problem+json")


def busybox_image(cluster: Cluster) -> str:
    """The locally built busybox image the local cluster's provisioner uses."""
    out = cluster.kubectl("get", "configmap", "-n", "local-path-storage", "local-path-config",
                          "-o", "jsonpath={.data.helperPod\\.yaml}").stdout
    return next(line.split("image:")[1].strip() for line in out.splitlines() if "image:" in line)


def run_probe_pod(cluster: Cluster, name: str, script: str, labels: dict[str, str]) -> str:
    """Run a restricted busybox pod to completion and return its log."""
    overrides = {"spec": {
        "securityContext": {"runAsNonRoot": True, "runAsUser": 65534,
                            "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [{"name": name, "image": busybox_image(cluster),
                        "imagePullPolicy": "Never", "command": ["sh", "-c", script],
                        "securityContext": {"allowPrivilegeEscalation": False,
                                            "readOnlyRootFilesystem": True,
                                            "capabilities": {"drop": ["ALL"]}}}]}}
    cluster.kubectl("run", name, "--restart=Never", "--image", busybox_image(cluster),
                    "--labels", ",".join(f"{k}={v}" for k, v in labels.items()),
                    "--overrides", json.dumps(overrides))
    try:
        cluster.kubectl("wait", f"pod/{name}", "--for=jsonpath={.status.phase}=Succeeded",
                        "--timeout=90s")
        return cluster.kubectl("logs", name).stdout
    finally:
        cluster.kubectl("delete", "pod", name, "--wait=false", check=False)


def test_network_policies_refuse_a_pod_outside_the_allow_list(cluster: Cluster) -> None:
    edge_port = cluster.get("service", cluster.name("edge"))["spec"]["ports"][0]["port"]
    script = (f"nc -w 3 {cluster.name('postgres')} 5432 </dev/null && echo postgres=open || echo postgres=refused; "
              f"nc -w 3 {cluster.name('redis')} 6379 </dev/null && echo redis=open || echo redis=refused; "
              f"nc -w 3 {cluster.name('edge')} {edge_port} </dev/null && echo edge=open || echo edge=refused")
    out = run_probe_pod(cluster, f"probe-{uuid.uuid4().hex[:6]}", script, {"role": "outsider"})
    # The edge is open to anyone, which shows the probe's network works; the stores are
    # open to their own services only.
    assert "edge=open" in out, out
    assert "postgres=refused" in out and "redis=refused" in out, out


def test_the_services_reach_the_stores_their_policies_allow(cluster: Cluster) -> None:
    probe = ("import socket,sys; [socket.create_connection((h, p), timeout=3).close() "
             "for h, p in [(sys.argv[1], 5432), (sys.argv[2], 6379)]]; print('reached')")
    result = cluster.kubectl("exec", f"deploy/{cluster.name('users')}", "--", "python", "-c", probe,
                             cluster.name("postgres"), cluster.name("redis"))
    assert "reached" in result.stdout


def test_the_system_status_through_the_edge_sees_every_process_behind_its_policies(
        api: str) -> None:
    """The gateway reaches each worker's /readyz and /metrics (their Services and the
    NetworkPolicies allow exactly that), so no process reads as down or unknown."""
    def all_up():
        body = requests.get(f"{api}/system/status", timeout=15).json()
        states = {c["name"]: c["status"] for c in body["components"]}
        return body if all(s == "up" for n, s in states.items()) else None

    body = wait_until(all_up, 120, "every component of the system status up")
    names = {c["name"] for c in body["components"]}
    assert {"fanout", "users-relay", "timeline-relay", "timeline-authors"} <= names
    assert all(b["state"] == "closed" for b in body["breakers"]), body["breakers"]
