"""Home-timeline reads through nginx → gateway → timeline, beside a one-hop baseline.

    python bench/reads.py [--concurrency 16] [--duration 15]
    python bench/reads.py --exporters none,file,zipkin


Lifts nginx's per-client rate limit for the run (one load generator is one client) and
restores it afterwards. Sets up a reader who follows ten authors with fifty tweets between
them (through the public API), starts `bench/baseline_app.py` under gunicorn with the
gateway's worker settings, then drives both with wrk at the same fixed concurrency and
prints requests/s, p50 and p99 for each, the ratio of the real path to the baseline
(target ≥ 60 %), p99/p50 of the real path (target ≤ 3), and the CPU each process spent per
request, which explains the ratio on a machine where every hop shares the same cores.

With `--exporters`, it measures what exporting every span costs instead: the profile's
services are brought up once per exporter (`OTEL_TRACES_EXPORTER=<x> make up`, which
restarts them), the real path is driven the same way each time, and it prints the CPU
seconds per request of the serving processes (gateway, timeline) for each exporter, as a
ratio against the first one (`none`: the SDK records spans and drops them), plus the
Zipkin server's own CPU per request. The profile's recorded settings are put back after.
Figures only: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Callable

import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "services"))

from common import config  # noqa: E402
from support import stack_up, stackctl, start_ready  # noqa: E402

BASELINE_PORT = config.env_int("BENCH_BASELINE_PORT", 18999)
PASSWORD = "bench-password-1"


def api() -> str:
    return f"http://127.0.0.1:{config.profile().http_port}/api/v1"


def register_and_login(session: requests.Session, name: str) -> tuple[str, str]:
    """Create a user through the public API; returns (user id, bearer token)."""
    resp = session.post(f"{api()}/users", json={"username": name, "password": PASSWORD},
                        timeout=30)
    resp.raise_for_status()
    token = session.post(f"{api()}/sessions", json={"username": name, "password": PASSWORD},
                         timeout=30).json()["access_token"]
    return resp.json()["id"], token


def set_up_reader(authors: int, tweets_each: int, limit: int) -> tuple[str, str]:
    """A reader whose home timeline holds a full page; returns (user id, token)."""
    session = requests.Session()
    tag = uuid.uuid4().hex[:8]
    reader_id, reader_token = register_and_login(session, f"bench_r_{tag}")
    for a in range(authors):
        name = f"bench_a{a}_{tag}"
        _, token = register_and_login(session, name)
        session.put(f"{api()}/users/me/following/{name}", timeout=10,
                    headers={"Authorization": f"Bearer {reader_token}"}).raise_for_status()
        for n in range(tweets_each):
            session.post(f"{api()}/tweets", json={"text": f"bench tweet {n} from {name}"},
                         headers={"Authorization": f"Bearer {token}"},
                         timeout=10).raise_for_status()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        page = session.get(f"{api()}/timeline?limit={limit}", timeout=10,
                           headers={"Authorization": f"Bearer {reader_token}"}).json()
        if len(page["items"]) >= limit:
            return reader_id, reader_token
        time.sleep(0.2)
    sys.exit("the reader's home timeline never filled: is fanout running?")


def start_baseline() -> subprocess.Popen:
    """gunicorn serving the baseline app with the gateway's worker and thread counts."""
    env = {**os.environ, "PYTHONPATH": f"{REPO / 'services'}:{REPO}",
           "MURMUR_PORT": str(BASELINE_PORT), "MURMUR_PROCESS": "bench-baseline"}
    return start_ready([str(Path(sys.executable).parent / "gunicorn"), "-c",
                        "python:common.gunicorn_conf", "bench.baseline_app:create_app()"],
                       env, f"http://127.0.0.1:{BASELINE_PORT}/readyz", "the baseline app",
                       timeout=30)


