"""Background Locust load (the load tests' own workload and SLO judge) during a fault.

`start_load` runs `loadtests/run.py` (Locust, headless, steady shape) against the target
from the load tests' virtual environment, judged by an SLO file of the experiment's
choosing from `chaos/slo/`; `stop_load` ends it the way Ctrl-C does, so Locust writes its
CSV files, its report and the SLO verdict; `load_met_slo` is that verdict, as a probe of
the steady-state hypothesis.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from murmur_chaos import context
from murmur_chaos.context import Deviation

REPO = Path(__file__).resolve().parents[2]
LOAD_PYTHON = REPO / os.environ.get("LOAD_VENV", ".venv-load") / "bin/python"


def start_load(users: int = 10, think: float = 1.0, slo: str = "chaos/slo/no-failure.toml",
               warm_up: float = 5, configuration: dict | None = None) -> dict[str, Any]:
    """Action: start `users` Locust users (mean `think` s between actions) and return once
    they have made requests for `warm_up` seconds."""
    run = context.current(configuration)
    folder = run.folder / "load"
    folder.mkdir(exist_ok=True)
    cmd = [str(LOAD_PYTHON), "-m", "loadtests.run", "--profile", run.profile,
           "--shape", "steady", "--users", str(users), "--spawn-rate", str(users),
           "--duration", "30m", "--warmup", "0", "--think", str(think),
           "--slo", str(REPO / slo), "--out", str(folder)]
    if not run.local:
        cmd += ["--target", run.api.removesuffix("/api/v1")]
        manifest = os.environ.get("MURMUR_CHAOS_LOAD_MANIFEST", "")
        if manifest:
            cmd += ["--manifest", manifest]
    out = (run.folder / "load.out").open("w")
    # Its own session: Ctrl-C's SIGINT goes to run.py and Locust together.
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
                            start_new_session=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    context.update_state(run, load={"pid": proc.pid, "started_at": time.time(),
                                    "slo": slo, "users": users})
    end = time.monotonic() + 60
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"the load stopped at once (exit {proc.returncode}): "
                               + (run.folder / "load.out").read_text()[-1500:])
        history = _history_file(run)
        if history and _requests_so_far(history) > 0:
            time.sleep(warm_up)
            return {"pid": proc.pid, "folder": str(history.parent)}
        time.sleep(0.5)
    raise RuntimeError("the load made no request within 60 s")


def _history_file(run: context.Run) -> Path | None:
    found = sorted((run.folder / "load").glob("*/locust_stats_history.csv"))
    return found[-1] if found else None


def _requests_so_far(history: Path) -> int:
    try:
        rows = [r for r in csv.DictReader(history.open()) if r["Name"] == "Aggregated"]
    except (OSError, KeyError, csv.Error):
        return 0
    return int(rows[-1]["Total Request Count"]) if rows else 0


def stop_load(configuration: dict | None = None) -> dict[str, Any]:
    """Action: end the load as Ctrl-C does and keep its verdict and figures."""
    run = context.current(configuration)
    load = context.state(run).get("load")
    if not load:
        return {"load": "none was started"}
    try:
        os.killpg(load["pid"], signal.SIGINT)
    except ProcessLookupError:
        pass
    end = time.monotonic() + 90
    while time.monotonic() < end and _alive(load["pid"]):
        time.sleep(0.2)
    history = _history_file(run)
    summary = history.parent / "slo.json" if history else None
    if not summary or not summary.exists():
        raise RuntimeError("the load wrote no SLO verdict: "
                           + (run.folder / "load.out").read_text()[-1500:])
    verdict = json.loads(summary.read_text())
    # HTTP routes only: freshness measurements are Locust entries of their own type.
    routes = [r for name, r in verdict["routes"].items() if not name.startswith("FRESHNESS")]
    figures = {"requests": sum(r["requests"] for r in routes),
               "requests_failed": sum(r["failures"] for r in routes),
               "requests_unavailable": sum(r["unavailable"] for r in routes),
               "requests_throttled": sum(r["throttled"] for r in routes),
               "load_slo_met": verdict["passed"]}
    context.set_figures(run, **figures)
    context.update_state(run, load={**load, "stopped_at": time.time(),
                                    "folder": str(history.parent)})
    return figures


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (our own child, not yet reaped) has finished
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def load_met_slo(configuration: dict | None = None) -> bool:
    """Probe: the background load met its SLO file (true before any load ran)."""
    run = context.current(configuration)
    load = context.state(run).get("load")
    if not load or "folder" not in load:
        return True
    verdict = json.loads((Path(load["folder"]) / "slo.json").read_text())
    if not verdict["passed"]:
        breaches = [f"{r['objective']} = {r['measured']}" for r in verdict["results"]
                    if r["verdict"] in ("FAIL", "NO DATA")]
        raise Deviation(f"the load breached {load['slo']}: {'; '.join(breaches)}")
    return True
