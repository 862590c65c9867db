"""The Flask plumbing every Murmur HTTP service shares.

`create_base_app` gives a Flask app with: request ids (from X-Request-ID or minted),
problem+json for every error, request metrics by route, a trace span per request (the
tracing SDK is set up here, in the worker, after gunicorn forked), `/healthz`, `/readyz`
(runs the service's dependency checks) and `/metrics`. Services add their own blueprints
on top. `ProbeServer` serves the same probes for processes without an HTTP API.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import threading
import time
import uuid
from typing import Any, Callable, Mapping

from flask import Flask, Response, g, jsonify, request
from flask.json.provider import DefaultJSONProvider
from opentelemetry import trace
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
    REGISTRY,
)
from werkzeug.exceptions import HTTPException

from common import logs, resilience, tracing
from common.cursors import InvalidCursor
from common.problems import PROBLEM_JSON, Problem, validation_failed
from common.rules import InvalidInput

log = logging.getLogger("murmur.web")

REQUESTS = Counter("murmur_http_requests_total", "HTTP requests served",
                   ["service", "method", "route", "status"])
LATENCY = Histogram("murmur_http_request_duration_seconds", "HTTP request duration",
                    ["service", "method", "route"],
                    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))

# Answers served from a fallback (`Murmur-Degraded: <reason>[, <reason>]`). The reasons are a
# fixed set in the services' code (a peer's are passed on by the gateway), so the label is
# bounded.
DEGRADED_ANSWERS = Counter("murmur_degraded_responses_total",
                           "Answers served from a fallback, by route and reason",
                           ["service", "route", "reason"])
DEGRADED_HEADER = "Murmur-Degraded"

ReadinessCheck = Callable[[], None]  # raises when the dependency does not answer

# No Murmur body nests deeper than a few levels; Python's parser recurses once per level
# and gives up (RecursionError, a 500) around a thousand, which a 2 KB body reaches.
MAX_JSON_DEPTH = 32
_JSON_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def json_depth_exceeds(text: str | bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether a JSON text opens more than `limit` arrays and objects inside each other."""
    if isinstance(text, (bytes, bytearray)):
        text = bytes(text).decode("utf-8", "replace")
    if text.count("[") + text.count("{") <= limit:
        return False  # the common case, without a scan
    depth = 0
    for token in _JSON_TOKENS.finditer(text):
        bracket = token.group()
        if bracket in "[{":
            depth += 1
            if depth > limit:
                return True
        elif bracket in "]}":
            depth -= 1
    return False


class BoundedJSONProvider(DefaultJSONProvider):
    """Flask's JSON, refusing a body nested deeper than MAX_JSON_DEPTH before parsing it."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        if json_depth_exceeds(s):
            raise validation_failed([{"field": "body", "message":
                                      f"nests arrays and objects more than {MAX_JSON_DEPTH} deep"}])
        return super().loads(s, **kwargs)


def problem_response(problem: Problem) -> Response:
    """Render a Problem as an application/problem+json response."""
    resp = jsonify(problem.to_dict())
    resp.status_code = problem.status
    resp.mimetype = PROBLEM_JSON
    for name, value in problem.headers.items():
        resp.headers[name] = value
    return resp


def metrics_payload() -> bytes:
    """Prometheus text for this process, or for all gunicorn workers in multiprocess mode."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest(REGISTRY)


ErrorMapping = Mapping[type, Callable[[Any], Problem]]

# The errors of the shared rules, answered the same way by every service.
SHARED_ERRORS: dict[type, Callable[[Any], Problem]] = {
    InvalidInput: lambda exc: validation_failed(exc.errors, exc.detail),
    InvalidCursor: lambda exc: validation_failed([{"field": "cursor", "message": str(exc)}]),
}


