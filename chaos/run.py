"""Run Murmur's chaos experiments with Chaos Toolkit and print one verdict table.

    python chaos/run.py [--target local|k8s] [--profile dev|test] [--experiment NAME ...]
                        [--break SAFEGUARD] [--out FOLDER] [--list]

Each experiment in `chaos/experiments/` tagged for the target runs in turn (`chaos run`,
its journal kept), each starting from a verified steady state (the hypothesis is checked
before the method). The run's folder, `var/chaos/runs/<time>/` by default, gets one
folder per experiment (journal, Chaos Toolkit's log, the ledger, marks, observations, the
background load's Locust report) and `report.md`: the verdict table, then per experiment
its hypothesis, probes, figures and a latency-over-time plot with the fault marked.

`--break SAFEGUARD` turns one safeguard off for the run, on purpose, to show that the
experiment guarding it deviates: `home-fallback` (home timelines without Redis are not
rebuilt), `breakers` (no circuit breaker ever opens), `outbox-relay` (the timeline's relay
is stopped, so the outbox is never published). The safeguard is restored afterwards.
The exit status is 0 only if every experiment's hypothesis held.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "services"), str(REPO / "chaos"), str(REPO / "local")]

from common import config  # noqa: E402

EXPERIMENTS = REPO / "chaos/experiments"
TAG = {"local": "local", "k8s": "kubernetes"}
# How each switch breaks its safeguard, and which experiment is expected to catch it.
BREAKS = {
    "home-fallback": ("settings", "redis-stopped"),
    "breakers": ("settings", "cassandra-latency"),
    "outbox-relay": ("stop:timeline-relay", "kafka-stopped"),
}


@dataclass
class Outcome:
    """What one experiment's journal and records say."""

    name: str
    title: str
    verdict: str  # held | deviated | failed (not steady at start, or the run broke)
    figures: dict[str, Any] = field(default_factory=dict)
    deviations: list[str] = field(default_factory=list)
    seconds: float = 0.0
    folder: Path = Path()

    def row(self) -> list[str]:
        f = self.figures
        recovery = f.get("recovery_s")
        failed = "-"
        if "requests" in f:  # errors; honest refusals (503 + Retry-After, 429) apart
            refused = f["requests_unavailable"] + f["requests_throttled"]
            errors = f["requests_failed"] - refused
            failed = f"{errors}/{f['requests']}" + (f" (+{refused} 503)" if refused else "")
        return [self.name, self.verdict,
                f"{recovery:.1f}" if isinstance(recovery, (int, float)) else "-", failed,
                str(f.get("tweets_lost", "-")), str(f.get("tweets_duplicated", "-")),
                f"{self.seconds:.0f}"]


HEADER = ["experiment", "hypothesis", "recovery s", "requests failed", "lost", "duplicated",
          "took s"]


def table(outcomes: list[Outcome]) -> str:
    rows = [HEADER] + [o.row() for o in outcomes]
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADER))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    for o in outcomes:
        for why in o.deviations:
            lines.append(f"  {o.name}: {why}")
    return "\n".join(lines)


def experiments(target: str, names: list[str]) -> list[Path]:
    """The experiment files for `target`, all of them or those named, in file order."""
    found = sorted(EXPERIMENTS.glob("*.yaml"))
    tagged = [p for p in found if TAG[target] in (yaml.safe_load(p.read_text()).get("tags") or [])]
    if not names:
        return tagged
    by_name = {p.stem: p for p in found}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        sys.exit(f"unknown experiment(s) {unknown}; one of: {', '.join(p.stem for p in tagged)}")
    return [by_name[n] for n in names]


def journal_outcome(path: Path, folder: Path, seconds: float) -> Outcome:
    """Read a journal: the verdict, and which probe deviated and why."""
    experiment = yaml.safe_load(path.read_text())
    name = path.stem
    figures = _json(folder / "figures.json", {})
    journal = _json(folder / "journal.json", None)
    if journal is None:
        return Outcome(name, experiment["title"], "failed", figures,
                       ["no journal: Chaos Toolkit did not run (see chaostoolkit.log)"],
                       seconds, folder)
    states = journal.get("steady_states") or {}
    reasons = []
    for when in ("before", "after"):
        for probe in (states.get(when) or {}).get("probes", []):
            if not probe.get("tolerance_met", True):
                why = (probe.get("exception") or [""])[-1].strip() or repr(probe.get("output"))
                why = why.split("Deviation: ", 1)[-1]
                reasons.append(f"[{when}] {probe['activity']['name']}: {why}")
    if journal.get("deviated"):
        verdict = "deviated"
    elif journal.get("status") == "completed":
        verdict = "held"
    else:
        verdict = "failed"
        if not reasons:
            failed = [r for r in journal.get("run", []) if r.get("status") == "failed"]
            reasons = [f"{r['activity']['name']}: {(r.get('exception') or [''])[-1].strip()}"
                       for r in failed[:2]] or [f"status {journal.get('status')}"]
    return Outcome(name, experiment["title"], verdict, figures, reasons, seconds, folder)


