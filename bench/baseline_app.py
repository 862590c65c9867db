"""The read-path baseline: one hop doing the same Redis and Cassandra reads directly.

`GET /timeline/<user_id>?limit=N` runs the timeline service's own home-timeline handler
(home ids from Redis, the celebrity merge, tweet hydration from the cache and Cassandra,
authors from timeline's own projection) in one process with no nginx, gateway or
service-to-service hop. `bench/reads.py` compares the real path to it.
"""

from __future__ import annotations

import threading

from flask import Flask, jsonify, request

from common.cursors import Cursors
from timeline import bootstrap as timeline_bootstrap
from timeline import config as timeline_config
from timeline.entrypoints import views
from timeline.service_layer import handlers


def create_app(config=None) -> Flask:  # noqa: ARG001 - same factory shape as the services
    """A bare Flask app over the timeline's home-timeline handler."""
    app = Flask("baseline")
    # Its pages carry a sealed cursor, as the service's do.
    app.extensions["cursors"] = Cursors(timeline_config.load().cursor_key)
    wired: dict = {}
    lock = threading.Lock()

    def service():
        # Built on first use, after gunicorn forked, like the services do.
        with lock:
            if not wired:
                wired["timeline"] = timeline_bootstrap.bootstrap()
        return wired["timeline"]

    @app.get("/timeline/<int:user_id>")
    def home(user_id: int):
        limit = int(request.args.get("limit", 20))
        page = handlers.show_home_timeline(user_id, limit, None, service().ports)
        return views.render_page(page, views.HOME, user_id)  # the service's own rendering

    @app.get("/readyz")
    def ready():
        for check in service().checks.values():
            check()
        return jsonify(status="ready")

    return app
