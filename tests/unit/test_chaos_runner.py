"""The chaos runner's reading of Chaos Toolkit journals: verdicts and the reasons given."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from conftest import REPO

sys.path.insert(0, str(REPO / "chaos"))
import run as runner  # noqa: E402  (chaos/run.py)


def probe(name: str, met: bool, why: str = "") -> dict:
    entry = {"activity": {"name": name}, "tolerance_met": met, "status": "succeeded"}
    if why:
        entry.update(status="failed", exception=["Traceback ...\n",
                                                 f"murmur_chaos.context.Deviation: {why}\n"])
    return entry


def journal(folder: Path, status: str, deviated: bool, before: list, after: list) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "journal.json").write_text(json.dumps({
        "status": status, "deviated": deviated, "run": [],
        "steady_states": {"before": {"probes": before}, "after": {"probes": after}}}))
    (folder / "figures.json").write_text(json.dumps({
        "recovery_s": 2.5, "requests": 100, "requests_failed": 3, "requests_unavailable": 3,
        "requests_throttled": 0, "tweets_lost": 0, "tweets_duplicated": 0}))


@pytest.fixture()
def experiment() -> Path:
    return REPO / "chaos/experiments/redis-stopped.yaml"


def test_a_completed_journal_is_a_hypothesis_that_held(tmp_path, experiment):
    journal(tmp_path, "completed", False, [probe("steady", True)], [probe("steady", True)])
    outcome = runner.journal_outcome(experiment, tmp_path, 12.0)
    assert (outcome.verdict, outcome.deviations) == ("held", [])
    assert outcome.row()[:7] == ["redis-stopped", "held", "2.5", "0/100 (+3 503)", "0", "0",
                                 "12"]


def test_a_deviated_journal_names_the_probe_and_its_reason(tmp_path, experiment):
    journal(tmp_path, "completed", True, [probe("steady", True)],
            [probe("steady", True), probe("ledger", False, "3 deliveries missing")])
    outcome = runner.journal_outcome(experiment, tmp_path, 1.0)
    assert outcome.verdict == "deviated"
    assert outcome.deviations == ["[after] ledger: 3 deliveries missing"]
    assert "redis-stopped: [after] ledger: 3 deliveries missing" in runner.table([outcome])


def test_a_journal_not_steady_before_the_method_is_a_failed_run(tmp_path, experiment):
    journal(tmp_path, "failed", False, [probe("steady", False, "breakers open")], [])
    outcome = runner.journal_outcome(experiment, tmp_path, 1.0)
    assert outcome.verdict == "failed"
    assert outcome.deviations == ["[before] steady: breakers open"]


def test_no_journal_is_a_failed_run_that_says_so(tmp_path, experiment):
    outcome = runner.journal_outcome(experiment, tmp_path, 1.0)
    assert outcome.verdict == "failed" and "no journal" in outcome.deviations[0]


def test_every_safeguard_switch_names_an_experiment_that_exists():
    names = {p.stem for p in (REPO / "chaos/experiments").glob("*.yaml")}
    assert {experiment for _, experiment in runner.BREAKS.values()} <= names