def _json(path: Path, default: Any) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return default


def ensure_manifest(profile: str) -> None:
    """The background load signs in seeded accounts: seed a small graph if there is none."""
    from murmur_chaos import load as _  # noqa: F401  (fails early if the module is broken)

    manifest = config.murmur_home() / "seed" / f"{profile}.json"
    if manifest.exists():
        return
    print(f"chaos: no seed manifest for the {profile} profile; seeding a small graph for the "
          "background load", flush=True)
    subprocess.run([sys.executable, str(REPO / "local/seed.py"), "--users", "400", "--tweets",
                    "3", "--celebrities", "2", "--mean-following", "5"], cwd=REPO, check=True,
                   env={**os.environ, "MURMUR_PROFILE": profile})


def break_safeguard(name: str, profile: str, folder: Path) -> None:
    from murmur_chaos import context, platform

    how, _ = BREAKS[name]
    run = context.Run(folder, "local", profile, "")
    if how == "settings":
        platform.apply_settings({"MURMUR_DISABLE_SAFEGUARDS": name},
                                configuration={"murmur_run_dir": str(folder),
                                               "murmur_profile": profile})
    else:
        platform._stackctl(run, "stop", run.service_name(how.split(":", 1)[1]))


def restore_safeguard(name: str, profile: str, folder: Path) -> None:
    from murmur_chaos import context, platform

    how, _ = BREAKS[name]
    run = context.Run(folder, "local", profile, "")
    if how == "settings":
        platform.restore_settings(configuration={"murmur_run_dir": str(folder),
                                                 "murmur_profile": profile})
    else:
        platform._stackctl(run, "start", run.service_name(how.split(":", 1)[1]))


def wait_for_steady_state(folder: Path, env: dict[str, str], deadline: float = 90) -> str:
    """Poll the steady state until it holds, so each experiment starts from one and not
    from the tail of the one before; '' when it held, else why not."""
    from murmur_chaos import context, steady

    run = context.current({"murmur_run_dir": str(folder), "murmur_profile": env["MURMUR_PROFILE"],
                           "murmur_api": env.get("MURMUR_CHAOS_API", ""),
                           "murmur_target": env["MURMUR_CHAOS_TARGET"]})
    end, why = time.monotonic() + deadline, ""
    while time.monotonic() < end:
        try:
            why = steady._unsteady(run, 6, 1000)
        except Exception as exc:  # noqa: BLE001 - keep polling; report the last reason
            why = f"{type(exc).__name__}: {exc}"
        if not why:
            return ""
        time.sleep(0.5)
    return why


def run_one(path: Path, folder: Path, env: dict[str, str]) -> Outcome:
    folder.mkdir(parents=True, exist_ok=True)
    waited = time.monotonic()
    unsteady = wait_for_steady_state(folder.parent / ".steady", env)
    if unsteady:
        return Outcome(path.stem, path.stem, "failed", {},
                       [f"not steady before the experiment (90 s): {unsteady}"],
                       time.monotonic() - waited, folder)
    started = time.monotonic()
    chaos = Path(sys.executable).parent / "chaos"
    with (folder / "chaos.out").open("w") as out:
        # Rollbacks always: by default Chaos Toolkit skips them when the hypothesis
        # deviated, which is exactly when a fault may still be in place.
        subprocess.run([str(chaos), "--log-file", str(folder / "chaostoolkit.log"), "run",
                        "--rollback-strategy", "always",
                        "--journal-path", str(folder / "journal.json"), str(path)],
                       cwd=REPO, env={**env, "MURMUR_CHAOS_RUN_DIR": str(folder)},
                       stdout=out, stderr=subprocess.STDOUT)
    return journal_outcome(path, folder, time.monotonic() - started)


