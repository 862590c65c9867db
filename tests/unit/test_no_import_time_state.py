"""Importing the services' code builds nothing: process state is made when a process starts.

Every module under services/ is imported in a fresh interpreter whose sockets refuse to
connect, with tracing asked for and an empty MURMUR_HOME. Afterwards nothing may have tried
to connect, started a thread, installed a tracer provider, patched a client library, made
a circuit breaker, configured logging, taken a signal, written a file or changed the
environment. Prometheus metric objects are module constants and are allowed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

SERVICES = Path(__file__).resolve().parents[2] / "services"

PROBE = textwrap.dedent("""
    import importlib, json, logging, os, signal, socket, sys, threading, traceback
    from pathlib import Path

    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(repr(args[1:] or args)[:200])
        raise OSError("no connection may be made at import")

    socket.socket.connect = refuse
    socket.socket.connect_ex = refuse
    socket.create_connection = refuse
    socket.getaddrinfo = refuse

    import pybreaker

    breakers = []
    made_by_pybreaker = pybreaker.CircuitBreaker.__init__

    def counted(self, *args, **kwargs):
        breakers.append(str(kwargs.get("name")))
        made_by_pybreaker(self, *args, **kwargs)

    pybreaker.CircuitBreaker.__init__ = counted

    services = Path(sys.argv[1])
    home = Path(os.environ["MURMUR_HOME"])
    environ = dict(os.environ)
    signals = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    root_handlers = list(logging.getLogger().handlers)
    threads = set(threading.enumerate())

    modules, failures = [], {}
    for path in sorted(services.rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        parts = path.relative_to(services).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        try:
            importlib.import_module(name)
            modules.append(name)
        except BaseException:
            failures[name] = traceback.format_exc(limit=3)[-600:]

    from opentelemetry import trace
    from common import tracing

    found = {
        "failed imports": failures,
        "connection attempts": attempts,
        "threads started": sorted(t.name for t in set(threading.enumerate()) - threads),
        "tracer provider installed": tracing.installed_provider() is not None
                                     or type(trace.get_tracer_provider()).__name__
                                     != "ProxyTracerProvider",
        "clients instrumented": sorted(tracing.instrumented()),
        "breakers made": sorted(breakers),
        "signal handlers changed": sorted(str(s) for s, h in signals.items()
                                          if signal.getsignal(s) != h),
        "logging configured": logging.getLogger().handlers != root_handlers,
        "files written": sorted(str(p) for p in home.rglob("*")),
        "environment changed": sorted(k for k in set(os.environ) | set(environ)
                                      if os.environ.get(k) != environ.get(k)),
    }
    print(json.dumps({"modules": modules, "found": found}))
""")


def test_importing_every_service_module_has_no_side_effect(tmp_path):
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(SERVICES),
           "MURMUR_HOME": str(tmp_path), "MURMUR_PROFILE": "test",
           # Unreachable stores, and tracing asked for: importing must use neither.
           "MURMUR_STORE_HOST": "192.0.2.1", "MURMUR_PROCESS": "import-probe",
           "OTEL_TRACES_EXPORTER": "file"}
    result = subprocess.run([sys.executable, "-c", PROBE, str(SERVICES)], env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])

    # Every service is in the sweep (a typo in the walk would make the test vacuous).
    for package in ("common.config", "users", "timeline", "fanout", "gateway"):
        assert package in report["modules"] or package in report["found"]["failed imports"]
    assert report["found"] == {
        "failed imports": {}, "connection attempts": [], "threads started": [],
        "tracer provider installed": False, "clients instrumented": [], "breakers made": [],
        "signal handlers changed": [], "logging configured": False, "files written": [],
        "environment changed": []}
