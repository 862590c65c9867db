"""Bringing the platform up and down, and one component at a time."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from . import preparation, urls
from .components import Component, component, components, render_configs, stores_and_tier
from .layout import paths, prefix, write_if_changed
from .readiness import wait_port_closed, wait_ready
from .settings import record_service_settings, record_toxiproxy_switch
from .supervisord import (ACTIVE, ensure_supervisord, process_info, shutdown, signal_process,
                          start_process, stop_process, supervisor_running)


def prepare(comps: list[Component]) -> set[Path]:
    """First-start state of `comps`: folders, secrets, configs, initdb, Kafka format.
    Returns the rendered config files whose content changed."""
    preparation.make_folders()
    preparation.ensure_secrets()
    changed = render_configs()
    for comp in comps:
        if comp.prepare:
            comp.prepare()
    return changed


def config_stamp(comp: Component) -> Path:
    return paths().run / "config-stamps" / comp.name


def stamp_config(comp: Component) -> None:
    """Remember which rendered config a component was started with."""
    if comp.config_files:
        write_if_changed(config_stamp(comp), comp.config_digest())


def restart_stale(comps: list[Component]) -> None:
    """Stop running components whose rendered config changed since they started (the
    following `start` brings them back on the new one)."""
    for comp in comps:
        if not comp.config_files or process_info(comp.name)["statename"] != "RUNNING":
            continue
        stamp = config_stamp(comp)
        if not stamp.exists():  # started before stamps were kept: adopt the running one
            stamp_config(comp)
        elif stamp.read_text() != comp.config_digest():
            print(f"  restarting {comp.name}: its configuration changed", flush=True)
            stop_process(comp.name)


def start(comps: list[Component]) -> None:
    """Start the given components (if not running) and wait until each answers."""
    names = {c.name for c in comps}
    # Programs supervisord restarted because their definition changed: waited for after the
    # given components are ready and configured (a service may need a store's new proxy).
    restarted = [component(n) for n in ensure_supervisord(components()) if n not in names]
    for comp in comps + restarted:
        if process_info(comp.name)["statename"] not in ("RUNNING", "STARTING"):
            start_process(comp.name)
            stamp_config(comp)
    for group in (comps, restarted):
        wait_ready(group)
        for comp in group:
            if comp.configure:
                comp.configure()


def cmd_up(profile: str) -> None:
    t0 = time.monotonic()
    print(f"Starting Murmur ({profile} profile); data in {paths().home}", flush=True)
    record_toxiproxy_switch(profile)
    record_service_settings(profile)
    # After the records: they are part of the service processes' definitions.
    comps = stores_and_tier(profile)
    changed = prepare(comps)
    stores = [c for c in comps if c.profile is None]
    if supervisor_running():
        restart_stale(stores)
    # Stores (Toxiproxy among them) before services, and the schema too: the services
    # expect their proxies, tables and topics to exist.
    start(stores)
    preparation.run_bootstrap(profile)
    tier = [c for c in comps if c.profile is not None]
    running = {c.name for c in tier if process_info(c.name)["statename"] == "RUNNING"}
    start(tier)
    reload_changed_nginx(profile, running, changed)
    print(f"\nMurmur is up in {time.monotonic() - t0:.1f}s.")
    print("\n".join(urls.lines(profile, indent="  ")))
    print("  status: make status    logs: make logs [SERVICE=x]    stop: make down")


def reload_changed_nginx(profile: str, running: set[str], changed: set[Path]) -> None:
    """A running nginx whose rendered config changed reloads it (HUP: no dropped request)."""
    name = f"{prefix(profile)}nginx"
    if name in running and paths().etc / f"nginx-{profile}.conf" in changed:
        signal_process(name, "HUP")
        print(f"  reloaded {name}: its configuration changed", flush=True)


def cmd_down() -> None:
    if not supervisor_running():
        print("Murmur is not running.")
        return
    # App tier first, stores last, so nothing loses a dependency mid-request.
    for comp in reversed(components()):
        if process_info(comp.name)["statename"] in ACTIVE:
            print(f"  stopping {comp.name}", flush=True)
            stop_process(comp.name)
    shutdown()
    print("Murmur is down.")


def cmd_status() -> None:
    running = supervisor_running()
    print(f"{'component':<22}{'state':<8}{'port':<8}pid")
    for comp in components():
        info = process_info(comp.name) if running else {"statename": "STOPPED", "pid": 0}
        up = info["statename"] == "RUNNING"
        pid = info["pid"] if up else "-"
        print(f"{comp.name:<22}{'up' if up else 'down':<8}{comp.port or '-':<8}{pid}")


def cmd_stop(name: str) -> None:
    comp = component(name)
    if not supervisor_running():
        print(f"{name} is not running (the platform is down).")
        return
    if process_info(comp.name)["statename"] in ACTIVE:
        stop_process(comp.name)
    if comp.port:
        wait_port_closed(comp.port)
    print(f"stopped {comp.name}")


def cmd_start(name: str) -> None:
    comps = [component(name)]
    prepare(comps)
    start(comps)


def cmd_restart(name: str) -> None:
    """Stop one component gracefully (SIGTERM: in-flight work finishes), start it, wait
    until it is ready."""
    t0 = time.monotonic()
    cmd_stop(name)
    cmd_start(name)
    print(f"restarted {name} in {time.monotonic() - t0:.1f}s", flush=True)


def cmd_logs(name: str | None) -> None:
    log = paths().log
    files = [str(component(name).log)] if name else sorted(str(p) for p in log.glob("*.log"))
    if not files:
        sys.exit(f"no logs yet in {log}")
    os.execvp("tail", ["tail", "-n", "50", "-F", *files])
