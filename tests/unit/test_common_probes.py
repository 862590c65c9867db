"""The probe server of a process without an HTTP API: a taken port costs the probes only."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from common.web import ProbeServer, serve_probes

SERVICES = Path(__file__).resolve().parents[2] / "services"


def health(port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as resp:
        return json.load(resp)


@pytest.fixture()
def taken_port():
    """A port another socket listens on, as a second relay on the same host finds it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_probes_answer_on_the_port_they_listen_on():
    probes = serve_probes("users-relay", "127.0.0.1", 0)
    try:
        assert probes is not None and probes.port != 0
        assert health(probes.port) == {"status": "ok", "service": "users-relay"}
    finally:
        probes.stop()


def test_a_taken_port_means_no_probes_and_a_warning_not_an_exit(taken_port, caplog):
    with caplog.at_level(logging.WARNING, logger="murmur.web"):
        assert serve_probes("users-relay", "127.0.0.1", taken_port) is None
    assert f"cannot listen on 127.0.0.1:{taken_port}" in caplog.text


def test_a_second_relay_runs_on_while_the_first_keeps_the_probes():
    first = serve_probes("users-relay", "127.0.0.1", 0)
    try:
        assert serve_probes("users-relay", "127.0.0.1", first.port) is None
        assert health(first.port)["status"] == "ok"
    finally:
        first.stop()


def test_the_probe_server_itself_raises_an_os_error_for_a_taken_port(taken_port):
    with pytest.raises(OSError):
        ProbeServer("fanout", "127.0.0.1", taken_port)


def test_the_process_keeps_running_when_the_probe_port_is_taken(taken_port):
    script = ("import sys\n"
              "from common.web import serve_probes\n"
              f"probes = serve_probes('users-relay', '127.0.0.1', {taken_port})\n"
              "print('still running', probes)\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            env={"PYTHONPATH": str(SERVICES), "PATH": os.environ["PATH"]},
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "still running None"
