"""Murmur on Kubernetes: the processes' `/metrics`, and what the stock `chaosk8s` lacks.

The experiments tagged `kubernetes` inject their faults with Chaos Toolkit's Kubernetes
extension where it serves (`chaosk8s.pod.actions.terminate_pods`,
`chaosk8s.deployment.actions.scale_deployment`); this module adds what it has no word for:
reading every pod's `/metrics` through the API server's pod proxy (the steady-state probes
count open breakers and the consumer lag there), waiting until a workload has replaced a
killed pod, scaling a Deployment back to what it was, reading the API while a store's pod
is gone, reaching the stores through port-forwards (the wide fan-out's audience is written
into Postgres, and its home timelines are checked in Redis, as the local experiments do)
and killing the fanout worker mid fan-out.

Everything goes through the API server the kubeconfig names (KUBECONFIG, as `kubectl`
and `chaosk8s` use it); the release's namespace is the configuration's `ns` (else
MURMUR_CHAOS_NAMESPACE, default `murmur`) and its name `murmur_release` (else
MURMUR_CHAOS_RELEASE, default `murmur`). Pods are found by the chart's labels:
`app.kubernetes.io/instance=<release>,app.kubernetes.io/component=<component>`.
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any, Iterable

import requests

from common import config
from murmur_chaos import api as client
from murmur_chaos import context, ledger
from murmur_chaos.context import Deviation, Run
from murmur_chaos.steady import _observe, prober

REPO = Path(__file__).resolve().parents[2]
METRICS_PORT = 8000
# The local names of the serving processes, by the chart's component label (both local
# gateways are the gateway Deployment's pods here).
COMPONENT = {"gateway-2": "gateway"}
STATEFUL = ("postgres", "redis", "kafka", "cassandra")
# Where each store listens in its pod, for the port-forwards.
STORE_PORTS = {"postgres": 5432, "redis": 6379}

_API: Any = None
_API_LOCK = threading.Lock()


# ------------------------------------------------------------------ the cluster


def namespace(configuration: dict | None = None) -> str:
    return str((configuration or {}).get("ns")
               or os.environ.get("MURMUR_CHAOS_NAMESPACE") or "murmur")


def release(configuration: dict | None = None) -> str:
    return str((configuration or {}).get("murmur_release")
               or os.environ.get("MURMUR_CHAOS_RELEASE") or "murmur")


def selector(component: str, configuration: dict | None = None) -> str:
    """The label selector of one component's pods."""
    return (f"app.kubernetes.io/instance={release(configuration)},"
            f"app.kubernetes.io/component={COMPONENT.get(component, component)}")


def workload_name(component: str, configuration: dict | None = None) -> str:
    return f"{release(configuration)}-{COMPONENT.get(component, component)}"


def _api_client() -> Any:
    """One API client per process, configured as chaosk8s configures its own."""
    global _API
    with _API_LOCK:
        if _API is None:
            from chaosk8s import create_k8s_api_client

            _API = create_k8s_api_client()
        return _API


def core() -> Any:
    from kubernetes import client as k8s

    return k8s.CoreV1Api(_api_client())


def apps() -> Any:
    from kubernetes import client as k8s

    return k8s.AppsV1Api(_api_client())


def pods(component: str, configuration: dict | None = None) -> list[Any]:
    """The component's pods (terminating ones included), oldest first."""
    found = core().list_namespaced_pod(namespace(configuration),
                                       label_selector=selector(component, configuration),
                                       _request_timeout=10).items
    return sorted(found, key=lambda p: p.metadata.creation_timestamp)


def is_ready(pod: Any) -> bool:
    """Running, Ready and not terminating: a pod the Service sends traffic to."""
    if pod.metadata.deletion_timestamp or pod.status.phase != "Running":
        return False
    return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])


def ready_pods(component: str, configuration: dict | None = None) -> list[Any]:
    return [p for p in pods(component, configuration) if is_ready(p)]


def _restarts(pod: Any) -> int:
    return sum(c.restart_count for c in pod.status.container_statuses or [])


