"""The set-up entrypoints retry a store that is still starting, for a bounded time only."""

from __future__ import annotations

import pytest

from common import config, provision


class NotYet(Exception):
    pass


def test_a_step_that_succeeds_after_transient_failures_returns_its_result(capsys):
    calls = []

    def step():
        calls.append(1)
        if len(calls) < 3:
            raise NotYet("starting")
        return "done"

    assert provision.retrying("demo", step, (NotYet,), timeout=5, pause=0.01) == "done"
    assert len(calls) == 3
    assert "not ready yet (attempt 2: NotYet: starting)" in capsys.readouterr().out


def test_a_step_still_failing_at_the_deadline_raises_its_last_error():
    def step():
        raise NotYet("still starting")

    with pytest.raises(NotYet):
        provision.retrying("demo", step, (NotYet,), timeout=0.05, pause=0.01)


def test_without_a_timeout_a_step_runs_once():
    calls = []

    def step():
        calls.append(1)
        raise NotYet("down")

    with pytest.raises(NotYet):
        provision.retrying("demo", step, (NotYet,), timeout=0)
    assert len(calls) == 1


def test_an_error_that_is_not_transient_is_not_retried():
    calls = []

    def step():
        calls.append(1)
        raise ValueError("bad migration")

    with pytest.raises(ValueError):
        provision.retrying("demo", step, (NotYet,), timeout=5, pause=0.01)
    assert len(calls) == 1


def test_main_prints_the_summary_and_exits_zero(capsys):
    assert provision.main("demo", lambda stores, timeout: "3 topics: 0 created") == 0
    assert "demo: 3 topics: 0 created (" in capsys.readouterr().out


def test_main_reports_a_failure_on_one_line_and_exits_non_zero(capsys, monkeypatch):
    monkeypatch.setenv("MURMUR_SETUP_TIMEOUT", "7")
    seen = {}

    def run(stores: config.Stores, timeout: float) -> str:
        seen["timeout"] = timeout
        raise RuntimeError("no broker answered")

    assert provision.main("demo", run) == 1
    assert seen["timeout"] == 7
    err = capsys.readouterr().err
    assert "demo: FAILED after" in err and "RuntimeError: no broker answered" in err


def test_a_long_multi_line_driver_error_is_reported_on_one_short_line():
    exc = RuntimeError("connection refused\n\tIs the server running?" + " x" * 400)
    line = provision.describe(exc, limit=80)
    assert "\n" not in line and "\t" not in line and len(line) == 80
    assert line.startswith("RuntimeError: connection refused Is the server running?")
