"""Fault-layer fixtures.

The store and service faults are the chaos experiments (`chaos/experiments/`, one file
each), which `test_chaos_experiments.py` runs and judges; the other fault tests here (a
rolling restart under load, one trace across the outbox and Kafka) cause their own event.
Before each test the steady state must hold (the experiments' own probe: reads answer
200, undegraded, and no breaker is open in any worker), so a test never sees the tail of
the fault before it, nor blames its own fault for it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import wait_until
from murmur_chaos import steady

# Longer than any breaker's reset timeout plus a trial, well inside a fault's recovery.
STEADY_DEADLINE = 60.0


@pytest.fixture(scope="session")
def steady_configuration(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Where the steady-state probe keeps its prober account for the session."""
    folder: Path = tmp_path_factory.mktemp("steady")
    return {"murmur_run_dir": str(folder), "murmur_profile": "test"}


@pytest.fixture(autouse=True)
def steady_state(steady_configuration: dict[str, str]) -> None:
    """Wait until the steady state holds before the test begins."""
    wait_until(lambda: steady.api_is_steady(configuration=steady_configuration),
               timeout=STEADY_DEADLINE, interval=0.5,
               message="the steady state (probe reads answer 200, no breaker open)")
