"""Running `make load` from a test, as a user would, and reading what it printed."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from conftest import make


@dataclass
class LoadRun:
    """One `make load` run: its exit status, output and report folder."""

    returncode: int
    stdout: str
    stderr: str

    @property
    def folder(self) -> Path:
        lines = self.stdout.strip().splitlines()
        assert lines, f"make load printed nothing; stderr: {self.stderr[-2000:]}"
        return Path(lines[-1])

    def describe(self) -> str:
        return f"exit {self.returncode}\n{self.stdout[-4000:]}\n{self.stderr[-3000:]}"


def load(*args: str, timeout: float = 180) -> LoadRun:
    """`make load PROFILE=test ARGS...` as a user would run it."""
    done = make("load", *args, timeout=timeout)
    return LoadRun(done.returncode, done.stdout, done.stderr)