def create_base_app(service: str, checks: dict[str, ReadinessCheck] | None = None, *,
                    app: Flask | None = None, deadline_budget: float | None = None,
                    errors: ErrorMapping | None = None) -> Flask:
    """A Flask app with Murmur's shared behaviour; `checks` back /readyz.

    Pass `app` to give the shared behaviour to an app made elsewhere (e.g. a Flask
    subclass that documents its routes); by default a plain Flask app is made.
    `errors` is the service's one mapping from its domain's exceptions to problems:
    the domain raises plain exceptions and only this edge knows about HTTP.
    """
    logs.configure(service)
    if tracing.wanted():
        tracing.setup(service)
    app = app if app is not None else Flask(service)
    app.json = BoundedJSONProvider(app)
    # First, so the request's span is current in every hook registered below.
    tracing.instrument_app(app)
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.config["MURMUR_SERVICE"] = service
    readiness = dict(checks or {})
    app.extensions["murmur_readiness"] = readiness

    @app.before_request
    def _start() -> None:
        g.started = time.perf_counter()
        rid = request.headers.get("X-Request-ID") or uuid.uuid4().hex
        g.request_id = rid
        g.request_id_token = logs.request_id_var.set(rid)
        trace.get_current_span().set_attribute("murmur.request_id", rid)
        # The caller's remaining budget (Murmur-Deadline), else this service's own budget.
        g.deadline_token = resilience.start_deadline(
            request.headers.get(resilience.DEADLINE_HEADER), deadline_budget)

    @app.after_request
    def _finish(resp: Response) -> Response:
        route = request.url_rule.rule if request.url_rule else "unmatched"
        elapsed = time.perf_counter() - g.get("started", time.perf_counter())
        REQUESTS.labels(service, request.method, route, str(resp.status_code)).inc()
        LATENCY.labels(service, request.method, route).observe(elapsed)
        for reason in filter(None, (r.strip() for r in
                                    resp.headers.get(DEGRADED_HEADER, "").split(","))):
            DEGRADED_ANSWERS.labels(service, route, reason).inc()
        if "request_id" in g:
            resp.headers["X-Request-ID"] = g.request_id
        return resp

    @app.teardown_request
    def _reset(_exc: BaseException | None) -> None:
        token = g.pop("request_id_token", None)
        if token is not None:
            logs.request_id_var.reset(token)
        deadline = g.pop("deadline_token", None)
        if deadline is not None:
            resilience.end_deadline(deadline)

    @app.errorhandler(Problem)
    def _problem(problem: Problem) -> Response:
        return problem_response(problem)

    for kind, to_problem in {**SHARED_ERRORS, **(errors or {})}.items():
        app.register_error_handler(
            kind, lambda exc, to_problem=to_problem: problem_response(to_problem(exc)))

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        problem = Problem(exc.code or 500, exc.description or "")
        resp = problem_response(problem)
        if exc.code == 405 and exc.valid_methods:  # type: ignore[attr-defined]
            resp.headers["Allow"] = ", ".join(exc.valid_methods)  # type: ignore[attr-defined]
        return resp

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return problem_response(Problem(500, "An unexpected error occurred."))

    @app.get("/healthz")
    def healthz() -> Response:
        return jsonify(status="ok", service=service)

    @app.get("/readyz")
    def readyz() -> Response:
        failures = {}
        for name, check in readiness.items():
            try:
                check()
            except Exception as exc:  # noqa: BLE001 - any failure means not ready
                failures[name] = f"{type(exc).__name__}: {exc}"
        if failures:
            return problem_response(Problem(503, "Dependencies are not answering.",
                                            errors=[{"field": k, "message": v}
                                                    for k, v in failures.items()],
                                            headers={"Retry-After": "1"}))
        return jsonify(status="ready", service=service, checks=sorted(readiness))

    @app.get("/metrics")
    def metrics() -> Response:
        return Response(metrics_payload(), mimetype=CONTENT_TYPE_LATEST)

    return app


def listening_socket(host: str, port: int) -> socket.socket:
    """A socket listening on host:port as werkzeug's server opens one; OSError if it cannot
    (werkzeug itself would print the error and exit the process)."""
    from werkzeug.serving import LISTEN_QUEUE, get_sockaddr, select_address_family

    family = select_address_family(host, port)
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(get_sockaddr(host, port, family))
        sock.listen(LISTEN_QUEUE)
    except BaseException:
        sock.close()
        raise
    return sock


class ProbeServer:
    """/healthz, /readyz and /metrics of a process without an HTTP API, on a thread.

    Raises OSError when it cannot listen on host:port (the port is taken, the host is not
    this machine's); `port` is the one it listens on (port 0 picks a free one).
    """

    def __init__(self, service: str, host: str, port: int,
                 checks: dict[str, ReadinessCheck] | None = None) -> None:
        from werkzeug.serving import make_server

        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no access log per probe
        # Bound here, not by make_server: werkzeug answers a failed bind with sys.exit(1).
        sock = listening_socket(host, port)
        try:
            self.server = make_server(host, port, create_base_app(service, checks),
                                      threaded=True, fd=sock.fileno())
        finally:
            sock.close()  # the server listens on its own duplicate of the socket
        self.port: int = self.server.port
        self.thread = threading.Thread(target=self.server.serve_forever, name="probes",
                                       daemon=True)

    def start(self) -> None:
        """Serve on the background thread."""
        self.thread.start()

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self.server.shutdown()
        self.server.server_close()


def serve_probes(service: str, host: str, port: int,
                 checks: dict[str, ReadinessCheck] | None = None) -> ProbeServer | None:
    """Start a ProbeServer; None (with a warning) if the port is taken, e.g. by a standby:
    the process then runs on without /healthz, /readyz and /metrics."""
    try:
        probes = ProbeServer(service, host, port, checks)
    except OSError as exc:
        log.warning("%s runs without probes (no /healthz, /readyz, /metrics): cannot listen "
                    "on %s:%d: %s", service, host, port, exc)
        return None
    probes.start()
    return probes
