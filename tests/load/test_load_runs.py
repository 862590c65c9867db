"""`make load` end to end: reports, every route of the mix, freshness, SLO gates."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import pytest

from conftest import REPO
from load._runs import load

sys.path.insert(0, str(REPO))

from loadtests import workload  # noqa: E402

HERE = Path(__file__).resolve().parent


def stats_rows(folder: Path) -> dict[str, dict[str, str]]:
    """locust_stats.csv by "<Type> <Name>"."""
    with open(folder / "locust_stats.csv", newline="") as f:
        return {f"{row['Type']} {row['Name']}": row for row in csv.DictReader(f)}


@pytest.fixture(scope="module")
def smoke(seeded):
    """A 20-second steady run: 6 users, each first walks every route of the mix once."""
    run = load("SHAPE=steady", "USERS=6", "SPAWN_RATE=6", "DURATION=20s", "PAGE=2", "TOUR=1",
               f"SLO={HERE / 'smoke_slo.toml'}")
    assert run.returncode == 0, run.describe()
    return run


def test_a_run_writes_locusts_csv_and_html_and_the_slo_table_into_its_own_folder(smoke):
    folder = smoke.folder
    assert folder.parent.name == "runs" and folder.parent.parent.name == "load"
    for name in ("locust_stats.csv", "locust_stats_history.csv", "locust_failures.csv",
                 "locust_exceptions.csv", "report.html", "slo.txt", "slo.json", "params.json",
                 "cpu.json"):
        assert (folder / name).is_file(), f"{name} missing in {folder}"
    report = (folder / "report.html").read_text()
    # the SLO table sits at the top of the page's body, not inside one of its scripts
    assert report.index('<pre id="murmur-slo"') > report.index("</head>")
    assert "locust" in report.lower()
    params = json.loads((folder / "params.json").read_text())
    assert params["shape"] == "steady" and params["users"] == 6
    assert params["target"].endswith(":8090") and params["git_revision"]
    cpu = json.loads((folder / "cpu.json").read_text())
    assert cpu["loadgen_cpu_s"] > 0 and 0 < cpu["loadgen_share_of_machine"] < 1
    history = (folder / "locust_stats_history.csv").read_text().splitlines()
    assert len(history) > 2  # a row every few seconds, not just the header


def test_every_route_of_the_mix_was_requested_and_none_failed(smoke):
    rows = stats_rows(smoke.folder)
    for method, route in workload.MIX_ROUTES:
        row = rows.get(f"{method} {route}")
        assert row and int(row["Request Count"]) > 0, f"no {method} {route}: {sorted(rows)}"
    failed = {name: row["Failure Count"] for name, row in rows.items()
              if int(row["Failure Count"])}
    assert not failed, (failed, (smoke.folder / "locust_failures.csv").read_text())
    assert int(rows["POST /sessions"]["Request Count"]) >= 1  # signed in, once per account


def test_fan_out_freshness_is_recorded_as_its_own_request_type(smoke):
    rows = stats_rows(smoke.folder)
    fresh = rows.get(f"FRESHNESS {workload.FRESH_FANOUT}")
    assert fresh and int(fresh["Request Count"]) >= 2, sorted(rows)
    assert int(fresh["Failure Count"]) == 0
    assert 0 < float(fresh["50%"]) <= float(fresh["95%"]) <= float(fresh["99%"])
    # ... and in the statistics of Locust's HTML report beside the HTTP routes (its JSON
    # data, after the SLO table this project puts at the top; ">" escaped as \u003e)
    report = (smoke.folder / "report.html").read_text()
    locusts = report[report.index("</pre>", report.index('id="murmur-slo"')):]
    name = json.dumps(workload.FRESH_FANOUT).replace(">", "\\u003e")
    assert '"method": "FRESHNESS"' in locusts and f'"name": {name}' in locusts


def test_the_slo_table_ends_the_output_before_the_folder(smoke):
    out = smoke.stdout
    # After Locust's own summary (on stderr): the judged window's routes, the SLO table,
    # and the folder last.
    routes = out.index("Routes, from 5s")  # a 20 s run is judged after a 5 s warm-up
    table = out.index("SLOs, from 5s")
    assert routes < table < out.rindex(str(smoke.folder))
    assert "verdict" in out[table:] and "BREACHED" not in out
    summary = json.loads((smoke.folder / "slo.json").read_text())
    assert summary["passed"] is True and summary["exit_code"] == 0
    assert {r["verdict"] for r in summary["results"]} == {"PASS"}


def test_a_run_with_an_slo_that_cannot_hold_exits_non_zero_and_names_the_breach(seeded):
    run = load("SHAPE=steady", "USERS=2", "SPAWN_RATE=2", "DURATION=6s", "WARMUP=0", "PAGE=2",
               "TOUR=1", f"SLO={HERE / 'impossible_slo.toml'}")
    assert run.returncode != 0, run.describe()
    assert "BREACHED: impossible throughput" in run.stdout, run.describe()
    assert "GET /timeline p50" in run.stdout
    summary = json.loads((run.folder / "slo.json").read_text())
    verdicts = {r["objective"]: r["verdict"] for r in summary["results"]}
    assert verdicts == {"impossible throughput": "FAIL", "GET /timeline p50": "FAIL"}
    assert (run.folder / "report.html").is_file()


def test_a_run_without_its_seed_says_how_to_make_it(tmp_path):
    run = load(f"MANIFEST={tmp_path / 'none.json'}", timeout=60)
    assert run.returncode != 0
    assert "no seed manifest" in run.stderr and "make seed" in run.stderr, run.describe()
