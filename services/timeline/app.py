"""The timeline service's Flask app: `gunicorn 'timeline.app:create_app()'`."""

from __future__ import annotations

import atexit
import logging
from typing import Any

from cassandra import DriverException, RequestExecutionException
from cassandra.cluster import NoHostAvailable
from flask import Flask, Response
from redis import RedisError

from common.problems import unavailable
from common.web import create_base_app, problem_response
from timeline import config as timeline_config
from timeline.bootstrap import bootstrap
from timeline.views import bp

log = logging.getLogger("murmur.timeline")

# A store that does not answer in time is a 503 with Retry-After, never a 500.
STORE_ERRORS = (NoHostAvailable, DriverException, RequestExecutionException, RedisError)


def create_app(config: timeline_config.Config | None = None, **overrides: Any) -> Flask:
    """The timeline app; `overrides` go to `bootstrap` (tests pass fakes through them)."""
    services = bootstrap(config, **overrides)
    # Close store clients when a worker exits, before the interpreter tears threads down.
    atexit.register(services.close)
    app = create_base_app("timeline", checks=services.checks)
    app.extensions["timeline"] = services
    app.register_blueprint(bp)

    def _store_down(exc: Exception) -> Response:
        log.warning("store unavailable: %s: %s", type(exc).__name__, exc)
        return problem_response(unavailable("A data store is not answering; try again."))

    for error in STORE_ERRORS:
        app.register_error_handler(error, _store_down)

    return app
