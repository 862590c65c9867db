"""gunicorn settings shared by the HTTP services: `gunicorn -c python:common.gunicorn_conf`.

Workers and threads come from GUNICORN_WORKERS / GUNICORN_THREADS; the bind address from
MURMUR_PORT. Per-process state (store clients, tracing exporters) is created after the fork,
in the app factory, never in the master.
"""

import os

# Imported under another name: gunicorn reads every module-level name of this file that
# matches one of its settings, and `config` is one (the config file path).
from common import config as murmur_config

bind = f"127.0.0.1:{murmur_config.env_int('MURMUR_PORT', 0)}"
workers = murmur_config.env_int("GUNICORN_WORKERS", 2)
threads = murmur_config.env_int("GUNICORN_THREADS", 8)
worker_class = "gthread"
timeout = 30
graceful_timeout = 20
keepalive = 30
# Above nginx's own limit (large_client_header_buffers), so an overlong URI is refused by
# nginx as a problem+json 414, never by gunicorn as an HTML 400.
limit_request_line = 8190
accesslog = None  # nginx and the JSON app logs carry every request
errorlog = "-"


def on_starting(server):  # noqa: ARG001 - gunicorn hook signature
    """Clear stale multiprocess metric files from an earlier run of this service."""
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if path:
        os.makedirs(path, exist_ok=True)
        for name in os.listdir(path):
            if name.endswith(".db"):
                os.remove(os.path.join(path, name))


def child_exit(server, worker):  # noqa: ARG001 - gunicorn hook signature
    """Drop a dead worker's live gauges from the merged metrics."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
