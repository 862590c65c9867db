"""gunicorn settings shared by the HTTP services: `gunicorn -c python:common.gunicorn_conf`.

Workers and threads come from GUNICORN_WORKERS / GUNICORN_THREADS; the bind address from
MURMUR_BIND_HOST (loopback by default, 0.0.0.0 in the container images) and MURMUR_PORT.
Per-process state (store clients, tracing exporters) is created after the fork, in the app
factory, never in the master.

Graceful shutdown: on SIGTERM the master closes the listening socket (new connections are
refused, so nginx or the gateway try elsewhere) and each worker stops accepting, finishes the
requests it holds within `graceful_timeout`, and exits. The supervisor waits longer than that
(stopwaitsecs 25 s) before it kills. A graceful reload (`make reload`) instead adds new
workers, waits until each has loaded the app (the marker written by `post_worker_init`),
then retires the old ones: the socket never closes and no request waits for a boot.
"""

import os
from pathlib import Path

# Imported under another name: gunicorn reads every module-level name of this file that
# matches one of its settings, and `config` is one (the config file path).
from common import config as murmur_config

bind = murmur_config.bind_address(murmur_config.PORT.read(default=0))
workers = murmur_config.GUNICORN_WORKERS.read()
threads = murmur_config.GUNICORN_THREADS.read()
worker_class = "gthread"
timeout = 30
# In-flight requests get this long to finish after SIGTERM; below the supervisor's
# stopwaitsecs (25 s), so a stop never kills a worker that is still answering.
graceful_timeout = 20
# Above nginx's upstream keepalive_timeout (20 s): the caller, not the server, drops an idle
# connection, so no request is ever sent on a connection the server is closing.
keepalive = 30
# Above nginx's own limit (large_client_header_buffers), so an overlong URI is refused by
# nginx as a problem+json 414, never by gunicorn as an HTML 400.
limit_request_line = 8190
accesslog = None  # nginx and the JSON app logs carry every request
errorlog = "-"




def booted_workers_dir() -> Path | None:
    """Where each worker of this process marks that it has loaded the app (None: nowhere)."""
    process = os.environ.get("MURMUR_PROCESS")
    return murmur_config.murmur_home() / "run" / "gunicorn" / process if process else None


def on_starting(server):  # noqa: ARG001 - gunicorn hook signature
    """Clear stale multiprocess metric files and worker markers from an earlier run."""
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if path:
        os.makedirs(path, exist_ok=True)
        for name in os.listdir(path):
            if name.endswith(".db"):
                os.remove(os.path.join(path, name))
    markers = booted_workers_dir()
    if markers:
        markers.mkdir(parents=True, exist_ok=True)
        for marker in markers.iterdir():
            marker.unlink(missing_ok=True)


def post_worker_init(worker):
    """Mark this worker as booted: the app is loaded and it is about to accept."""
    markers = booted_workers_dir()
    if markers:
        markers.mkdir(parents=True, exist_ok=True)
        (markers / str(worker.pid)).touch()


def child_exit(server, worker):  # noqa: ARG001 - gunicorn hook signature
    """Drop a dead worker's live gauges from the merged metrics, and its boot marker."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
    markers = booted_workers_dir()
    if markers:
        (markers / str(worker.pid)).unlink(missing_ok=True)
