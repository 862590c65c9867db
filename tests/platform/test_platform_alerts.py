"""An alerting rule fires on a real fault and clears once it is put right.

vmalert evaluates `observability/rules.yml` against VictoriaMetrics, which scrapes every
process of the local stack. Stopping one of the test profile's processes for longer than
`MurmurProcessDown`'s `for` (one minute) must make that alert fire, naming the process,
and starting it again must resolve it. The rules' thresholds one by one are covered by the
rule unit tests (tests/unit/test_observability_rules.py); this proves the whole path:
scrape, evaluation, alert.
"""

from __future__ import annotations

import requests

import stackctl
from conftest import stackctl as run_stackctl, wait_until

PROCESS = "test-timeline-authors"  # a worker no other platform test needs meanwhile


def firing(name: str, instance: str) -> list[dict]:
    """vmalert's alerts called `name` for `instance` that are firing now."""
    alerts = requests.get(f"{stackctl.observability.vmalert_url()}/api/v1/alerts",
                          timeout=5).json()["data"]["alerts"]
    return [a for a in alerts if a["name"] == name and a["state"] == "firing"
            and a["labels"].get("instance") == instance]


def test_a_stopped_process_fires_its_alert_and_starting_it_resolves_it() -> None:
    assert not firing("MurmurProcessDown", PROCESS), "already firing before the fault"
    stopped = run_stackctl("stop", PROCESS)
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    try:
        # for: 1m, plus a scrape (5 s) and an evaluation (10 s) on either side.
        [alert] = wait_until(lambda: firing("MurmurProcessDown", PROCESS), timeout=150,
                             interval=2.0, message=f"MurmurProcessDown firing for {PROCESS}")
        assert alert["labels"]["job"] == "timeline-authors"
        assert alert["labels"]["profile"] == "test"
        assert alert["labels"]["severity"] == "critical"
    finally:
        started = run_stackctl("start", PROCESS)
        assert started.returncode == 0, started.stdout + started.stderr
    wait_until(lambda: not firing("MurmurProcessDown", PROCESS), timeout=60, interval=2.0,
               message=f"MurmurProcessDown resolved for {PROCESS}")
