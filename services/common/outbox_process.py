"""A relay as a process: logging, tracing, SIGTERM/SIGINT, probes and /metrics.

Each service's relay entrypoint wires its relay (`common.outbox.Relay` on its store's
adapters) and hands it to `run`, which relays until the process is told to stop, then
closes the relay and every client it was given.
"""

from __future__ import annotations

import logging
import signal
import threading
from typing import Any, Callable

from common import config as common_config
from common import logs, tracing
from common.outbox import Relay
from common.service import Service
from common.web import serve_probes

log = logging.getLogger("murmur.outbox")


def run(process: str, build: Callable[[], Service[Any, Relay]]) -> None:
    """Run a relay process until SIGTERM or SIGINT, serving probes and /metrics.

    `build` returns the wired relay as a `Service` whose ports are the `Relay` (called
    once logging and tracing are set up, so the clients it makes are traced); its closers
    run after the relay has stopped, flushed the producer and given its leases up.
    """
    logs.configure(process)
    tracing.setup(process)
    stop = threading.Event()

    def _stop(signum: int, _frame: Any) -> None:
        log.info("signal %d received, stopping", signum)
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _stop)
    service = build()
    probes = serve_probes(process, common_config.bind_host(),
                          common_config.service_port(process), service.checks)
    try:
        service.ports.run(stop)
    finally:
        if probes is not None:
            probes.stop()
        service.ports.close()
        service.close()
        tracing.shutdown()
