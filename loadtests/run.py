"""Run one load test and keep everything it produced in its own folder (`make load`).

    python -m loadtests.run [--shape steady|ramp|spike] [--users N] [--spawn-rate R]
                            [--duration 60s] [--target URL] [--slo FILE] [--workers N] [--ui]

Before Locust starts it checks that the seed manifest exists and that the target knows its
accounts, and says what to do when not. The run's folder, `var/load/runs/<time>-<shape>/`,
gets Locust's CSV files (`locust_stats.csv`, `locust_stats_history.csv`,
`locust_failures.csv`, `locust_exceptions.csv`), its HTML report (`report.html`, with the
SLO table added at the top), the SLO table (`slo.txt`, `slo.json`), the run's parameters
(`params.json`: target, shape, users, duration, git revision, ...), the CPU the load
generator itself used (`cpu.json`) and Locust's log. The folder's path is the last line
printed; the exit status is Locust's (non-zero on an SLO breach).
"""

from __future__ import annotations

import argparse
import html
import json
import os
import platform
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "services"))

from common import config  # noqa: E402  (stdlib only: safe in the load venv)

from loadtests import shapes, slo, workload  # noqa: E402

DEFAULTS = {  # per shape: users (ramp: the top), spawn rate, duration
    "steady": (20, 5.0, "60s"),
    "ramp": (400, 10.0, ""),
    "spike": (100, 5.0, "120s"),
}
UI_PORT = config.env_int("MURMUR_LOAD_UI_PORT", 18089)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default=config.env("MURMUR_PROFILE", "dev"),
                        choices=sorted(config.PROFILES), help="local profile (target, manifest)")
    parser.add_argument("--target", default="", help="base URL of the deployment "
                        "(default: the profile's nginx); a trailing /api/v1 is accepted")
    parser.add_argument("--shape", default="", help="steady | ramp | spike "
                        "(default: steady; in the UI: none, the UI's controls decide)")
    parser.add_argument("--users", type=int, help="users (ramp: the top step)")
    parser.add_argument("--spawn-rate", type=float, help="users started per second")
    parser.add_argument("--duration", default="", help="run time, e.g. 90s or 5m (not ramp)")
    parser.add_argument("--step-users", type=int, help="ramp: users added per step")
    parser.add_argument("--step-time", default="", help="ramp: seconds per step")
    parser.add_argument("--warmup", default="", help="seconds not judged at the start "
                        "(steady, spike: min(30s, a quarter of the run); ramp: a third of a step)")
    parser.add_argument("--slo", default=str(REPO / "loadtests/slo.toml"), help="SLO file")
    parser.add_argument("--manifest", default="", help="seed manifest "
                        "(default: var/seed/<profile>.json)")
    parser.add_argument("--workers", type=int, default=1,
                        help="Locust worker processes (>1: master + workers on this machine)")
    parser.add_argument("--think", type=float, help="mean seconds between one user's actions")
    parser.add_argument("--page", type=int, help="page size the users ask for (default 20)")
    parser.add_argument("--tour", action="store_true",
                        help="each user first walks every route of the mix once (smoke runs)")
    parser.add_argument("--ui", action="store_true", help="Locust's web UI instead of headless")
    parser.add_argument("--ui-port", type=int, default=UI_PORT)
    parser.add_argument("--out", default=str(config.murmur_home() / "load" / "runs"),
                        help="folder holding the per-run folders")
    return parser.parse_args(argv)


def base_url(args: argparse.Namespace) -> str:
    target = args.target or f"http://127.0.0.1:{config.PROFILES[args.profile].http_port}"
    target = target.rstrip("/")
    return target[: -len("/api/v1")] if target.endswith("/api/v1") else target


def check_target(target: str, manifest: workload.Manifest, profile: str) -> str | None:
    """None if the target answers and knows the manifest's accounts; else what is wrong."""
    probe = manifest.accounts[0].username
    url = f"{target}/api/v1/users/{probe}"
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            resp.read()
        return None
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return (f"{target} does not know {probe}, an account of the seed manifest: seed "
                    f"that deployment first (`make seed PROFILE={profile}` for the local "
                    "stack; docs/load-testing.md for Kubernetes)")
        return f"{url} answered HTTP {exc.code}: is the deployment healthy?"
    except (urllib.error.URLError, OSError) as exc:
        return f"nothing answers at {target} ({exc}): is it up (`make up`)?"


