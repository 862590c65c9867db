"""The timeline service's Flask app: `gunicorn 'timeline.entrypoints.app:create_app()'`."""

from __future__ import annotations

import atexit
import logging
from typing import Any

from flask import Flask

from common.cursors import Cursors
from common.service import Service
from common.web import create_base_app
from timeline import config as timeline_config
from timeline.bootstrap import bootstrap
from timeline.entrypoints.errors import ERRORS
from timeline.entrypoints.views import bp

log = logging.getLogger("murmur.timeline")


def create_app(config: timeline_config.Config | None = None, **overrides: Any) -> Flask:
    """The timeline app; `overrides` go to `bootstrap` (tests pass fakes through them).
    Without the page cursor key it does not start (`common.cursors.MissingCursorKey`)."""
    service = bootstrap(config, **overrides)
    page_cursors = Cursors(service.config.cursor_key)
    # Close store clients when a worker exits, before the interpreter tears threads down.
    atexit.register(service.close)
    app = create_base_app("timeline", checks=service.checks,
                          deadline_budget=service.config.request_budget, errors=ERRORS)
    app.extensions["timeline"] = service
    app.extensions["cursors"] = page_cursors
    app.register_blueprint(bp)
    _lease_worker_id(service)
    return app


def _lease_worker_id(service: Service) -> None:
    """Lease the snowflake worker id now rather than on the first post.

    A lease stays usable for a while without Redis, so a worker that holds one keeps
    accepting tweets through a short Redis outage; leasing lazily would make the first
    post of a fresh worker depend on Redis.
    """
    try:
        service.ports.ids.next_id()
    except Exception as exc:  # noqa: BLE001 - the first post leases it instead
        log.warning("worker id not leased at start: %s: %s", type(exc).__name__, exc)
