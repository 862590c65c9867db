"""An experiment that always passes proves nothing: with its safeguard switched off on
purpose (`make chaos BREAK=...`), each experiment must deviate, on the probe that guards
that safeguard, and say why.

- `home-fallback` off: home timelines are not rebuilt without Redis, so redis-stopped
  deviates on its observation of degraded reads.
- `breakers` off: no breaker opens on a slow Cassandra, so cassandra-latency deviates on
  its fail-fast observation (and its tail latency).
- `outbox-relay` off: the timeline's relay is stopped, so kafka-stopped deviates on the
  ledger: acknowledged posts never reach the followers.
"""

from __future__ import annotations

import pytest

from fault.test_chaos_experiments import run_chaos
import stackctl as platform

CASES = [
    ("home-fallback", "redis-stopped", "home-timelines-rebuilt-while-redis-was-down"),
    ("breakers", "cassandra-latency", "breaker-opened-and-reads-failed-fast"),
    ("outbox-relay", "kafka-stopped", "every-acknowledged-post-delivered-once"),
]


@pytest.mark.timeout(900)
@pytest.mark.parametrize("safeguard, experiment, probe", CASES)
def test_with_its_safeguard_off_the_experiment_deviates_and_says_why(safeguard, experiment,
                                                                     probe, tmp_path):
    summary = run_chaos(tmp_path, "--experiment", experiment, "--break", safeguard)
    [outcome] = summary["experiments"]
    print(f"\n{safeguard} off: {experiment} {outcome['verdict']}: {outcome['deviations']}")
    assert summary["broken"] == safeguard
    assert outcome["verdict"] == "deviated", outcome
    assert any(f"[after] {probe}:" in why for why in outcome["deviations"]), \
        outcome["deviations"]
    # The switch is undone: the services run without it again, the relay runs.
    assert "MURMUR_DISABLE_SAFEGUARDS" not in platform.service_settings("test")
    assert platform.process_info("test-timeline-relay")["statename"] == "RUNNING"
