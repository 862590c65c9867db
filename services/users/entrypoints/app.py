"""The users HTTP service:
`gunicorn -c python:common.gunicorn_conf 'users.entrypoints.app:create_app()'`."""

from __future__ import annotations

import atexit

from flask import Flask

from common.cursors import Cursors
from common.service import Service
from common.web import create_base_app
from users.bootstrap import bootstrap
from users.config import UsersConfig
from users.entrypoints import errors, views


def create_app(config: UsersConfig | None = None, *, service: Service | None = None) -> Flask:
    """The Flask app, wired to its stores (connections open lazily, after the fork).

    Tests may pass a `service` they bootstrapped with overrides; it is then theirs to close.
    Without the page cursor key it does not start (`common.cursors.MissingCursorKey`).
    """
    if service is None:
        service = bootstrap(config)
        atexit.register(service.close)
    page_cursors = Cursors(service.config.cursor_key)
    app = create_base_app("users", service.checks, errors=errors.MAPPING)
    app.extensions["users"] = service
    app.extensions["cursors"] = page_cursors
    app.register_blueprint(views.bp)
    return app
