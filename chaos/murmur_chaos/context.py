"""The run folder an experiment's activities share, its marks and its figures.

The runner (`chaos/run.py`) gives each experiment a folder and says where the system is:
`MURMUR_CHAOS_RUN_DIR`, `MURMUR_CHAOS_TARGET` (`local` or `k8s`), `MURMUR_PROFILE` (the
local profile) and `MURMUR_CHAOS_API` (the public API's base URL; by default the
profile's nginx). An experiment's `configuration` block names the same variables, so
`chaos run` works without the runner too.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common import config

_LOCK = threading.Lock()


class Deviation(AssertionError):
    """A probe found the system outside its steady state; the message says how."""


@dataclass(frozen=True)
class Run:
    """Where this experiment keeps its records, and the system it runs against."""

    folder: Path
    target: str  # "local" or "k8s"
    profile: str
    api: str  # base URL of the public API, ending in /api/v1

    @property
    def local(self) -> bool:
        return self.target == "local"

    def service_name(self, name: str) -> str:
        """The supervised program of a service in this profile (stores have no prefix)."""
        if name in ("postgres", "redis", "kafka", "cassandra", "toxiproxy"):
            return name
        return name if self.profile == "dev" else f"{self.profile}-{name}"


def _setting(configuration: dict | None, key: str, env: str, default: str = "") -> str:
    value = (configuration or {}).get(key) or os.environ.get(env, "")
    return str(value) if value else default


def current(configuration: dict | None = None) -> Run:
    """The run described by the experiment's configuration (or the environment)."""
    profile = _setting(configuration, "murmur_profile", "MURMUR_PROFILE", "dev")
    folder = _setting(configuration, "murmur_run_dir", "MURMUR_CHAOS_RUN_DIR")
    if not folder:
        folder = tempfile.mkdtemp(prefix="murmur-chaos-")
        os.environ["MURMUR_CHAOS_RUN_DIR"] = folder
    api = _setting(configuration, "murmur_api", "MURMUR_CHAOS_API",
                   f"http://127.0.0.1:{config.PROFILES[profile].http_port}")
    api = api.rstrip("/")
    if not api.endswith("/api/v1"):
        api += "/api/v1"
    target = _setting(configuration, "murmur_target", "MURMUR_CHAOS_TARGET", "local")
    Path(folder).mkdir(parents=True, exist_ok=True)
    return Run(Path(folder), target, profile, api)


def _read(path: Path, default: Any) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return default


def _write(path: Path, value: Any) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(value, indent=2, default=str) + "\n")
    tmp.replace(path)


def state(run: Run) -> dict[str, Any]:
    """What the experiment's activities left for each other (accounts, ledger, load)."""
    return _read(run.folder / "state.json", {})


def update_state(run: Run, **values: Any) -> None:
    with _LOCK:
        current_state = state(run)
        current_state.update(values)
        _write(run.folder / "state.json", current_state)


def figures(run: Run) -> dict[str, Any]:
    """The experiment's measured figures (recovery seconds, requests failed, ...)."""
    return _read(run.folder / "figures.json", {})


def set_figures(run: Run, **values: Any) -> None:
    with _LOCK:
        current_figures = figures(run)
        current_figures.update(values)
        _write(run.folder / "figures.json", current_figures)


def marks(run: Run) -> list[dict[str, Any]]:
    """The experiment's marks in order: `{"t": unix seconds, "mark": "fault started"}`."""
    path = run.folder / "marks.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def last_mark(run: Run, name: str) -> float | None:
    """When `name` was last marked (unix seconds), or None."""
    times = [m["t"] for m in marks(run) if m["mark"] == name]
    return times[-1] if times else None


def mark(what: str, configuration: dict | None = None) -> dict[str, Any]:
    """Action: note the moment `what` happened ("fault started", "fault ended"), for the
    recovery time and the report's plot."""
    run = current(configuration)
    entry = {"t": time.time(), "mark": what}
    with _LOCK, (run.folder / "marks.jsonl").open("a") as out:
        out.write(json.dumps(entry) + "\n")
    return entry