def set_rate_limit(per_second: int | None) -> None:
    """Re-render and reload this profile's nginx with another rate limit (None: default)."""
    os.environ.pop("MURMUR_RATE_LIMIT", None)
    limit = {} if per_second is None else {"MURMUR_RATE_LIMIT": str(per_second)}
    stack_up(config.profile().name, **limit)


def to_ms(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value).groups()
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def tree_cpu_seconds(pid: int) -> float:
    """CPU time (user + system) used so far by `pid` and its live descendants."""
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
            for task in Path(f"/proc/{current}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue  # a process that ended meanwhile
    return total


def platform_pids() -> dict[str, list[int]]:
    """The running processes of this profile's read path and of the stores it reads."""
    prefix = "" if config.profile().name == "dev" else f"{config.profile().name}-"
    groups = {"nginx": ["nginx"], "gateway": ["gateway-1", "gateway-2"],
              "timeline": ["timeline"], "users": ["users"]}
    pids = {group: [stackctl.process_info(prefix + n)["pid"] for n in names]
            for group, names in groups.items()}
    pids.update({store: [stackctl.process_info(store)["pid"]]
                 for store in ("redis", "cassandra", "postgres")})
    return {group: [p for p in found if p] for group, found in pids.items()}


def cpu_per_request(pids: dict[str, list[int]], run: Callable[[], dict[str, float]]
                    ) -> tuple[dict[str, float], dict[str, float]]:
    """Run `run` (one wrk run) and return its result and each group's CPU ms per request."""
    before = {g: sum(tree_cpu_seconds(p) for p in ps) for g, ps in pids.items()}
    result = run()
    return result, {g: (sum(tree_cpu_seconds(p) for p in ps) - before[g]) * 1000
                    / max(1, result["requests"]) for g, ps in pids.items()}


def wrk(url: str, headers: dict[str, str], concurrency: int, duration: int) -> dict[str, float]:
    """Run wrk against `url`; returns rps, p50/p99 in ms, and non-2xx responses."""
    cmd = ["wrk", "-t2", f"-c{concurrency}", f"-d{duration}s", "--latency", "--timeout", "5s"]
    for name, value in headers.items():
        cmd += ["-H", f"{name}: {value}"]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True).stdout
    latency = dict(re.findall(r"^\s+(50|99)%\s+(\S+)$", out, re.M))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"requests": int(re.search(r"(\d+) requests in", out).group(1)),
            "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
            "p50": to_ms(latency["50"]), "p99": to_ms(latency["99"]),
            "errors": int(errors.group(1)) if errors else 0}


