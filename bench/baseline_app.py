"""The read-path baseline: one hop doing the same Redis and hydration reads directly.

`GET /timeline/<user_id>?limit=N` runs the timeline service's own home-timeline handler
(home ids from Redis, the celebrity merge, tweet hydration from the cache and Cassandra)
and hydrates authors from the users service's profile cache, all in one process with no
nginx, gateway or service-to-service hop. `bench/reads.py` compares the real path to it.
"""

from __future__ import annotations

import threading

from flask import Flask, jsonify, request

from timeline import bootstrap as timeline_bootstrap
from timeline import domain as timeline_domain
from users.adapters.redis_cache import RedisProfileCache


def create_app(config=None) -> Flask:  # noqa: ARG001 - same factory shape as the services
    """A bare Flask app over the timeline handler and the profile cache."""
    app = Flask("baseline")
    services = {}
    lock = threading.Lock()

    def wired():
        # Built on first use, after gunicorn forked, like the services do.
        with lock:
            if services:
                return services["timeline"], services["profiles"]
            timeline = timeline_bootstrap.bootstrap()
            services["timeline"] = timeline
            services["profiles"] = RedisProfileCache(timeline.redis, ttl=300)
        return services["timeline"], services["profiles"]

    @app.get("/timeline/<int:user_id>")
    def home(user_id: int):
        timeline, profiles = wired()
        limit = int(request.args.get("limit", 20))
        page = timeline_domain.read_home_timeline(user_id, limit, None, timeline.ports)
        authors = profiles.get_many(sorted({t.author_id for t in page.items}))
        items = []
        for tweet in page.items:
            author = authors.get(tweet.author_id)
            items.append({
                "id": str(tweet.id),
                "author": {"id": str(tweet.author_id),
                           "username": author.username if author else None,
                           "display_name": author.display_name if author else None},
                "text": tweet.text,
                "created_at": tweet.created_at.isoformat(),
            })
        return jsonify(items=items, next_cursor=page.next_cursor)

    @app.get("/readyz")
    def ready():
        timeline, _ = wired()
        for check in timeline.checks.values():
            check()
        return jsonify(status="ready")

    return app
