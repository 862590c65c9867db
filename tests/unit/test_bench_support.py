"""A benchmark's own `up` keeps the settings the profile's last `make up` recorded."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import support  # noqa: E402


@pytest.fixture
def runs(monkeypatch, tmp_path):
    monkeypatch.setenv("MURMUR_HOME", str(tmp_path))
    (tmp_path / "etc").mkdir()
    calls: list[dict] = []
    monkeypatch.setattr(subprocess, "run", lambda cmd, **kw: calls.append({"cmd": cmd, **kw}))
    return calls


def test_a_benchmark_up_passes_the_recorded_switch_and_otel_variables(runs, monkeypatch,
                                                                      tmp_path):
    (tmp_path / "etc/toxiproxy-dev.switch").write_text("off\n")
    (tmp_path / "etc/settings-dev.env").write_text("OTEL_SDK_DISABLED=true\n")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "always_on")  # the caller's, not recorded
    monkeypatch.setenv("MURMUR_TOXIPROXY", "1")
    support.stack_up("dev", MURMUR_RATE_LIMIT="1000000")
    [call] = runs
    assert call["cmd"][-3:] == ["--profile", "dev", "up"]
    env = call["env"]
    assert env["MURMUR_TOXIPROXY"] == "0" and env["MURMUR_RATE_LIMIT"] == "1000000"
    assert {k: v for k, v in env.items() if k.startswith("OTEL_")} == {
        "OTEL_SDK_DISABLED": "true"}


def test_without_records_a_benchmark_up_keeps_the_defaults(runs, monkeypatch):
    monkeypatch.delenv("MURMUR_TOXIPROXY", raising=False)
    support.stack_up("test")
    env = runs[0]["env"]
    assert env["MURMUR_TOXIPROXY"] == "1"
    assert not [k for k in env if k.startswith("OTEL_")]