def compare_exporters(exporters: list[str], token: str, args: argparse.Namespace) -> int:
    """CPU per request of the serving processes with each span exporter, in one run."""
    profile = config.profile().name
    recorded = stackctl.service_settings(profile)
    url = f"{api()}/timeline?limit={args.limit}"
    headers = {"Authorization": f"Bearer {token}"}
    results: dict[str, tuple[dict[str, float], dict[str, float]]] = {}
    set_rate_limit(1_000_000)
    try:
        for exporter in exporters:
            print(f"  OTEL_TRACES_EXPORTER={exporter} make up (restarts the services) ...",
                  flush=True)
            stack_up(profile, OTEL_TRACES_EXPORTER=exporter, MURMUR_RATE_LIMIT="1000000")
            platform = platform_pids()
            groups = {"gateway": platform["gateway"], "timeline": platform["timeline"],
                      "zipkin": [p for p in [stackctl.process_info("zipkin")["pid"]] if p]}
            wrk(url, headers, args.concurrency, 3)  # warm pools, caches and the exporter
            results[exporter] = cpu_per_request(
                groups, lambda: wrk(url, headers, args.concurrency, args.duration))
    finally:
        # The recorded settings as they were (an empty value removes one).
        restore = {"OTEL_TRACES_EXPORTER": recorded.get("OTEL_TRACES_EXPORTER", "")}
        stack_up(profile, **restore)
        set_rate_limit(None)

    base = exporters[0]
    serving = {e: cpu["gateway"] + cpu["timeline"] for e, (_, cpu) in results.items()}
    print(f"\nspan export cost: home timeline through nginx, limit={args.limit}, concurrency "
          f"{args.concurrency}, {args.duration}s per exporter (wrk, 2 threads)")
    print(f"{'exporter':<10}{'req/s':>9}{'gateway':>10}{'timeline':>10}{'serving':>10}"
          f"{'vs ' + base:>10}{'zipkin srv':>12}   (CPU ms per request)")
    for exporter, (run, cpu) in results.items():
        print(f"{exporter:<10}{run['rps']:>9.0f}{cpu['gateway']:>10.2f}{cpu['timeline']:>10.2f}"
              f"{serving[exporter]:>10.2f}{serving[exporter] / serving[base]:>9.2f}x"
              f"{cpu['zipkin']:>12.2f}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--duration", type=int, default=15)
    parser.add_argument("--limit", type=int, default=20)
    parser.add_argument("--exporters", help="compare span exporters instead, e.g. "
                                            "none,file,zipkin (the first is the baseline)")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed: `apt-get install wrk` (make bench does it)")

    print(f"profile {config.profile().name}: setting up a reader with a full page ...")
    reader_id, token = set_up_reader(authors=10, tweets_each=5, limit=args.limit)
    if args.exporters:
        return compare_exporters([e.strip() for e in args.exporters.split(",") if e.strip()],
                                 token, args)
    # One load generator is one client: lift the per-client rate limit for the run, or
    # nginx answers most requests with a fast 429 and the figures mean nothing.
    set_rate_limit(1_000_000)
    baseline = start_baseline()
    try:
        runs = {
            "baseline (one hop)": (f"http://127.0.0.1:{BASELINE_PORT}/timeline/{reader_id}"
                                   f"?limit={args.limit}", {}),
            "nginx → gateway → timeline": (f"{api()}/timeline?limit={args.limit}",
                                           {"Authorization": f"Bearer {token}"}),
        }
        # Where the CPU goes per request, process by process: both paths share two cores
        # with the stores and wrk, so CPU per request bounds requests per second.
        platform = platform_pids()
        cpu_groups = {"baseline (one hop)": {"baseline": [baseline.pid]},
                      "nginx → gateway → timeline": {
                          g: platform[g] for g in ("nginx", "gateway", "timeline", "users")}}
        results, cpu = {}, {}
        for name, (url, headers) in runs.items():
            wrk(url, headers, args.concurrency, 3)  # warm caches, pools and connections
            groups = {**cpu_groups[name], **{s: platform[s] for s in ("redis", "cassandra")}}
            results[name], cpu[name] = cpu_per_request(
                groups, lambda: wrk(url, headers, args.concurrency, args.duration))
    finally:
        baseline.terminate()
        baseline.wait(timeout=30)
        set_rate_limit(None)

    print(f"\nhome timeline, limit={args.limit}, concurrency {args.concurrency}, "
          f"{args.duration}s each (wrk, 2 threads)")
    print(f"{'path':<30}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'p99/p50':>9}{'non-2xx':>9}")
    for name, r in results.items():
        print(f"{name:<30}{r['rps']:>10.0f}{r['p50']:>10.2f}{r['p99']:>10.2f}"
              f"{r['p99'] / r['p50']:>9.1f}{r['errors']:>9}")
    base, real = results["baseline (one hop)"], results["nginx → gateway → timeline"]
    print(f"\nthroughput ratio real/baseline: {real['rps'] / base['rps']:.0%} (target ≥ 60%)")
    print(f"p99/p50 of the real path: {real['p99'] / real['p50']:.1f} (target ≤ 3)")
    print("\nCPU ms per request, by process (the load generator's own share not counted):")
    for name, groups in cpu.items():
        parts = "  ".join(f"{g} {ms:.2f}" for g, ms in groups.items())
        print(f"  {name:<28}{parts}  total {sum(groups.values()):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