def _workload(component: str, configuration: dict | None = None) -> Any:
    name, ns = workload_name(component, configuration), namespace(configuration)
    if COMPONENT.get(component, component) in STATEFUL:
        return apps().read_namespaced_stateful_set(name, ns, _request_timeout=10)
    return apps().read_namespaced_deployment(name, ns, _request_timeout=10)


def _kind(component: str) -> str:
    return "StatefulSet" if COMPONENT.get(component, component) in STATEFUL else "Deployment"


# ------------------------------------------------------------------ /metrics of every pod


def metrics_texts(run: Run, services: Iterable[str]) -> dict[str, str]:
    """`/metrics` of every ready pod of each named service, by pod name, read through the
    API server's pod proxy. A service with no ready pod, or a ready pod that does not
    answer, raises `requests.ConnectionError`, as a stopped local process refuses."""
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    texts: dict[str, str] = {}
    components = list(dict.fromkeys(COMPONENT.get(s, s) for s in services))
    for component in components:
        serving = ready_pods(component)
        if not serving:
            raise requests.ConnectionError(f"no ready {component} pod in "
                                           f"{namespace()}/{release()}")
        for pod in serving:
            name = pod.metadata.name
            try:
                texts[name] = core().connect_get_namespaced_pod_proxy_with_path(
                    f"{name}:{METRICS_PORT}", namespace(), "metrics", _request_timeout=5)
            except (ApiException, HTTPError) as exc:
                if isinstance(exc, ApiException) and exc.status == 404:
                    continue  # gone between the listing and the read
                raise requests.ConnectionError(f"{name}: /metrics through the pod proxy: "
                                               f"{str(exc)[:200]}") from exc
    return texts


# ------------------------------------------------------------------ probes


def has_ready_pods(component: str, at_least: int = 1, why: str = "",
                   configuration: dict | None = None) -> bool:
    """Probe: `component` has at least `at_least` ready pods (`why`: what the experiment
    needs them for, said in the deviation)."""
    ready = ready_pods(component, configuration)
    if len(ready) < at_least:
        raise Deviation(f"{workload_name(component, configuration)} has {len(ready)} ready "
                        f"pod(s), fewer than {at_least}" + (f": {why}" if why else ""))
    return True


# ------------------------------------------------------------------ pods killed, replaced


def remember_pods(component: str, configuration: dict | None = None) -> dict[str, Any]:
    """Action: note the component's pods (uid, name, restarts) and its workload's replicas
    before a fault, for `wait_replaced` and `scale_back`."""
    run = context.current(configuration)
    found = {p.metadata.uid: {"name": p.metadata.name, "restarts": _restarts(p)}
             for p in pods(component, configuration)}
    replicas = _workload(component, configuration).spec.replicas
    kube = context.state(run).get("kube", {})
    kube[component] = {"pods": found, "replicas": replicas}
    context.update_state(run, kube=kube)
    return {"pods": sorted(p["name"] for p in found.values()), "replicas": replicas}


def _since_fault(run: Run) -> float:
    return context.last_mark(run, "fault started") or time.time()


def wait_replaced(component: str, deadline: float = 120,
                  configuration: dict | None = None) -> dict[str, Any]:
    """Action: wait until the component's workload again has all its replicas ready, one
    of them new (a pod `remember_pods` did not see, or one whose containers restarted);
    records an observation and `<component>_replaced_after_s` (since "fault started")."""
    run = context.current(configuration)
    before = context.state(run).get("kube", {}).get(component, {}).get("pods", {})
    since, end = _since_fault(run), time.monotonic() + deadline
    label = f"the {_kind(component)} replaced the killed {component} pod"
    last = "never read"
    while time.monotonic() < end:
        try:
            want = _workload(component, configuration).spec.replicas or 0
            ready = ready_pods(component, configuration)
        except Exception as exc:  # noqa: BLE001 - the API server is what we wait on too
            last = f"{type(exc).__name__}: {exc}"
            time.sleep(0.5)
            continue
        fresh = [p for p in ready if p.metadata.uid not in before
                 or _restarts(p) > before[p.metadata.uid]["restarts"]]
        last = f"{len(ready)} of {want} ready, {len(fresh)} new"
        if want and len(ready) >= want and fresh:
            seconds = round(time.time() - since, 2)
            context.set_figures(run, **{f"{component}_replaced_after_s": seconds})
            gone = sorted(p["name"] for uid, p in before.items()
                          if uid not in {r.metadata.uid for r in ready})
            new = sorted(p.metadata.name + (" (new pod, same name)"
                                            if p.metadata.name in gone else "")
                         for p in fresh)
            return _observe(run, label, True,
                            f"{', '.join(gone) or 'a container restarted'} -> "
                            f"{', '.join(new)}: {len(ready)} of {want} ready {seconds}s "
                            "after the kill", seconds=seconds)
        time.sleep(0.3)
    return _observe(run, label, False, f"not replaced within {deadline:.0f}s ({last})")


