"""The committed API reference is the one the gateway's OpenAPI document generates."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_the_committed_api_reference_matches_the_served_document():
    generated = subprocess.run([sys.executable, "-m", "gateway.apidoc"], cwd=REPO,
                               env={"PYTHONPATH": str(REPO / "services"), "PATH": "/usr/bin:/bin"},
                               capture_output=True, text=True, check=True).stdout
    committed = (REPO / "docs/api-reference.md").read_text()
    assert generated == committed, "run `make api-docs` and commit docs/api-reference.md"
