"""The run's readable report: the verdict table, then each experiment's hypothesis,
probes, figures and a latency-over-time plot with the fault's start and end marked."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]


def _marks(folder: Path) -> list[dict[str, Any]]:
    path = folder / "marks.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _history(folder: Path) -> list[dict[str, str]]:
    found = sorted((folder / "load").glob("*/locust_stats_history.csv"))
    if not found:
        return []
    with found[-1].open() as rows:
        return [r for r in csv.DictReader(rows) if r.get("Name") == "Aggregated"]


def plot(folder: Path, title: str) -> Path | None:
    """latency.png: the load's p50 and p95 (and failures/s) over time, the fault shaded."""
    rows = _history(folder)
    if len(rows) < 2:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t0 = int(rows[0]["Timestamp"])
    t = [int(r["Timestamp"]) - t0 for r in rows]

    def series(column: str) -> list[float]:
        return [float(r[column]) if r[column] not in ("", "N/A") else float("nan") for r in rows]

    fig, ax = plt.subplots(figsize=(8, 3.2), dpi=100)
    ax.plot(t, series("50%"), label="p50 ms", linewidth=1.2)
    ax.plot(t, series("95%"), label="p95 ms", linewidth=1.2)
    ax.set_xlabel("seconds since the load started")
    ax.set_ylabel("latency (ms)")
    ax.set_yscale("symlog", linthresh=10)
    failures = ax.twinx()
    failures.plot(t, series("Failures/s"), color="tab:red", linewidth=0.8, label="failures/s")
    failures.set_ylabel("failures/s", color="tab:red")
    marks = {m["mark"]: m["t"] - t0 for m in _marks(folder)}
    if "fault started" in marks:
        ax.axvspan(marks["fault started"], marks.get("fault ended", t[-1]), color="tab:orange",
                   alpha=0.2, label="fault")
    if "steady again" in marks:
        ax.axvline(marks["steady again"], color="tab:green", linestyle="--",
                   label="steady again")
    ax.set_title(title, fontsize=9)
    handles = ax.get_legend_handles_labels()
    extra = failures.get_legend_handles_labels()
    ax.legend(handles[0] + extra[0], handles[1] + extra[1], fontsize=7, loc="upper left")
    fig.tight_layout()
    out = folder / "latency.png"
    fig.savefig(out)
    plt.close(fig)
    return out


def _probe_lines(journal: dict[str, Any]) -> list[str]:
    lines = ["| when | probe | tolerance met |", "|---|---|---|"]
    for when in ("before", "after"):
        for probe in ((journal.get("steady_states") or {}).get(when) or {}).get("probes", []):
            met = probe.get("tolerance_met")
            why = ""
            if not met:
                why = (probe.get("exception") or [""])[-1].strip().split("Deviation: ", 1)[-1]
            lines.append(f"| {when} | {probe['activity']['name']} | "
                         f"{'yes' if met else 'NO: ' + why.replace('|', '/')} |")
    return lines


def write_report(folder: Path, outcomes: list, table: str, wall: float, args: Any) -> Path:
    """report.md in the run's folder."""
    lines = [f"# Chaos run: {len(outcomes)} experiment(s), target {args.target}"
             + (f", safeguard `{args.broken}` off on purpose" if args.broken else ""), "",
             f"Wall time {wall:.0f} s.", "", "```", table, "```", ""]
    for o in outcomes:
        experiment = yaml.safe_load((REPO / "chaos/experiments" / f"{o.name}.yaml").read_text())
        journal = {}
        try:
            journal = json.loads((o.folder / "journal.json").read_text())
        except (OSError, ValueError):
            pass
        lines += [f"## {o.name}: {o.verdict}", "", f"**{experiment['title']}**", "",
                  experiment.get("description", "").strip(), ""]
        image = plot(o.folder, f"{o.name}: {o.verdict}")
        if image:
            lines += [f"![latency over time]({image.relative_to(folder)})", ""]
        lines += _probe_lines(journal) + [""]
        if o.figures:
            lines += ["Figures: " + ", ".join(f"{k} {v}" for k, v in sorted(o.figures.items())),
                      ""]
    out = folder / "report.md"
    out.write_text("\n".join(lines) + "\n")
    return out