def k8s_api() -> str:
    done = subprocess.run(["make", "-s", "--no-print-directory", "k8s-url"], cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    if done.returncode != 0 or not done.stdout.strip():
        sys.exit("chaos: no Kubernetes deployment answers (`make cluster deploy` first): "
                 + done.stderr[-500:])
    return done.stdout.strip().splitlines()[-1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", choices=sorted(TAG), default="local")
    parser.add_argument("--profile", default=config.env("MURMUR_PROFILE", "dev"),
                        choices=sorted(config.PROFILES))
    parser.add_argument("--experiment", action="append", default=[],
                        help="run only this one (repeatable, or comma-separated)")
    parser.add_argument("--break", dest="broken", choices=sorted(BREAKS),
                        help="turn this safeguard off for the run, on purpose")
    parser.add_argument("--out", default="", help="the run's folder")
    parser.add_argument("--list", action="store_true", help="list the experiments and stop")
    args = parser.parse_args(argv)
    names = [n for item in args.experiment for n in item.split(",") if n]
    chosen = experiments(args.target, names)
    if args.list:
        for path in chosen:
            doc = yaml.safe_load(path.read_text())
            print(f"{path.stem:<34} {doc['title']}")
        return 0
    if args.broken and args.target != "local":
        sys.exit("chaos: --break switches the local platform's safeguards only")
    folder = Path(args.out) if args.out else (
        config.murmur_home() / "chaos" / "runs" /
        (time.strftime("%Y%m%d-%H%M%S") + (f"-{args.target}" if args.target != "local" else "")
         + (f"-break-{args.broken}" if args.broken else "")))
    folder.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "MURMUR_PROFILE": args.profile, "MURMUR_CHAOS_TARGET": args.target,
           "PYTHONPATH": os.pathsep.join([str(REPO / "chaos"), str(REPO / "services")])}
    if args.target == "k8s":
        # The local cluster's kubeconfig unless one is set, as mk/k8s.mk does: chaosk8s
        # and murmur_chaos.kube reach the API server with it (here too: steady-state checks).
        if "KUBECONFIG" not in env and (REPO / "var/k8s/kubeconfig").exists():
            env["KUBECONFIG"] = os.environ["KUBECONFIG"] = str(REPO / "var/k8s/kubeconfig")
        env["MURMUR_CHAOS_API"] = k8s_api()
        manifest = Path(env.setdefault("MURMUR_CHAOS_LOAD_MANIFEST",
                                       str(config.murmur_home() / "seed/k8s.json")))
        # The background load signs in the manifest's accounts: seed this deployment when
        # there is no manifest, or its accounts are not here (a new install since).
        import requests

        first = (_json(manifest, {}).get("accounts") or [{}])[0].get("username")
        if not first or requests.get(f"{env['MURMUR_CHAOS_API']}/users/{first}",
                                     timeout=10).status_code != 200:
            print(f"chaos: no seed manifest for this deployment; seeding a small graph "
                  f"(make seed-k8s USERS=300) into {manifest}", flush=True)
            subprocess.run(["make", "-s", "--no-print-directory", "seed-k8s", "USERS=300",
                            f"K8S_MANIFEST={manifest}"], cwd=REPO, env=env, check=True)
    else:
        ensure_manifest(args.profile)
    print(f"chaos: {len(chosen)} experiment(s) against the {args.target} target"
          + (f" ({args.profile} profile)" if args.target == "local" else "")
          + (f", safeguard '{args.broken}' OFF on purpose" if args.broken else "")
          + f"; run folder {folder}", flush=True)
    t0 = time.monotonic()
    outcomes = []
    if args.broken:
        break_safeguard(args.broken, args.profile, folder)
    try:
        for n, path in enumerate(chosen, 1):
            print(f"[{n}/{len(chosen)}] {path.stem} ...", end=" ", flush=True)
            outcome = run_one(path, folder / path.stem, env)
            outcomes.append(outcome)
            print(f"{outcome.verdict} in {outcome.seconds:.0f}s", flush=True)
    finally:
        if args.broken:
            restore_safeguard(args.broken, args.profile, folder)
    wall = time.monotonic() - t0
    text = table(outcomes)
    print("\n" + text + f"\n\n{len(outcomes)} experiment(s) in {wall:.0f}s")
    from report import write_report

    write_report(folder, outcomes, text, wall, args)
    (folder / "summary.json").write_text(json.dumps({
        "target": args.target, "profile": args.profile, "broken": args.broken,
        "seconds": round(wall, 1),
        "experiments": [{"name": o.name, "verdict": o.verdict, "figures": o.figures,
                         "deviations": o.deviations, "seconds": round(o.seconds, 1)}
                        for o in outcomes]}, indent=2) + "\n")
    print(f"report: {folder / 'report.md'}")
    print(folder)
    return 0 if outcomes and all(o.verdict == "held" for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
