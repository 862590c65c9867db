"""The resilience benchmark finishes and reports whatever the machine's load."""

from __future__ import annotations

import importlib.util
import sys

from conftest import REPO


def load_bench():
    spec = importlib.util.spec_from_file_location("bench_resilience",
                                                  REPO / "bench/resilience.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_resilience"] = module
    spec.loader.exec_module(module)
    return module


def test_a_call_that_raises_is_counted_and_the_measurement_goes_on():
    bench = load_bench()
    calls = iter(range(1_000_000))

    def sometimes_late() -> None:
        if next(calls) % 2:
            raise TimeoutError("the deadline passed")

    rate = bench.throughput(sometimes_late, threads=2, seconds=0.2)
    assert rate > 0
    assert bench.FAILED["TimeoutError"] > 0