def git_revision() -> str:
    try:
        rev = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=REPO,
                             capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=REPO, capture_output=True, text=True).stdout.strip()
        return rev + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_folder(base: Path, label: str) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    folder = base / f"{stamp}-{label}"
    n = 1
    while folder.exists():
        n += 1
        folder = base / f"{stamp}-{label}-{n}"
    folder.mkdir(parents=True)
    return folder


SERVICE_PROCESSES = ("nginx", "gateway-1", "gateway-2", "users", "timeline", "fanout",
                     "users-relay", "timeline-relay", "timeline-authors")
STORE_PROCESSES = ("postgres", "redis", "kafka", "cassandra", "toxiproxy")


def local_groups(profile: str) -> dict[str, list[int]]:
    """The supervised processes of the local stack, by group (empty when not local): read
    from `stackctl status` run by the platform's own Python (it has supervisor)."""
    python = Path(config.env("MURMUR_VENV", str(REPO / ".venv"))) / "bin" / "python"
    try:
        out = subprocess.run([str(python), str(REPO / "local/stackctl"), "--profile",
                              profile, "status"], cwd=REPO, capture_output=True, text=True,
                             timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    pids = {}
    for line in out.splitlines()[1:]:
        fields = line.split()
        if len(fields) == 4 and fields[1] == "up" and fields[3].isdigit():
            pids[fields[0]] = int(fields[3])
    prefix = "" if profile == "dev" else f"{profile}-"
    groups = {"murmur_services": [pids.get(prefix + n) for n in SERVICE_PROCESSES],
              "stores": [pids.get(n) for n in STORE_PROCESSES]}
    return {g: [p for p in found if p] for g, found in groups.items() if any(found)}


class CpuMeter:
    """CPU seconds used over a run: by the load generator's process tree, by each group of
    the local stack's processes (when the target is the local stack), and by the whole
    machine; whatever is left is other tenants of the machine.

    Samples every second and keeps each process's last reading, so a process that exits
    before the end (a Locust worker, a gunicorn worker) still counts.
    """

    def __init__(self, pid: int, groups: dict[str, list[int]] | None = None) -> None:
        import psutil

        self.psutil = psutil
        self.roots = {"loadgen": [pid], **(groups or {})}
        self.start: dict[int, float] = {}  # the stack's processes: CPU already used
        self.used: dict[str, dict[int, float]] = {g: {} for g in self.roots}
        for group, pids in self.roots.items():
            if group != "loadgen":
                for proc in self._tree(pids):
                    self.start[proc.pid] = self._cpu(proc) or 0.0
        self.start_machine = psutil.cpu_times()
        self.started = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _tree(self, pids: list[int]):
        procs = []
        for pid in pids:
            try:
                root = self.psutil.Process(pid)
                procs += [root, *root.children(recursive=True)]
            except self.psutil.Error:
                continue
        return procs

    def _cpu(self, proc) -> float | None:
        try:
            t = proc.cpu_times()
            return t.user + t.system
        except self.psutil.Error:
            return None

    def _sample(self) -> None:
        for group, pids in self.roots.items():
            for proc in self._tree(pids):
                cpu = self._cpu(proc)
                if cpu is not None:
                    self.used[group][proc.pid] = cpu - self.start.get(proc.pid, 0.0)

    def _loop(self) -> None:
        while not self._stop.wait(1.0):
            self._sample()

    def stop(self) -> dict[str, object]:
        self._sample()
        self._stop.set()
        elapsed = time.monotonic() - self.started
        end = self.psutil.cpu_times()
        busy = sum(getattr(end, f) - getattr(self.start_machine, f) for f in end._fields
                   if f not in ("idle", "iowait", "guest", "guest_nice"))
        cpus = self.psutil.cpu_count() or 1
        seconds = {g: round(sum(used.values()), 1) for g, used in self.used.items()}
        loadgen = seconds["loadgen"]
        result: dict[str, object] = {
            "elapsed_s": round(elapsed, 1), "cpus": cpus,
            "loadgen_cpu_s": loadgen, "machine_busy_cpu_s": round(busy, 1),
            "loadgen_share_of_machine": round(loadgen / (elapsed * cpus), 4) if elapsed else 0,
            "loadgen_share_of_busy": round(loadgen / busy, 4) if busy else 0,
            "machine_busy_share": round(busy / (elapsed * cpus), 4) if elapsed else 0,
        }
        if len(seconds) > 1:
            result["cpu_s_by_group"] = {**seconds, "other_tenants": round(
                max(0.0, busy - sum(seconds.values())), 1)}
        return result


def add_slo_to_report(report: Path, slo_text: str) -> None:
    """Put the SLO table at the top of Locust's HTML report."""
    if not report.exists() or not slo_text:
        return
    page = report.read_text(encoding="utf-8")
    block = ('<pre id="murmur-slo" style="margin:1em;padding:1em;background:#f4f4f4;'
             'color:#111;font-size:13px;overflow:auto">' + html.escape(slo_text) + "</pre>")
    # The real body tag: the first one after </head> (the inline scripts contain the text).
    marker = page.find("<body", max(0, page.find("</head>")))
    if marker < 0 or 'id="murmur-slo"' in page:
        return
    end = page.index(">", marker) + 1
    report.write_text(page[:end] + block + page[end:], encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    shape = args.shape or ("" if args.ui else "steady")
    if shape and shape not in shapes.SHAPES:
        print(f"unknown SHAPE {shape!r}: choose one of {', '.join(shapes.SHAPES)}", file=sys.stderr)
        return 2
    target = base_url(args)
    manifest_path = Path(args.manifest or config.murmur_home() / "seed" / f"{args.profile}.json")
    try:
        manifest = workload.load_manifest(manifest_path)
        slo.load(args.slo)
    except (workload.ManifestError, slo.SLOFileError) as exc:
        hint = f" (PROFILE={args.profile})" if not args.manifest else ""
        print(f"load: {exc}{hint}", file=sys.stderr)
        return 2
    problem = check_target(target, manifest, args.profile)
    if problem:
        print(f"load: {problem}", file=sys.stderr)
        return 2

    users, spawn_rate, duration = DEFAULTS[shape or "steady"]
    users = args.users or users
    spawn_rate = args.spawn_rate or spawn_rate
    duration = args.duration or duration
    folder = run_folder(Path(args.out), shape or "ui")
    workers = max(1, args.workers)
    env = {**os.environ, "PYTHONPATH": str(REPO), "MURMUR_LOAD_SHAPE": shape,
           "MURMUR_LOAD_USERS": str(users), "MURMUR_LOAD_SPAWN_RATE": str(spawn_rate),
           "MURMUR_LOAD_DURATION": duration, "MURMUR_LOAD_SLO": str(Path(args.slo).resolve()),
           "MURMUR_LOAD_MANIFEST": str(manifest_path.resolve()),
           "MURMUR_LOAD_RUN_DIR": str(folder),
           # nginx allows MURMUR_SIGNIN_RATE_LIMIT sign-ins/s per address (10 by default):
           # all processes together stay below it.
           "MURMUR_LOAD_SIGNIN_RATE": str(float(os.environ.get("MURMUR_LOAD_SIGNIN_RATE", 8))
                                          / workers)}
    if args.step_users:
        env["MURMUR_LOAD_STEP_USERS"] = str(args.step_users)
    if args.step_time:
        env["MURMUR_LOAD_STEP_TIME"] = args.step_time
    if args.warmup:
        env["MURMUR_LOAD_WARMUP"] = args.warmup
    if args.think is not None:
        env["MURMUR_LOAD_THINK"] = str(args.think)
    if args.page:
        env["MURMUR_LOAD_PAGE"] = str(args.page)
    if args.tour:
        env["MURMUR_LOAD_TOUR"] = "1"
    cmd = [sys.executable, "-m", "locust", "-f", str(REPO / "loadtests/locustfile.py"),
           "--host", target, "--csv", str(folder / "locust"), "--csv-full-history",
           "--html", str(folder / "report.html"), "--logfile", str(folder / "locust.log"),
           "--users", str(users), "--spawn-rate", str(spawn_rate)]
    if workers > 1:
        port = free_port()
        cmd += ["--processes", str(workers), "--master-bind-port", str(port),
                "--master-port", str(port)]
    if args.ui:
        cmd += ["--web-host", "127.0.0.1", "--web-port", str(args.ui_port)]
        print(f"Locust web UI: http://127.0.0.1:{args.ui_port}  (target {target}; "
              "Ctrl-C ends the run and writes the report)", flush=True)
    else:
        cmd += ["--headless", "--only-summary"]
        if not shape:
            cmd += ["--run-time", duration]

    plan_text = "the web UI decides users and rate"
    if shape:
        plan = shapes.build(shape, judge=lambda _w: [], users=users, spawn_rate=spawn_rate,
                            duration=shapes.parse_seconds(duration) if duration else None,
                            step_users=args.step_users, step_time=(
                                shapes.parse_seconds(args.step_time) if args.step_time else None),
                            warmup=shapes.parse_seconds(args.warmup) if args.warmup else None)
        plan_text = plan.describe()
    params = {
        "target": target, "shape": shape or "ui", "plan": plan_text, "users": users,
        "spawn_rate": spawn_rate, "duration": duration if shape != "ramp" else None,
        "step_users": args.step_users, "step_time": args.step_time or None,
        "warmup": args.warmup or None,
        "workers": workers, "think_s": float(env.get("MURMUR_LOAD_THINK", 1.0)),
        "page": int(env.get("MURMUR_LOAD_PAGE", 20)), "tour": args.tour,
        "slo_file": os.path.relpath(Path(args.slo).resolve(), REPO),
        "manifest": os.path.relpath(manifest_path.resolve(), REPO),
        "manifest_seeded_at": json.loads(manifest_path.read_text()).get("seeded_at"),
        "git_revision": git_revision(), "locust": _locust_version(),
        "python": platform.python_version(),
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": " ".join(cmd[1:]),
    }
    (folder / "params.json").write_text(json.dumps(params, indent=2) + "\n")
    print(f"load: {plan_text} against {target} ({workers} process"
          f"{'es' if workers > 1 else ''}); report folder {folder}", flush=True)

    proc = subprocess.Popen(cmd, cwd=REPO, env=env)
    local = target == base_url(argparse.Namespace(target="", profile=args.profile))
    meter = CpuMeter(proc.pid, local_groups(args.profile) if local else None)
    try:
        code = proc.wait()
    except KeyboardInterrupt:
        code = proc.wait()
    cpu = meter.stop()
    (folder / "cpu.json").write_text(json.dumps(cpu, indent=2) + "\n")
    slo_file = folder / "slo.txt"
    add_slo_to_report(folder / "report.html", slo_file.read_text() if slo_file.exists() else "")
    if slo_file.exists():
        print("\n" + slo_file.read_text())
    print(f"load generator CPU: {cpu['loadgen_cpu_s']}s over {cpu['elapsed_s']}s = "
          f"{cpu['loadgen_share_of_machine']:.1%} of the machine's {cpu['cpus']} cores, "
          f"{cpu['loadgen_share_of_busy']:.1%} of all CPU used meanwhile")
    if "cpu_s_by_group" in cpu:
        print("CPU seconds by group: " + ", ".join(
            f"{g} {v}" for g, v in cpu["cpu_s_by_group"].items()))
    print(f"HTML report: {folder / 'report.html'}")
    print(f"exit status {code}" + (" (an SLO was breached or the run failed)" if code else ""))
    print(folder)
    return code


def _locust_version() -> str:
    try:
        from importlib.metadata import version

        return version("locust")
    except Exception:  # noqa: BLE001
        return "unknown"


if __name__ == "__main__":
    sys.exit(main())