def wait_pods_gone(component: str, deadline: float = 90,
                   configuration: dict | None = None) -> dict[str, Any]:
    """Action: wait until no pod of `component` is left, terminating ones included (while
    every endpoint of a Service is terminating, kube-proxy still sends it connections:
    the outage begins when the last pod has stopped); records `<component>_gone_after_s`
    (since "fault started")."""
    run = context.current(configuration)
    since, end = _since_fault(run), time.monotonic() + deadline
    while time.monotonic() < end:
        left = pods(component, configuration)
        if not left:
            seconds = round(time.time() - since, 2)
            context.set_figures(run, **{f"{component}_gone_after_s": seconds})
            return {"gone_after_s": seconds}
        time.sleep(0.2)
    raise Deviation(f"{len(left)} {workload_name(component, configuration)} pod(s) still "
                    f"there {deadline:.0f}s after the fault started")


def scale_back(component: str, deadline: float = 120,
               configuration: dict | None = None) -> dict[str, Any]:
    """Action: scale the component's Deployment back to the replicas `remember_pods` saw
    and wait until they are all ready; records an observation and `<component>_back_s`
    (seconds from the scale-up to all ready)."""
    from chaosk8s.deployment.actions import scale_deployment

    run = context.current(configuration)
    replicas = context.state(run).get("kube", {}).get(component, {}).get("replicas") or 1
    started = time.monotonic()
    scale_deployment(workload_name(component, configuration), replicas,
                     ns=namespace(configuration))
    end = started + deadline
    label = f"{workload_name(component, configuration)} back to {replicas} ready pod(s)"
    while time.monotonic() < end:
        ready = ready_pods(component, configuration)
        if len(ready) >= replicas:
            seconds = round(time.monotonic() - started, 2)
            context.set_figures(run, **{f"{component}_back_s": seconds})
            return _observe(run, label, True, f"ready {seconds}s after the scale-up",
                            seconds=seconds)
        time.sleep(0.3)
    return _observe(run, label, False, f"not ready within {deadline:.0f}s")


def ensure_replicas(component: str, configuration: dict | None = None) -> str:
    """Rollback: the component's Deployment has at least the replicas `remember_pods` saw
    (a scale-down the method did not undo is undone)."""
    from chaosk8s.deployment.actions import scale_deployment

    run = context.current(configuration)
    replicas = context.state(run).get("kube", {}).get(component, {}).get("replicas")
    if not replicas:
        return "nothing remembered"
    now = _workload(component, configuration).spec.replicas or 0
    if now >= replicas:
        return f"{now} replicas"
    scale_deployment(workload_name(component, configuration), replicas,
                     ns=namespace(configuration))
    return f"scaled back from {now} to {replicas}"


# ------------------------------------------------------------------ reads while a pod is gone


