"""The users HTTP service: `gunicorn -c python:common.gunicorn_conf 'users.app:create_app()'`."""

from __future__ import annotations

import atexit
import logging

import psycopg
import redis
from flask import Flask, Response
from psycopg_pool import PoolTimeout

from common.problems import unavailable
from common.resilience import DeadlineExceeded
from common.web import create_base_app, problem_response
from users import views
from users.bootstrap import Wiring, bootstrap
from users.config import UsersConfig

log = logging.getLogger("murmur.users")


def create_app(config: UsersConfig | None = None, wiring: Wiring | None = None) -> Flask:
    """The Flask app, wired to its stores (connections open lazily, after the fork)."""
    wiring = wiring or bootstrap(config)
    app = create_base_app("users", wiring.checks)
    app.extensions["users"] = wiring
    app.register_blueprint(views.bp)

    @app.errorhandler(PoolTimeout)
    @app.errorhandler(psycopg.OperationalError)
    @app.errorhandler(redis.ConnectionError)
    @app.errorhandler(redis.TimeoutError)
    def _store_down(exc: Exception) -> Response:
        # A store that does not answer is a 503 the gateway can retry or route around,
        # not a 500 that reads like a bug.
        log.warning("store unavailable: %s: %s", type(exc).__name__, exc)
        return problem_response(unavailable("A data store is not answering; try again."))

    @app.errorhandler(DeadlineExceeded)
    def _too_late(exc: DeadlineExceeded) -> Response:
        # The caller has stopped waiting; say so cheaply instead of finishing the work.
        return problem_response(unavailable("The request's deadline passed; try again."))

    atexit.register(wiring.close)
    return app
