"""The gateway's WSGI app: `gunicorn 'gateway.entrypoints.app:create_app()'`."""

from __future__ import annotations

from typing import Any, Callable, Iterable

from flask import Flask
from flask_openapi3 import Info, OpenAPI
from pydantic import ValidationError

from common import resilience
from common.problems import validation_failed
from common.web import create_base_app

from gateway.bootstrap import bootstrap
from gateway.config import GatewayConfig
from gateway.entrypoints import errors, views
from gateway.entrypoints.schemas import ProblemDetails

SERVICE = "gateway"
API_VERSION = "1.0.0"
DESCRIPTION = """The public API of Murmur, a Twitter-style microservices reference system.

Errors are RFC 9457 `application/problem+json`; invalid input answers 422 with
`errors: [{field, message}]`. Lists are cursor-paginated: `?limit=1..100&cursor=<opaque>`
answers `{items, next_cursor}`. Ids are strings. A response built from a fallback carries
`Murmur-Degraded: <reason>`. 429 (rate limit) and 503 (a dependency is down, or did not
answer within the request's time budget of a few seconds) come with `Retry-After`, 401
with `WWW-Authenticate`. The edge answers some requests before the API sees them, in
problem+json too: 400, 408, 413, 414, 431 (declared on each operation), 405 with `Allow`
for a method no route of the API has (such as TRACE), 404 for a path outside it.
Profiles and tweets carry strong ETags (RFC 9110): `If-None-Match` answers 304 while they
are unchanged, and a profile edit needs `If-Match` (412 when stale, 428 without)."""

# WSGI environ key of the header that carries a request's deadline between services.
DEADLINE_ENVIRON_KEY = "HTTP_" + resilience.DEADLINE_HEADER.upper().replace("-", "_")


def field_name(loc: tuple[Any, ...]) -> str:
    """The dotted name of the field a pydantic error location points at."""
    return ".".join(str(part) for part in loc) or "body"


def reject_invalid(error: ValidationError) -> None:
    """flask-openapi3's validation hook: answer 422 problem+json with per-field errors."""
    raise validation_failed([{"field": field_name(e["loc"]), "message": e["msg"]}
                             for e in error.errors(include_url=False)])


class IgnoreClientDeadline:
    """WSGI middleware dropping a client's `Murmur-Deadline` before the app sees it.

    The deadline header is trusted between Murmur's services only. At the edge, a client's
    value (on a clock that is not ours) would set the budget of every downstream call, so
    the gateway always starts each request from its own budget.
    """

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        environ.pop(DEADLINE_ENVIRON_KEY, None)
        return self.app(environ, start_response)


def create_app(config: GatewayConfig | None = None, **overrides: object) -> Flask:
    """The gateway app; `overrides` replace adapters by name (see gateway.bootstrap)."""
    service = bootstrap(config, **overrides)
    app = OpenAPI(
        SERVICE,
        info=Info(title="Murmur API", version=API_VERSION, description=DESCRIPTION),
        security_schemes={"bearerAuth": {"type": "http", "scheme": "bearer",
                                         "bearerFormat": "JWT"}},
        validation_error_status=422,
        validation_error_model=ProblemDetails,
        validation_error_callback=reject_invalid,
        doc_ui=False,  # the document is served by views.openapi_document under /api/v1
    )
    create_base_app(SERVICE, service.checks, app=app,
                    deadline_budget=service.config.request_budget,
                    errors=errors.mapping(service.config.retry_after))
    app.wsgi_app = IgnoreClientDeadline(app.wsgi_app)  # type: ignore[method-assign]
    app.extensions["gateway"] = service
    app.url_map.converters["username"] = views.UsernameConverter
    app.register_api(views.api)
    views.complete_document(app.paths)
    # Only the public API belongs in the document; /healthz, /readyz and /metrics are
    # operational endpoints that nginx never exposes.
    for path in [p for p in app.paths if not p.startswith(views.PREFIX)]:
        del app.paths[path]
    return app
