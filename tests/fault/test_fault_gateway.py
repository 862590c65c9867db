"""One gateway killed under load: nginx routes around it and no idempotent request fails.

Steady-state hypothesis: with two gateways behind nginx, a steady stream of idempotent GETs
through nginx (home timeline, a profile, a user timeline) is answered 2xx every time. When
one gateway dies at once (SIGKILL of its master and workers: no graceful shutdown, its
in-flight requests are cut), nginx retries the requests it could not complete, and sends
new ones, to the other gateway (`proxy_next_upstream error timeout http_502`), so the
clients still see no failed request; supervisord restarts the killed gateway and both are
ready again within the recovery deadline.
"""

from __future__ import annotations

import os
import signal
import time

import requests

from common import config
from conftest import make, wait_until
from fault.steady_load import SteadyLoad, sign_up
import stackctl as platform

RECOVERY_DEADLINE = 60.0
GATEWAYS = {"test-gateway-1": config.SERVICE_PORTS["gateway"] + 10,
            "test-gateway-2": config.SERVICE_PORTS["gateway-2"] + 10}


def ready(port: int) -> bool:
    try:
        return requests.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def pid_of(name: str) -> int:
    """The pid `make status` shows for a component (0 when it is down)."""
    result = make("status")
    assert result.returncode == 0, result.stderr
    for line in result.stdout.splitlines()[1:]:
        fields = line.split()
        if fields and fields[0] == name:
            return int(fields[3]) if fields[3] != "-" else 0
    raise AssertionError(f"{name} missing from make status")


def test_a_gateway_killed_under_load_fails_no_idempotent_request():
    """Hypothesis (module docstring): SIGKILL of test-gateway-1 under steady GET load gives
    zero failed requests at nginx, and both gateways are ready again within 60 s."""
    assert all(ready(port) for port in GATEWAYS.values()), "both gateways must start ready"
    reader, author = sign_up("fault_gw_r"), sign_up("fault_gw_a")
    targets = [("/timeline?limit=20", reader.auth), (f"/users/{author.username}", {}),
               (f"/users/{author.username}/tweets?limit=20", {})]
    victim = "test-gateway-1"
    old_pid = pid_of(victim)
    assert old_pid, f"{victim} is not running"

    with SteadyLoad(targets, threads=4) as load:
        load.wait_for(100)
        before = load.count
        killed_at = time.monotonic()
        # Master and workers share a process group (supervisord starts each program in its
        # own): the whole gateway dies at once, mid-request.
        os.killpg(os.getpgid(old_pid), signal.SIGKILL)
        try:
            wait_until(lambda: pid_of(victim) not in (0, old_pid) and ready(GATEWAYS[victim]),
                       timeout=RECOVERY_DEADLINE, interval=0.2,
                       message=f"supervisord restarting {victim}, ready")
        finally:
            if platform.process_info(victim)["statename"] != "RUNNING":
                make("start", f"SERVICE={victim}")
        recovered_after = time.monotonic() - killed_at
        during = load.count - before
        # Keep the load on a little after recovery: the restarted gateway rejoins cleanly.
        load.wait_for(load.count + 100)

    print(f"\n{load.summary()}; {during} of them while {victim} was down or restarting; "
          f"{victim} back and ready {recovered_after:.1f}s after the kill")
    assert during > 0, "no request was made while the gateway was down"
    assert load.failures == [], f"{len(load.failures)} failed: {load.failures[:5]}"
    assert all(ready(port) for port in GATEWAYS.values())
