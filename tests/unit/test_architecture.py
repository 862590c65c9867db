"""The services keep the shape they promise: layers that only import downwards, and a
domain and service layer free of Flask, drivers and HTTP."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SERVICES = ("users", "timeline", "gateway", "fanout")
LAYERS = ("domain", "service_layer", "adapters", "entrypoints")


def test_every_service_has_the_same_layers_as_folders():
    missing = [f"{service}/{layer}" for service in SERVICES for layer in LAYERS
               if not (REPO / "services" / service / layer / "__init__.py").is_file()]
    assert missing == []


def test_every_service_has_one_bootstrap_returning_the_shared_service_shape():
    for service in SERVICES:
        source = (REPO / "services" / service / "bootstrap.py").read_text()
        assert "def bootstrap(config" in source, service
        assert "-> Service" in source, service


def test_the_import_contracts_hold():
    env = {**os.environ, "PYTHONPATH": str(REPO / "services")}
    lint_imports = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run([str(lint_imports), "--no-cache"],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
