"""What the benchmarks share: starting a process beside the stack and waiting for it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "local"))

import stackctl  # noqa: E402


def stack_up(profile: str, **overrides: str) -> None:
    """Run the platform's `up` for `profile` with `overrides` in its environment.

    `up` reads MURMUR_TOXIPROXY and the recorded settings (OTEL_*, ...) from its caller;
    they are set to what the profile's last `up` recorded, so a benchmark started after
    `MURMUR_TOXIPROXY=0 make up` does not put Toxiproxy (or tracing) back into the path it
    measures.
    """
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(stackctl.RECORDED_SETTINGS)}
    env.update(stackctl.service_settings(profile))
    env["MURMUR_TOXIPROXY"] = "1" if stackctl.toxiproxy_switch(profile) else "0"
    env.update(overrides)
    subprocess.run([sys.executable, str(REPO / "local/stackctl"), "--profile", profile,
                    "up"], env=env, check=True, cwd=REPO, stdout=subprocess.DEVNULL)


def start_ready(cmd: list[str], env: dict[str, str], ready_url: str, what: str,
                timeout: float = 60, log: IO[bytes] | int = subprocess.DEVNULL) -> subprocess.Popen:
    """Start `cmd` in the repository and return once `ready_url` answers 2xx; exit if not."""
    # A benchmark process is not a platform process: its metrics stay in its own memory.
    env = {k: v for k, v in env.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(ready_url, timeout=1).ok:
                return proc
        except requests.RequestException:
            pass
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    proc.terminate()
    sys.exit(f"{what} did not become ready")
