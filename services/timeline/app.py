"""The timeline service's Flask app: `gunicorn 'timeline.app:create_app()'`."""

from __future__ import annotations

import atexit
import logging
from typing import Any

from cassandra import DriverException, RequestExecutionException
from cassandra.cluster import NoHostAvailable
from flask import Flask, Response
from redis import RedisError

from common import resilience
from common.problems import unavailable
from common.web import create_base_app, problem_response
from timeline import config as timeline_config
from timeline.bootstrap import Services, bootstrap
from timeline.domain import DependencyUnavailable
from timeline.views import bp

log = logging.getLogger("murmur.timeline")

# A store that does not answer in time is a 503 with Retry-After, never a 500. Most reach
# here as DependencyUnavailable; these are what a call outside the adapters' guards (the
# first connect, preparing a statement, leasing a worker id) may raise.
STORE_ERRORS = (NoHostAvailable, DriverException, RequestExecutionException, RedisError,
                resilience.CircuitBreakerError)


def create_app(config: timeline_config.Config | None = None, **overrides: Any) -> Flask:
    """The timeline app; `overrides` go to `bootstrap` (tests pass fakes through them)."""
    services = bootstrap(config, **overrides)
    # Close store clients when a worker exits, before the interpreter tears threads down.
    atexit.register(services.close)
    app = create_base_app("timeline", checks=services.checks,
                          deadline_budget=services.config.request_budget)
    app.extensions["timeline"] = services
    app.register_blueprint(bp)

    @app.errorhandler(DependencyUnavailable)
    def _dependency_down(exc: DependencyUnavailable) -> Response:
        # Logged at info: while a breaker is open this answers every request, fast.
        log.info("dependency unavailable: %s", exc)
        return problem_response(unavailable("A dependency is not answering; try again.",
                                            exc.retry_after))

    @app.errorhandler(resilience.DeadlineExceeded)
    def _out_of_time(exc: resilience.DeadlineExceeded) -> Response:
        return problem_response(unavailable("The request ran out of time; try again."))

    def _store_down(exc: Exception) -> Response:
        log.warning("store unavailable: %s: %s", type(exc).__name__, exc)
        return problem_response(unavailable("A data store is not answering; try again."))

    for error in STORE_ERRORS:
        app.register_error_handler(error, _store_down)

    _lease_worker_id(services)
    return app


def _lease_worker_id(services: Services) -> None:
    """Lease the snowflake worker id now rather than on the first post.

    A lease stays usable for a while without Redis, so a worker that holds one keeps
    accepting tweets through a short Redis outage; leasing lazily would make the first
    post of a fresh worker depend on Redis.
    """
    try:
        services.ports.ids.next_id()
    except Exception as exc:  # noqa: BLE001 - the first post leases it instead
        log.warning("worker id not leased at start: %s: %s", type(exc).__name__, exc)