def observe_reads_while_down(component: str = "redis", path: str = "/timeline",
                             status: int = 200, degraded: str = "",
                             max_latency_ms: float = 2000,
                             expect_followed_tweets: bool = False, at_least: int = 5,
                             deadline: float = 120, name: str = "",
                             configuration: dict | None = None) -> dict[str, Any]:
    """Action: read `path` again and again from the fault until the component's workload
    has all its replicas ready again, and record whether every read answered `status`
    within `max_latency_ms`, and those made while the component was down (from the first
    answer with the `degraded` marker until its replacement is ready) carried that marker
    and, with `expect_followed_tweets`, the ledger's acknowledged tweets. At least
    `at_least` reads must fall in the outage: a fault nobody saw proves nothing.

    A pod killed on Kubernetes comes back by itself, after a time the experiment does not
    choose: this reads for exactly as long as the outage lasts, where `steady.observe_reads`
    reads for a fixed time."""
    run = context.current(configuration)
    book = ledger.book(run)
    reader = client.member(book["followers"][0]) if book.get("followers") else prober(run)
    real_path = path.replace("{prober}", prober(run).username)
    headers = reader.auth if real_path.startswith("/timeline") else {}
    want = _workload(component, configuration).spec.replicas or 1
    end = time.monotonic() + deadline
    problems: list[str] = []
    latencies: list[float] = []
    outage_reads = reads = 0
    seen_down = None
    back = None
    with requests.Session() as http:
        while time.monotonic() < end:
            reads += 1
            started = time.perf_counter()
            try:
                resp = http.get(f"{run.api}{real_path}", headers=headers, timeout=10)
            except requests.RequestException as exc:
                problems.append(f"no answer ({type(exc).__name__})")
                time.sleep(0.1)
                continue
            latencies.append((time.perf_counter() - started) * 1000)
            marker = resp.headers.get(client.DEGRADED, "")
            if resp.status_code != status:
                problems.append(f"{resp.status_code} instead of {status}")
            elif latencies[-1] > max_latency_ms:
                problems.append(f"a read took {latencies[-1]:.0f} ms > {max_latency_ms:.0f} ms")
            elif marker == degraded and seen_down is None:
                seen_down = time.time()
            if seen_down is not None and resp.status_code == status:
                outage_reads += 1
                if marker != degraded:
                    problems.append(f"degraded marker {marker!r} while {component} was "
                                    f"down, wanted {degraded!r}")
                elif expect_followed_tweets:
                    shown = {t["id"] for t in resp.json()["items"]}
                    missing = set(ledger.acknowledged_ids(run, before=time.time())) - shown
                    if missing:
                        problems.append(f"{len(missing)} of the followees' tweets missing")
            # Back: all replicas ready after the outage was seen (or 30 s without it).
            if len(ready_pods(component, configuration)) >= want and (
                    seen_down is not None or time.time() - _since_fault(run) > 30):
                back = round(time.time() - _since_fault(run), 2)
                break
            time.sleep(0.1)
    if back is None:
        problems.append(f"{component} not ready again within {deadline:.0f}s")
    if outage_reads < at_least:
        problems.append(f"only {outage_reads} read(s) met the outage (wanted {at_least})"
                        if seen_down else f"no read answered {degraded!r}: the outage "
                        "was never seen")
    down_s = round(time.time() - seen_down, 2) if seen_down and back is not None else None
    label = name or (f"GET {path} -> {status}"
                     f"{' ' + degraded if degraded else ''} while {component} is down")
    p50 = sorted(latencies)[len(latencies) // 2] if latencies else None
    context.set_figures(run, **{f"{component}_outage_reads": outage_reads})
    return _observe(run, label, not problems, "; ".join(sorted(set(problems))) or
                    f"{outage_reads} of {reads} reads during the outage, all as expected; "
                    f"{component} ready again {back}s after the kill",
                    p50_ms=p50, max_ms=max(latencies) if latencies else None,
                    outage_reads=outage_reads, seen_down_s=down_s)


# ------------------------------------------------------------------ settings of a Deployment


def set_env(component: str, env: dict[str, str], deadline: float = 180,
            configuration: dict | None = None) -> dict[str, Any]:
    """Action: set environment variables on the component's Deployment (its container of
    the same name; they take precedence over the chart's ConfigMap) and wait until the
    rollout is done. The previous values are kept for `restore_env`."""
    run = context.current(configuration)
    container = COMPONENT.get(component, component)
    deployment = _workload(component, configuration)
    [spec] = [c for c in deployment.spec.template.spec.containers if c.name == container]
    current = {e.name: e.value for e in spec.env or []}
    saved = context.state(run).get("env_before", {})
    saved.setdefault(component, {k: current.get(k) for k in env})
    context.update_state(run, env_before=saved)
    _patch_env(component, {k: str(v) for k, v in env.items()}, configuration)
    return _rolled_out(component, deadline, configuration)


def restore_env(component: str, deadline: float = 180,
                configuration: dict | None = None) -> dict[str, Any] | str:
    """Rollback: put back the environment `set_env` changed, and wait for the rollout."""
    run = context.current(configuration)
    saved = context.state(run).get("env_before", {})
    before = saved.pop(component, None)
    if before is None:
        return "nothing to restore"
    _patch_env(component, before, configuration)
    context.update_state(run, env_before=saved)
    return _rolled_out(component, deadline, configuration)


def _patch_env(component: str, values: dict[str, str | None],
               configuration: dict | None) -> None:
    """A strategic merge patch of the container's env: None deletes the variable."""
    entries = [{"name": k, "$patch": "delete"} if v is None else {"name": k, "value": v}
               for k, v in values.items()]
    body = {"spec": {"template": {"spec": {"containers": [
        {"name": COMPONENT.get(component, component), "env": entries}]}}}}
    apps().patch_namespaced_deployment(workload_name(component, configuration),
                                       namespace(configuration), body)


def _rolled_out(component: str, deadline: float, configuration: dict | None) -> dict[str, Any]:
    """Wait as `kubectl rollout status` does: the new template everywhere, all ready."""
    name, ns = workload_name(component, configuration), namespace(configuration)
    started = time.monotonic()
    while time.monotonic() - started < deadline:
        d = apps().read_namespaced_deployment(name, ns, _request_timeout=10)
        s, want = d.status, d.spec.replicas or 0
        if ((s.observed_generation or 0) >= d.metadata.generation
                and (s.updated_replicas or 0) == want and (s.replicas or 0) == want
                and (s.available_replicas or 0) == want
                and len(ready_pods(component, configuration)) == want):
            return {"rolled_out_s": round(time.monotonic() - started, 1)}
        time.sleep(0.5)
    raise RuntimeError(f"{name} not rolled out within {deadline:.0f}s")


# ------------------------------------------------------------------ the stores, forwarded


class _Forward:
    """`kubectl port-forward` to a Service, on a free local port."""

    def __init__(self, target: str, port: int, ns: str) -> None:
        self.proc = subprocess.Popen(
            [kubectl(), "-n", ns, "port-forward", "--address", "127.0.0.1", target,
             f":{port}"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        found = re.search(r"127\.0\.0\.1:(\d+)", line)
        if not found:
            self.close()
            raise RuntimeError(f"kubectl port-forward {target}: {line.strip()!r}")
        self.port = int(found.group(1))
        # Keep reading its output, so a full pipe never blocks it.
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        for _ in self.proc.stdout or []:
            pass

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()


_FORWARDS: dict[str, _Forward] = {}
atexit.register(lambda: close_stores())


def kubectl() -> str:
    """kubectl: $KUBECTL, the local cluster's (k8s/tool.sh), or the one on PATH."""
    if os.environ.get("KUBECTL"):
        return os.environ["KUBECTL"]
    done = subprocess.run(["bash", str(REPO / "k8s/tool.sh"), "kubectl"], capture_output=True,
                          text=True, timeout=900)
    found = done.stdout.strip() or shutil.which("kubectl") or "kubectl"
    os.environ["KUBECTL"] = found
    return found


def open_stores(stores: list[str] | None = None,
                configuration: dict | None = None) -> dict[str, int]:
    """Action: port-forward to the release's `stores` (postgres, redis) and point this
    process's store settings at them (the deployment's own user, database, password and
    Redis database), so that the platform's seed and the ledger's checks of thousands of
    home timelines reach them as they reach the local ones. `close_stores` ends them."""
    ns, rel = namespace(configuration), release(configuration)
    settings = core().read_namespaced_config_map(f"{rel}-env", ns, _request_timeout=10).data
    opened = {}
    for store in stores or ["postgres", "redis"]:
        if store not in _FORWARDS:
            _FORWARDS[store] = _Forward(f"svc/{rel}-{store}", STORE_PORTS[store], ns)
        opened[store] = _FORWARDS[store].port
    os.environ["MURMUR_STORE_HOST"] = "127.0.0.1"
    profile = config.PROFILES[settings.get("MURMUR_PROFILE", "dev")]
    # This process now acts on the deployment's stores, so it takes the deployment's
    # profile: rows the seed writes into users' outbox must name the deployment's topics
    # (a topic that does not exist would hold up users' relay).
    os.environ["MURMUR_PROFILE"] = profile.name
    for name in ("MURMUR_TOPIC_PREFIX", "MURMUR_CASSANDRA_KEYSPACE"):
        if settings.get(name):
            os.environ[name] = settings[name]
    if "postgres" in opened:
        import base64

        secret = core().read_namespaced_secret(f"{rel}-postgres", ns, _request_timeout=10)
        os.environ.update({
            "MURMUR_PG_HOST": "127.0.0.1", "MURMUR_PG_PORT": str(opened["postgres"]),
            "MURMUR_PG_USER": settings["MURMUR_PG_USER"],
            "MURMUR_PG_DATABASE": settings["MURMUR_PG_DATABASE"],
            "MURMUR_PG_PASSWORD": base64.b64decode(secret.data["password"]).decode()})
    if "redis" in opened:
        os.environ.update({
            "MURMUR_REDIS_HOST": "127.0.0.1", "MURMUR_REDIS_PORT": str(opened["redis"]),
            "MURMUR_REDIS_DB": settings.get("MURMUR_REDIS_DB", str(profile.redis_db))})
    return opened


def close_stores(configuration: dict | None = None) -> list[str]:
    """Action (and rollback): end the port-forwards `open_stores` started."""
    closed = []
    for store, forward in list(_FORWARDS.items()):
        forward.close()
        del _FORWARDS[store]
        closed.append(store)
    return closed


# ------------------------------------------------------------------ fanout killed mid fan-out


# Run in the fanout container (its Python, its Redis settings; its NetworkPolicy lets it
# reach Redis): wait until any of the home timelines named on the command line appears,
# then SIGKILL the worker, the child of dumb-init (PID 1).
_WATCHER = r"""
import os, signal, sys, time
import redis
from common import config
from common.home_timeline import key
seconds, users = float(sys.argv[1]), sys.argv[2:]
worker = int(open("/proc/1/task/1/children").read().split()[0])
store = redis.Redis.from_url(config.stores().redis_url, socket_timeout=5)
def present(keys):
    pipe = store.pipeline(transaction=False)
    for k in keys:
        pipe.exists(k)
    return [k for k, n in zip(keys, pipe.execute()) if n]
already = set(present([key(int(u)) for u in users]))
keys = [key(int(u)) for u in users if key(int(u)) not in already]
print("watching", worker, len(keys), flush=True)
end = time.monotonic() + seconds
while time.monotonic() < end:
    if present(keys):
        print("killing", flush=True)  # first: the worker's death ends this container
        os.kill(worker, signal.SIGKILL)
        break
    time.sleep(0.001)
else:
    print("timeout", flush=True)
"""


def _read_until(ws: Any, pattern: str, timeout: float) -> tuple[str, re.Match | None]:
    """What the exec session printed until a whole line matching `pattern` (or its end)."""
    out, end = "", time.monotonic() + timeout
    while time.monotonic() < end and ws.is_open():
        ws.update(timeout=0.05)
        if ws.peek_stdout():
            out += ws.read_stdout()
        if ws.peek_stderr():
            out += ws.read_stderr()
        found = re.search(pattern + r"\n", out)
        if found:
            return out, found
    return out, None


def post_and_kill_mid_fanout(deadline: float = 60,
                             configuration: dict | None = None) -> dict[str, Any]:
    """Action: the ledger's (wide) author posts once; as soon as the home timeline of any
    of 200 followers sampled across the audience exists, fanout's worker is SIGKILLed in
    its pod, and the pod deleted (the Deployment starts another). Redis is read again
    (through the port-forward of `open_stores`) just after the kill: the observation
    records how many of the followers held the tweet then, which proves the kill landed
    mid fan-out (and records why not, whatever went wrong).

    The followers are new accounts with empty home timelines, so the first to exist holds
    the tweet. The watching and the kill happen in the fanout container itself (a small
    Python program exec'd there before the post): the whole fan-out to 20,000 timelines
    takes well under 100 ms, less than a round trip from outside through the API server.
    And a SIGKILL, not only a pod deletion: deleting a pod sends SIGTERM first, on which
    the worker finishes the records in hand and commits them (even with a zero grace
    period the kubelet allows two seconds), a clean stop rather than the crash under test;
    the container's exit code, 137 (dumb-init passing on the SIGKILL), proves the crash."""
    run = context.current(configuration)
    try:
        return _post_and_kill_mid_fanout(run, deadline, configuration)
    except Exception as exc:  # noqa: BLE001 - no kill proven: the hypothesis cannot hold
        return _observe(run, "fanout killed mid fan-out", False,
                        f"{type(exc).__name__}: {exc}")


def _post_and_kill_mid_fanout(run: Run, deadline: float,
                              configuration: dict | None) -> dict[str, Any]:
    from kubernetes import client as k8s
    from kubernetes.stream import stream

    from murmur_chaos.pipeline import _holding

    ns = namespace(configuration)
    followers = [int(f) for f in ledger.book(run)["wide_ids"]]
    sample = followers[::max(1, len(followers) // 200)]
    label = "fanout killed mid fan-out"
    [victim, *_] = ready_pods("fanout", configuration) or [None]
    if victim is None:
        return _observe(run, label, False, "no ready fanout pod to kill")
    pod = victim.metadata.name
    ws = stream(k8s.CoreV1Api(_api_client()).connect_get_namespaced_pod_exec, pod, ns,
                container="fanout",
                command=["python", "-c", _WATCHER, str(deadline), *map(str, sample)],
                stdin=False, stdout=True, stderr=True, tty=False, _preload_content=False)
    try:
        out, watching = _read_until(ws, r"watching (\d+) (\d+)", 30)
        if not watching:
            return _observe(run, label, False, f"the watcher did not start: {out[-300:]!r}")
        worker = int(watching.group(1))
        posted = ledger.post(count=1, configuration=configuration)
        tweet_id = posted["ids"][0]
        more, done = _read_until(ws, r"(killing|timeout)", deadline + 10)
        time.sleep(0.05)  # the SIGKILL follows the line at once
    finally:
        ws.close()
    if tweet_id is None:
        return _observe(run, label, False, "the post was not accepted")
    if not done or done.group(1) != "killing":
        return _observe(run, label, False, f"the worker was not killed: {more[-300:]!r}")
    killed_at = time.time()
    holding = _holding(run, tweet_id, followers)
    exit_code = _exit_code(pod, "fanout", ns)
    core().delete_namespaced_pod(pod, ns, body=k8s.V1DeleteOptions(grace_period_seconds=0))
    inside = 0 < holding < len(followers) and exit_code == 137
    context.set_figures(run, held_at_kill=holding, audience=len(followers))
    return _observe(run, label, inside,
                    f"{holding} of {len(followers)} followers held the tweet just after "
                    f"the worker (pid {worker} in {pod}) was SIGKILLed (the container "
                    f"exited with {exit_code}); the pod deleted",
                    killed=pod, pid=worker, killed_at=killed_at, holding=holding,
                    followers=len(followers), exit_code=exit_code)


def _exit_code(pod: str, container: str, ns: str, timeout: float = 5) -> int | str:
    """The exit code the kubelet reports for the container's last run (137: SIGKILL)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        status = core().read_namespaced_pod(pod, ns, _request_timeout=5).status
        for c in status.container_statuses or []:
            done = (c.state and c.state.terminated) or (c.last_state and c.last_state.terminated)
            if c.name == container and done:
                return done.exit_code
        time.sleep(0.2)
    return "an exit the kubelet had not reported yet"
