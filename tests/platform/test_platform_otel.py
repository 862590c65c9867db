"""`up` hands its caller's OTEL_* variables to the services, and a plain `up` takes them back.

supervisord keeps the environment it was first started with, so the variables are recorded
per profile and written into each program's definition; a changed set restarts the services.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import requests

from common import config
from conftest import REPO, service_env, stackctl, wait_until

SERVICES = ["test-users", "test-timeline", "test-fanout", "test-gateway-1", "test-gateway-2",
            "test-users-relay", "test-timeline-relay", "test-timeline-authors"]
GATEWAY = f"http://127.0.0.1:{config.SERVICE_PORTS['gateway'] + 10}"


def gateway_log() -> Path:
    home = Path(service_env("test-gateway-1").get("MURMUR_HOME", REPO / "var"))
    return home / "log" / "test-gateway-1.log"


def test_otel_variables_given_to_up_reach_every_service_and_a_plain_up_removes_them():
    settings = {"OTEL_TRACES_EXPORTER": "console", "OTEL_BSP_SCHEDULE_DELAY": "100",
                "OTEL_RESOURCE_ATTRIBUTES": "murmur.check=platform-test"}
    try:
        with_otel = stackctl("up", env=settings, timeout=240)
        assert with_otel.returncode == 0, with_otel.stdout + with_otel.stderr
        assert "restarting test-gateway-1: its definition changed" in with_otel.stdout
        for name in SERVICES:
            env = service_env(name)
            assert {k: env.get(k) for k in settings} == settings, name
        # The SDK really reads them: the console exporter prints this request's span.
        rid = uuid.uuid4().hex
        assert requests.get(f"{GATEWAY}/api/v1/openapi.json", headers={"X-Request-ID": rid},
                            timeout=10).status_code == 200
        wait_until(lambda: f'"murmur.request_id": "{rid}"' in gateway_log().read_text(),
                   timeout=15, message="the gateway's span on its console")
    finally:
        plain = stackctl("up", env={k: "" for k in settings}, timeout=240)
    assert plain.returncode == 0, plain.stdout + plain.stderr
    for name in SERVICES:
        assert not {k for k in service_env(name) if k.startswith("OTEL_")}, name
