"""The chaos experiments are the fault layer: each runs here, under load, as `make chaos`
runs it, and its verdict and figures are asserted.

Every scenario is defined once, in `chaos/experiments/<name>.yaml` (hypothesis, fault,
probes); this module only runs them against the test profile and checks what they
measured: the hypothesis held, no acknowledged tweet was lost or delivered twice, the
background load saw no error (503 with Retry-After, an honest refusal, is counted apart),
and the system was steady again within the 10 s of DESIGN section 9.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import REPO

EXPERIMENTS = sorted(p.stem for p in (REPO / "chaos/experiments").glob("*.yaml")
                     if "local" in (yaml.safe_load(p.read_text()).get("tags") or []))
RECOVERY_TARGET = 10.0  # seconds (DESIGN section 9)
# Experiments whose fault the edge must hide completely: not even a 503.
NOTHING_REFUSED = {"gateway-killed", "fanout-killed-mid-fanout", "fanout-redis-reset",
                   "kafka-stopped"}


def run_chaos(tmp_path: Path, *args: str, timeout: float = 900) -> dict:
    """`chaos/run.py` for the test profile, as `make chaos PROFILE=test` runs it; the run's
    summary.json (asserting the runner produced one)."""
    out = tmp_path / "chaos-run"
    done = subprocess.run([sys.executable, str(REPO / "chaos/run.py"), "--profile", "test",
                           "--out", str(out), *args], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout)
    print(done.stdout[-3000:])
    summary = out / "summary.json"
    assert summary.exists(), f"no summary (exit {done.returncode}):\n{done.stdout[-3000:]}" \
                             f"\n{done.stderr[-3000:]}"
    assert (out / "report.md").exists(), "the run wrote no report"
    return json.loads(summary.read_text())


def test_every_local_experiment_is_tagged_and_states_its_hypothesis():
    assert len(EXPERIMENTS) >= 9, EXPERIMENTS
    for name in EXPERIMENTS:
        doc = yaml.safe_load((REPO / f"chaos/experiments/{name}.yaml").read_text())
        assert doc["description"].startswith("Hypothesis:"), name
        assert doc["steady-state-hypothesis"]["probes"], name
        assert doc["rollbacks"], f"{name} must undo its fault in rollbacks"


@pytest.mark.timeout(900)
@pytest.mark.parametrize("name", EXPERIMENTS)
def test_the_experiment_holds_under_load(name, tmp_path):
    """The hypothesis of chaos/experiments/<name>.yaml held, with its figures in bounds."""
    [outcome] = run_chaos(tmp_path, "--experiment", name)["experiments"]
    figures = outcome["figures"]
    assert outcome["verdict"] == "held", outcome["deviations"]
    assert figures.get("tweets_lost", 0) == 0 and figures.get("tweets_duplicated", 0) == 0
    assert figures["recovery_s"] <= RECOVERY_TARGET
    assert figures["requests"] > 0, "the background load made no request"
    errors = figures["requests_failed"] - figures["requests_unavailable"] \
        - figures["requests_throttled"]
    assert errors == 0, figures
    if name in NOTHING_REFUSED:
        assert figures["requests_failed"] == 0, figures
