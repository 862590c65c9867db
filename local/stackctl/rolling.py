"""Restarts that neither refuse nor fail a request: a gunicorn service's workers replaced
in place, and every service process of a profile restarted one at a time."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from .components import NGINX_FAIL_TIMEOUT, component, components
from .layout import paths, prefix
from .lifecycle import cmd_restart
from .readiness import poll, wait_ready
from .supervisord import process_info, signal_process

# Gateways first, restarted (nginx retries idempotent requests on the other one), then the
# services they call, reloaded in place (one instance each, so a stop would refuse calls),
# then the relays, the author projection and fanout, restarted (they serve no requests; what
# they had not yet committed is processed again by the new process, and every consumer is
# idempotent).
ROLLING_ORDER = [("gateway-1", "restart"), ("gateway-2", "restart"), ("users", "reload"),
                 ("timeline", "reload"), ("users-relay", "restart"),
                 ("timeline-relay", "restart"), ("timeline-authors", "restart"),
                 ("fanout", "restart")]


def gunicorn_workers(master: int) -> set[int]:
    """The worker pids of a gunicorn master (its children)."""
    return {int(pid) for pid in
            Path(f"/proc/{master}/task/{master}/children").read_text().split()}


def cmd_reload(name: str) -> None:
    """Replace every worker of a gunicorn service without closing its socket: add as many
    new workers as it has, wait until each has loaded the app, then retire the old ones
    (SIGTERM: each finishes its in-flight requests). For a service with one instance, this
    is the restart that never refuses or delays a request."""
    comp = component(name)
    if "gunicorn" not in comp.command:
        sys.exit(f"{name} is not a gunicorn service; use `make restart SERVICE={name}`")
    info = process_info(name)
    if info["statename"] != "RUNNING":
        sys.exit(f"{name} is not running; use `make start SERVICE={name}`")
    t0 = time.monotonic()
    master = info["pid"]
    markers = paths().run / "gunicorn" / name  # written by common.gunicorn_conf.post_worker_init
    old = gunicorn_workers(master)
    # One signal at a time: the same signal sent twice before it is handled counts once.
    for _ in old:
        count = len(gunicorn_workers(master))
        signal_process(name, "TTIN")
        poll(lambda: len(gunicorn_workers(master)) > count, 15, f"a new worker of {name}")
    new = gunicorn_workers(master) - old
    poll(lambda: all((markers / str(pid)).exists() for pid in new), 60,
         f"the new workers of {name} loading the app")
    for _ in old:
        count = len(gunicorn_workers(master))
        signal_process(name, "TTOU")  # gunicorn retires the oldest worker
        poll(lambda: len(gunicorn_workers(master)) < count, 40, f"an old worker of {name} leaving")
    if gunicorn_workers(master) & old:
        sys.exit(f"ERROR: {name} still runs old workers {sorted(gunicorn_workers(master) & old)}")
    wait_ready([comp])
    print(f"reloaded {name}: {len(new)} new workers in {time.monotonic() - t0:.1f}s", flush=True)


def cmd_rolling_restart(profile: str) -> None:
    """Restart every service process of `profile`, one at a time, each ready before the next."""
    present = {c.name for c in components() if c.profile == profile}
    t0 = time.monotonic()
    for base, how in ROLLING_ORDER:
        name = prefix(profile) + base
        if name not in present:
            continue
        if how == "reload" and process_info(name)["statename"] == "RUNNING":
            cmd_reload(name)
        else:
            cmd_restart(name)
        if base.startswith("gateway-"):
            # nginx may still skip this gateway for fail_timeout after its last failed
            # connection; the next one goes down only once nginx uses this one again.
            time.sleep(NGINX_FAIL_TIMEOUT + 0.5)
    print(f"rolling restart of the {profile} profile done in {time.monotonic() - t0:.1f}s")
