"""Faults through the local platform's own controls: the same `make stop/start` a person
uses, a SIGKILL of a supervised program, the services' settings switched by `up`, and
toxics on the profile's own Toxiproxy proxies (through the platform's Toxiproxy client)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from murmur_chaos import context

REPO = Path(__file__).resolve().parents[2]
if str(REPO / "local") not in sys.path:
    sys.path.insert(0, str(REPO / "local"))

import stackctl  # noqa: E402  (the platform's own tool: supervisor, readiness, settings)


def add_toxic(dependency: str, toxic_name: str, toxic_type: str,
              attributes: dict[str, Any] | None = None, stream: str = "downstream",
              toxicity: float = 1.0, configuration: dict | None = None) -> dict[str, Any]:
    """Action: put a toxic on the run's profile's proxy in front of `dependency` (a store:
    postgres, redis, cassandra, kafka, redis-fanout); the other profile's proxies are not
    touched. A toxic of that name already there gets the new attributes."""
    run = context.current(configuration)
    proxy = stackctl.proxy(run.profile, dependency)
    stackctl.Toxiproxy().set_toxic(proxy.name, toxic_name, toxic_type, attributes or {},
                                   stream=stream, toxicity=toxicity)
    return {"proxy": proxy.name, "toxic": toxic_name, "type": toxic_type,
            "attributes": attributes or {}}


def remove_toxic(dependency: str, toxic_name: str,
                 configuration: dict | None = None) -> dict[str, Any]:
    """Action and rollback: take a toxic off the run's profile's proxy in front of
    `dependency`; nothing to do when it is not there (a rollback after the method's own
    removal)."""
    run = context.current(configuration)
    proxy = stackctl.proxy(run.profile, dependency)
    removed = stackctl.Toxiproxy().remove_toxic(proxy.name, toxic_name, missing_ok=True)
    return {"proxy": proxy.name, "toxic": toxic_name, "removed": removed}


def _stackctl(run: context.Run, *args: str, env: dict[str, str] | None = None,
              timeout: float = 300) -> str:
    done = subprocess.run([sys.executable, str(REPO / "local/stackctl"), "--profile",
                           run.profile, *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, env=env or os.environ.copy())
    if done.returncode != 0:
        errors = [line for line in (done.stdout + done.stderr).splitlines()
                  if line.startswith("ERROR") or "error:" in line.lower()[:40]]
        raise RuntimeError(f"stackctl {' '.join(args)} failed (exit {done.returncode}): "
                           + (" | ".join(errors[-3:]) or done.stdout[-1500:]))
    return done.stdout.strip()


def stop_component(name: str, configuration: dict | None = None) -> str:
    """Action: `make stop SERVICE=name` (graceful; its port refuses afterwards)."""
    run = context.current(configuration)
    return _stackctl(run, "stop", run.service_name(name))


def start_component(name: str, configuration: dict | None = None) -> str:
    """Action: `make start SERVICE=name`; returns once the component is ready."""
    run = context.current(configuration)
    return _stackctl(run, "start", run.service_name(name))


def pid(run: context.Run, name: str) -> int:
    info = stackctl.process_info(run.service_name(name))
    return info["pid"] if info["statename"] == "RUNNING" else 0


def kill_component(name: str, configuration: dict | None = None) -> dict[str, Any]:
    """Action: SIGKILL a supervised program and all its processes (a gunicorn master and
    its workers share its process group): no shutdown hook runs, in-flight work is cut.
    supervisord restarts it."""
    run = context.current(configuration)
    victim = pid(run, name)
    if not victim:
        raise RuntimeError(f"{run.service_name(name)} is not running")
    os.killpg(os.getpgid(victim), signal.SIGKILL)
    killed = context.state(run).get("killed", {})
    context.update_state(run, killed={**killed, name: victim})
    return {"killed": run.service_name(name), "pid": victim, "at": time.time()}


def wait_restarted(name: str, killed_pid: int = 0, deadline: float = 60,
                   configuration: dict | None = None) -> dict[str, Any]:
    """Action: wait until supervisord runs `name` again (a new pid: not `killed_pid`, by
    default the one `kill_component` killed) and it is ready; records an observation."""
    from murmur_chaos.steady import _observe

    run = context.current(configuration)
    killed_pid = killed_pid or context.state(run).get("killed", {}).get(name, 0)
    comp = stackctl.component(run.service_name(name))
    end = time.monotonic() + deadline
    started = time.monotonic()
    while time.monotonic() < end:
        now = pid(run, name)
        if now and now != killed_pid:
            try:
                comp.ready()
            except Exception:  # noqa: BLE001 - not ready yet
                time.sleep(0.2)
                continue
            seconds = round(time.monotonic() - started, 2)
            context.set_figures(run, **{f"{name}_back_s": seconds})
            return _observe(run, f"{comp.name} restarted and ready", True,
                            f"new pid {now}, ready after {seconds}s")
        time.sleep(0.2)
    return _observe(run, f"{comp.name} restarted and ready", False,
                    f"not back and ready within {deadline:.0f}s")


def ensure_running(names: list[str], configuration: dict | None = None) -> list[str]:
    """Rollback: start any of `names` that is not running (a fault left nothing behind)."""
    run = context.current(configuration)
    started = []
    for name in names:
        if not pid(run, name):
            _stackctl(run, "start", run.service_name(name))
            started.append(run.service_name(name))
    return started


def apply_settings(settings: dict[str, str], configuration: dict | None = None) -> str:
    """Action: restart the profile's services with `settings` added to what its last `up`
    recorded (`up` restarts every program whose definition changed, each ready before it
    returns). The previous settings are kept for `restore_settings`."""
    run = context.current(configuration)
    before = stackctl.service_settings(run.profile)
    if "settings_before" not in context.state(run):
        context.update_state(run, settings_before=before)
    return _up_with(run, {**before, **settings})


def restore_settings(configuration: dict | None = None) -> str:
    """Rollback: restart the services with the settings they had before the experiment."""
    run = context.current(configuration)
    before = context.state(run).get("settings_before")
    if before is None:
        return "nothing to restore"
    out = _up_with(run, before)
    context.update_state(run, settings_before=None)
    return out


def _up_with(run: context.Run, settings: dict[str, str]) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(stackctl.RECORDED_SETTINGS)}
    env.update(settings)
    env["MURMUR_TOXIPROXY"] = "1" if stackctl.toxiproxy_switch(run.profile) else "0"
    lines = _stackctl(run, "up", env=env, timeout=600).splitlines()
    return "\n".join(line for line in lines if "restarting" in line or "settings" in line)
