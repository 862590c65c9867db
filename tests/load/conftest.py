"""Load-test layer: real Locust runs (`make load`) against the test profile's stack.

The session seeds a small graph into the test profile once (300 accounts, 3 tweets each,
a few follows each, so home timelines and user timelines have second pages at PAGE=2) and
writes its manifest to var/seed/test.json; a seed already in place is reused. Locust runs
from its own virtual environment, which `make load` installs when missing.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from common import config
from conftest import REPO, wait_until

API = f"http://127.0.0.1:{config.profile().http_port}/api/v1"
MANIFEST = config.murmur_home() / "seed" / "test.json"
SEED_ARGS = ["--users", "300", "--tweets", "3", "--celebrities", "2", "--mean-following", "4",
             "--concurrency", "8"]


def _seeded() -> bool:
    """The manifest exists and the test profile knows its accounts."""
    if not MANIFEST.exists():
        return False
    try:
        data = json.loads(MANIFEST.read_text())
        account = data["accounts"][0]["username"]
    except (ValueError, KeyError, IndexError):
        return False
    return requests.get(f"{API}/users/{account}", timeout=10).status_code == 200


@pytest.fixture(scope="session")
def seeded() -> Path:
    """A seeded test profile and its manifest (fails, never skips, if it cannot be made)."""
    wait_until(lambda: requests.get(f"{API}/openapi.json", timeout=2).ok, timeout=60,
               message="the test profile's nginx answering (run `make test-up`)")
    if not _seeded():
        done = subprocess.run([sys.executable, str(REPO / "local/seed.py"), *SEED_ARGS],
                              cwd=REPO, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        assert _seeded(), "the seed ran but the test profile does not know its accounts"
    return MANIFEST
