"""supervisord: the one process that supervises every component, driven over XML-RPC."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
import xmlrpc.client
from typing import TYPE_CHECKING

from .layout import paths, venv_bin, write_if_changed

if TYPE_CHECKING:
    from .components import Component

ACTIVE = ("RUNNING", "STARTING", "BACKOFF")  # states in which a stop has something to stop


def supervisor() -> xmlrpc.client.ServerProxy:
    """The XML-RPC client of the platform's supervisord (`.supervisor.<method>`)."""
    from supervisor.xmlrpc import SupervisorTransport

    transport = SupervisorTransport(None, None, f"unix://{paths().run}/supervisor.sock")
    return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport)


def supervisor_running() -> bool:
    try:
        return supervisor().supervisor.getState()["statename"] == "RUNNING"
    except (OSError, xmlrpc.client.Error):
        return False


def process_info(name: str) -> dict:
    """supervisord's view of one program (`statename`, `pid`, ...); UNKNOWN if it has none."""
    try:
        return supervisor().supervisor.getProcessInfo(name)
    except xmlrpc.client.Fault:
        return {"statename": "UNKNOWN", "pid": 0}


def start_process(name: str) -> None:
    supervisor().supervisor.startProcess(name, False)


def stop_process(name: str) -> None:
    """Stop a program and wait until it has exited."""
    supervisor().supervisor.stopProcess(name, True)


def signal_process(name: str, signal_name: str) -> None:
    supervisor().supervisor.signalProcess(name, signal_name)


def supervisord_conf(comps: list[Component]) -> str:
    """supervisord's configuration: the server, and one program per component."""
    p = paths()
    lines = [
        "; Rendered by local/stackctl; edits are overwritten.",
        "[unix_http_server]", f"file={p.run}/supervisor.sock", "chmod=0700", "",
        "[supervisord]", f"logfile={p.log}/supervisord.log", f"pidfile={p.run}/supervisord.pid",
        "logfile_maxbytes=5MB", "logfile_backups=1", "loglevel=info", f"childlogdir={p.log}",
        # Cassandra and Kafka want many descriptors; ask for as many as the hard limit allows.
        f"minfds={min(65536, resource.getrlimit(resource.RLIMIT_NOFILE)[1])}",
    ]
    if os.geteuid() == 0:
        lines.append("user=root")
    lines += [
        "", "[rpcinterface:supervisor]",
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface", "",
        "[supervisorctl]", f"serverurl=unix://{p.run}/supervisor.sock", "",
    ]
    for comp in comps:
        # A fixed PATH: the caller's own PATH would make every `up` from another shell
        # look like a config change and restart every program.
        path = f"{venv_bin()}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        env = {"PATH": path, "MURMUR_HOME": str(p.home), **comp.environment}
        lines += [
            f"[program:{comp.name}]",
            f"command={comp.command}",
            "autostart=false",
            "autorestart=unexpected" if comp.profile is None else "autorestart=true",
            f"startsecs={comp.startsecs}",
            "startretries=2",
            f"stopsignal={comp.stopsignal}",
            f"stopwaitsecs={comp.stopwaitsecs}",
            "stopasgroup=true",
            "killasgroup=true",
            "redirect_stderr=true",
            f"stdout_logfile={comp.log}",
            "stdout_logfile_maxbytes=20MB",
            "stdout_logfile_backups=1",
            # supervisord expands %(...)s in values: a literal % is written %%.
            "environment=" + ",".join(f'{k}="{v.replace("%", "%%")}"' for k, v in env.items()),
        ]
        if comp.user:
            lines.append(f"user={comp.user}")
        if comp.directory:
            lines.append(f"directory={comp.directory}")
        lines.append("")
    return "\n".join(lines)


def ensure_supervisord(comps: list[Component]) -> list[str]:
    """Start supervisord if needed, and make it pick up a changed config for `comps`.

    Returns the programs that were running and were stopped to apply a changed definition:
    supervisord re-adds them stopped (every program has autostart=false), so the caller
    starts them again.
    """
    p = paths()
    conf = p.etc / "supervisord.conf"
    changed = write_if_changed(conf, supervisord_conf(comps))
    if not supervisor_running():
        sock = p.run / "supervisor.sock"
        if sock.exists():
            sock.unlink()
        # Without the caller's OTEL_* variables: the services get the recorded ones only,
        # so one `up` with a sampler set cannot stick to supervisord for good.
        clean = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
        subprocess.run([sys.executable, "-m", "supervisor.supervisord", "-c", str(conf)],
                       check=True, env=clean)
        deadline = time.monotonic() + 15
        while not supervisor_running():
            if time.monotonic() > deadline:
                sys.exit(f"supervisord did not start; see {p.log}/supervisord.log")
            time.sleep(0.1)
        return []
    if not changed:
        return []
    running = {info["name"] for info in supervisor().supervisor.getAllProcessInfo()
               if info["statename"] in ("RUNNING", "STARTING")}
    # `supervisorctl update` adds new programs, removes old ones, and stops, removes and
    # re-adds the changed ones.
    subprocess.run([sys.executable, "-m", "supervisor.supervisorctl", "-c", str(conf), "update"],
                   check=True, stdout=subprocess.DEVNULL)
    # A removed program is gone (UNKNOWN); a changed one is back, STOPPED.
    stopped = sorted(name for name in running if process_info(name)["statename"] == "STOPPED")
    for name in stopped:
        print(f"  restarting {name}: its definition changed", flush=True)
    return stopped


def shutdown(timeout: float = 30) -> None:
    """Stop supervisord itself and wait until its pid file is gone."""
    supervisor().supervisor.shutdown()
    deadline = time.monotonic() + timeout
    while (paths().run / "supervisord.pid").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
