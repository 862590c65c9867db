"""OpenTelemetry tracing shared by every Murmur process.

One trace follows a post from the gateway through users/timeline, across Kafka and into
fanout and Redis:

- HTTP: Flask servers and urllib3 clients (which `requests` rides on) are instrumented, so
  `traceparent` travels on every internal call.
- Kafka: the outbox row keeps the trace context of the request that wrote it
  (`current_trace_headers`); the relay publishes each row under a PRODUCER span continuing
  that context (`start_producer_span`) and puts the producer span's context in the record
  headers; the consumer continues it (`consumer_span`). The kafka-python instrumentation is
  not used: it ends its consumer span before the handler runs, so nothing would nest in it.
- Stores: Redis through its instrumentation; Cassandra through a wrapper of
  `Session.execute_async` whose span ends when the response arrives (the upstream
  instrumentation ends it when the request is merely sent).

`setup` installs the SDK once per process and patches the client libraries then, never at
import: importing this module sets nothing up, and the process's tracing state is the
OpenTelemetry global provider itself (and a mark on what was patched). It must run after
gunicorn forks, because the BatchSpanProcessor's export thread does not survive a fork:
gunicorn (without `preload_app`) calls the app factory, and so `common.web.create_base_app`,
in each worker after the fork, and the other processes call `setup` from their `main`.

The standard variables apply: OTEL_SDK_DISABLED, OTEL_SERVICE_NAME (default: the service
name), OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_EXPORTER (default `file`; the local platform
sets `zipkin`, which posts to OTEL_EXPORTER_ZIPKIN_ENDPOINT; also `console`, `none`, or any
exporter installed under the `opentelemetry_traces_exporter` entry point, e.g. `otlp`),
OTEL_TRACES_SAMPLER(_ARG), OTEL_PROPAGATORS, OTEL_BSP_* (the schedule delay defaults to
500 ms here instead of 5 s, so a trace is readable a moment after it ends) and
OTEL_PYTHON_FLASK_EXCLUDED_URLS (default: the probe and metrics endpoints).

The `file` exporter appends one JSON object per span to
`$MURMUR_HOME/traces/<process>.jsonl`; `local/trace_tree.py` (`make trace`) prints a trace from
those files as a tree.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from common import config

log = logging.getLogger("murmur.tracing")

TRACER_NAME = "murmur"
DEFAULT_SCHEDULE_DELAY_MS = 500
DEFAULT_EXCLUDED_URLS = "healthz,readyz,metrics"
DEFAULT_FILE_MAX_BYTES = 256 * 1024 * 1024
# OTEL_TRACES_EXPORTER's standard names, and the entry points the pinned packages register
# under them (`zipkin_json`, and OTLP over HTTP as `otlp_proto_http`).
EXPORTER_ALIASES = {"zipkin": "zipkin_json", "otlp": "otlp_proto_http"}
EXPORT_WARNING_INTERVAL = 60.0  # seconds between two warnings that spans cannot be exported

_PATCHED = "__murmur_traced__"  # marks a function this module wrapped


# ------------------------------------------------------------------------------ setup


def wanted() -> bool:
    """Whether this process should install the SDK.

    Processes started by the platform (named by MURMUR_PROCESS) trace, and so does any
    process given an explicit OTEL_TRACES_EXPORTER; an app built inside a test run does
    not, so tests neither write span files nor put `traceparent` on their own requests.
    """
    if config.env_bool("OTEL_SDK_DISABLED", False):
        return False
    return bool(os.environ.get("MURMUR_PROCESS") or os.environ.get("OTEL_TRACES_EXPORTER"))


def process_name(service: str) -> str:
    """The name this process's span file is called by (MURMUR_PROCESS, else the service)."""
    return config.env("MURMUR_PROCESS", service)


def traces_dir() -> Path:
    """Folder of the span files written by the `file` exporter."""
    return Path(config.env("MURMUR_TRACES_DIR", str(config.murmur_home() / "traces")))


def setup(service: str, *, exporter: Any = None) -> Any:
    """Install the SDK in this process (once) and instrument its clients; the provider.

    Returns None when tracing is disabled (OTEL_SDK_DISABLED=true); the OpenTelemetry API
    then stays a no-op and every helper here costs next to nothing. Called at process start
    (from the process's first thread), never at import.
    """
    if config.env_bool("OTEL_SDK_DISABLED", False):
        return None
    provider = installed_provider()
    if provider is None:
        provider = build_provider(service, exporter)
        trace.set_tracer_provider(provider)
        log.info("tracing to %s", _exporter_name(), extra={"fields": {
            "otel_service": provider.resource.attributes.get("service.name")}})
    instrument_clients()
    return provider


def installed_provider() -> Any:
    """The SDK TracerProvider installed in this process, or None (tracing not set up)."""
    provider = trace.get_tracer_provider()
    if type(provider).__module__.startswith("opentelemetry.sdk"):
        return provider
    return None


def build_provider(service: str, exporter: Any = None) -> Any:
    """A TracerProvider for `service` exporting through a batch processor."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.sampling import _get_from_env_or_default

    attributes = {"murmur.process": process_name(service)}
    if not os.environ.get("OTEL_SERVICE_NAME"):
        attributes["service.name"] = service
    provider = TracerProvider(resource=Resource.create(attributes),
                              sampler=SkipOrphanClientSpans(_get_from_env_or_default()))
    exporter = exporter if exporter is not None else make_exporter(service)
    if exporter is not None:
        provider.add_span_processor(BatchSpanProcessor(
            exporter, schedule_delay_millis=config.env_float("OTEL_BSP_SCHEDULE_DELAY",
                                                             DEFAULT_SCHEDULE_DELAY_MS)))
    return provider


def _exporter_name() -> str:
    return config.env("OTEL_TRACES_EXPORTER", "file").split(",")[0].strip().lower()


def make_exporter(service: str) -> Any:
    """The span exporter OTEL_TRACES_EXPORTER names (None for `none`)."""
    name = _exporter_name()
    if name == "none":
        return None
    if name == "file":
        return FileSpanExporter(traces_dir() / f"{process_name(service)}.jsonl")
    if name == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    from opentelemetry.util._importlib_metadata import entry_points

    found = list(entry_points(group="opentelemetry_traces_exporter",
                              name=EXPORTER_ALIASES.get(name, name)))
    if not found:
        raise RuntimeError(f"OTEL_TRACES_EXPORTER={name!r}: no such exporter is installed")
    return TolerantExporter(found[0].load()(), name)


class TolerantExporter:
    """Wraps a network exporter so that a collector that is down costs one warning a minute.

    The batch processor logs every failed export with its stack trace, twice a second here;
    a stopped trace viewer must not bury a service's own log lines, nor stop its work.
    """

    def __init__(self, delegate: Any, name: str, clock: Any = None) -> None:
        self.delegate = delegate
        self.name = name
        self._clock = clock or time.monotonic
        self._warned_at: float | None = None
        self.failures = 0

    def export(self, spans: Sequence[Any]) -> Any:
        """Export through the delegate; FAILURE (and a rare warning) when it raises."""
        from opentelemetry.sdk.trace.export import SpanExportResult

        try:
            return self.delegate.export(spans)
        except Exception as exc:  # noqa: BLE001 - any transport error: the spans are lost
            self.failures += 1
            now = self._clock()
            if self._warned_at is None or now - self._warned_at >= EXPORT_WARNING_INTERVAL:
                self._warned_at = now
                log.warning("cannot export spans to %s (%s); %d batches lost so far",
                            self.name, type(exc).__name__, self.failures)
            return SpanExportResult.FAILURE

    def shutdown(self) -> None:
        """Shut the delegate down."""
        self.delegate.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Flush the delegate."""
        return self.delegate.force_flush(timeout_millis)


def shutdown() -> None:
    """Export what is buffered and stop the export thread (at process exit)."""
    provider = installed_provider()
    if provider is not None:
        provider.shutdown()


def instrument_clients() -> None:
    """Instrument the client libraries this process has imported (once each).

    OTEL_PYTHON_DISABLED_INSTRUMENTATIONS (comma-separated: urllib3, redis, cassandra)
    leaves some out. What is instrumented is known from the libraries themselves (the
    instrumentors' own flag, a mark on the wrapped Cassandra call), not kept here.
    """
    disabled = {n.strip() for n in config.env("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS",
                                              "").split(",")}
    for name, instrument in (("urllib3", _instrument_urllib3), ("redis", _instrument_redis),
                             ("cassandra", _instrument_cassandra)):
        if name in disabled or name not in sys.modules:
            continue
        instrument()


def instrumented() -> set[str]:
    """The client libraries instrumented in this process (urllib3, redis, cassandra)."""
    found = set()
    if "urllib3" in sys.modules and _instrumentor("urllib3").is_instrumented_by_opentelemetry:
        found.add("urllib3")
    if "redis" in sys.modules and _instrumentor("redis").is_instrumented_by_opentelemetry:
        found.add("redis")
    cluster = sys.modules.get("cassandra.cluster")
    if cluster is not None and getattr(cluster.Session.execute_async, _PATCHED, False):
        found.add("cassandra")
    return found


def _instrumentor(name: str) -> Any:
    # The instrumentors are singletons that remember whether they have instrumented.
    if name == "urllib3":
        from opentelemetry.instrumentation.urllib3 import URLLib3Instrumentor

        return URLLib3Instrumentor()
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    return RedisInstrumentor()


def _instrument_urllib3() -> None:
    instrumentor = _instrumentor("urllib3")
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument()


def _instrument_redis() -> None:
    instrumentor = _instrumentor("redis")
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument()


def _instrument_cassandra() -> None:
    from cassandra.cluster import Session

    original = Session.execute_async
    if getattr(original, _PATCHED, False):
        return
    tracer = trace.get_tracer("murmur.cassandra")

    def execute_async(self, query, *args, **kwargs):
        statement = _cql_text(query)
        span = tracer.start_span(f"cassandra {statement.split(' ', 1)[0].upper() or 'QUERY'}",
                                 kind=SpanKind.CLIENT, attributes={
                                     "db.system.name": "cassandra",
                                     "db.namespace": self.keyspace or "",
                                     "db.query.text": statement[:300]})
        try:
            future = original(self, query, *args, **kwargs)
        except Exception as exc:
            record_error(span, exc)
            span.end()
            raise

        # Ended when the first answer (or the error) arrives, on the driver's event loop;
        # fetching further pages calls the callbacks again.
        def answered(_rows) -> None:
            if span.is_recording():  # false once ended (and for a span not sampled)
                span.end()

        def failed(exc: BaseException) -> None:
            if span.is_recording():
                record_error(span, exc)
                span.end()

        future.add_callbacks(answered, failed)
        return future

    setattr(execute_async, _PATCHED, True)
    Session.execute_async = execute_async


def _cql_text(query: Any) -> str:
    if isinstance(query, str):
        return query.strip()
    prepared = getattr(query, "prepared_statement", None)
    if prepared is not None:
        return prepared.query_string.strip()
    if hasattr(query, "query_string"):
        return str(query.query_string).strip()
    return "BATCH"


def instrument_app(app: Any) -> None:
    """Give a Flask app a SERVER span per request (none for the probes and /metrics)."""
    if installed_provider() is None:
        return
    from opentelemetry.instrumentation.flask import FlaskInstrumentor

    FlaskInstrumentor.instrument_app(app, excluded_urls=config.env(
        "OTEL_PYTHON_FLASK_EXCLUDED_URLS", DEFAULT_EXCLUDED_URLS))


class SkipOrphanClientSpans:
    """Samples like `delegate`, but drops a CLIENT span that has no parent.

    A store call made outside any request or message (lease renewals, outbox sweeps,
    readiness probes) is housekeeping: recorded, each would be a trace of its own and
    bury the traces of real work.
    """

    def __init__(self, delegate: Any) -> None:
        self.delegate = delegate

    def should_sample(self, parent_context, trace_id, name, kind=None, attributes=None,
                      links=None, trace_state=None):
        from opentelemetry.sdk.trace.sampling import Decision, SamplingResult

        parent = trace.get_current_span(parent_context).get_span_context()
        if kind == SpanKind.CLIENT and not parent.is_valid:
            return SamplingResult(Decision.DROP)
        return self.delegate.should_sample(parent_context, trace_id, name, kind, attributes,
                                           links, trace_state)

    def get_description(self) -> str:
        return f"SkipOrphanClientSpans{{{self.delegate.get_description()}}}"


# ------------------------------------------------------------------- the file exporter


class FileSpanExporter:
    """Appends finished spans as JSON lines to one file (shared by a service's workers).

    Each line is written with one `write` on an O_APPEND descriptor, so the workers of one
    service can share the file without interleaving. Past `max_bytes` the file is moved
    to `<name>.1` (replacing the previous one) and a new one begun.
    """

    def __init__(self, path: Path, max_bytes: int | None = None) -> None:
        self.path = Path(path)
        self.max_bytes = max_bytes if max_bytes is not None else config.env_int(
            "MURMUR_TRACE_FILE_MAX_BYTES", DEFAULT_FILE_MAX_BYTES)
        self._fd: int | None = None
        self._lock = threading.Lock()

    def export(self, spans: Sequence[Any]) -> Any:
        """Write `spans`; SUCCESS unless the file cannot be written."""
        from opentelemetry.sdk.trace.export import SpanExportResult

        lines = [(json.dumps(span_record(s), separators=(",", ":"), default=str) + "\n")
                 .encode() for s in spans]
        try:
            with self._lock:
                fd = self._open()
                for line in lines:
                    os.write(fd, line)
        except OSError as exc:
            log.warning("cannot write spans to %s: %s", self.path, exc)
            self._close()
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def _open(self) -> int:
        if self._fd is not None:
            mine = os.fstat(self._fd)
            try:
                current = os.stat(self.path)
            except FileNotFoundError:
                current = None
            if current is None or current.st_ino != mine.st_ino:
                self._close()  # another worker moved the file away: follow it
            elif mine.st_size > self.max_bytes:
                with contextlib.suppress(FileNotFoundError):
                    os.replace(self.path, self.path.with_name(self.path.name + ".1"))
                self._close()
        if self._fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        return self._fd

    def _close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)

    def shutdown(self) -> None:
        """Close the file."""
        with self._lock:
            self._close()

    def force_flush(self, timeout_millis: int = 30000) -> bool:  # noqa: ARG002
        """Nothing is buffered here: every export is written at once."""
        return True


def span_record(span: Any) -> dict[str, Any]:
    """One finished SDK span as the JSON object the span files hold."""
    ctx = span.get_span_context()
    parent = span.parent
    resource = span.resource.attributes if span.resource is not None else {}
    return {
        "trace_id": f"{ctx.trace_id:032x}",
        "span_id": f"{ctx.span_id:016x}",
        "parent_id": f"{parent.span_id:016x}" if parent is not None else None,
        "name": span.name,
        "kind": span.kind.name if span.kind is not None else "INTERNAL",
        "service": resource.get("service.name", ""),
        "process": resource.get("murmur.process", ""),
        "pid": os.getpid(),
        "start_ns": span.start_time,
        "end_ns": span.end_time,
        "attributes": dict(span.attributes or {}),
        "status": {"code": span.status.status_code.name,
                   "description": span.status.description or ""},
        "events": [{"name": e.name, "time_ns": e.timestamp, "attributes": dict(e.attributes or {})}
                   for e in span.events],
        "links": [{"trace_id": f"{link.context.trace_id:032x}",
                   "span_id": f"{link.context.span_id:016x}"} for link in span.links],
    }


# ------------------------------------------------------------------------ propagation


def current_trace_headers() -> dict[str, str]:
    """The current span's context as propagation headers (`traceparent`, `tracestate`).

    Empty when there is no recording span, e.g. with tracing off. Stored with an outbox
    row, it lets the relay continue the trace of the request that wrote the row.
    """
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


def context_from_headers(headers: Mapping[str, Any] | Iterable[tuple[str, Any]] | None):
    """The trace context carried by headers: a dict, or Kafka's [(name, bytes)] list."""
    if headers is None:
        return otel_context.Context()
    items = headers.items() if isinstance(headers, Mapping) else headers
    carrier = {}
    for name, value in items:
        if value is None:
            continue
        carrier[str(name).lower()] = (value.decode("utf-8", "replace")
                                      if isinstance(value, (bytes, bytearray)) else str(value))
    return propagate.extract(carrier, context=otel_context.Context())


def tracer() -> trace.Tracer:
    """Murmur's own tracer (spans made by hand: relays, fan-out, home timelines)."""
    return trace.get_tracer(TRACER_NAME)


def start_producer_span(topic: str, key: str,
                        headers: Mapping[str, Any] | None) -> tuple[Span, dict[str, str]]:
    """Start the PRODUCER span of publishing one outbox row; (span, headers to send).

    The span continues the trace context stored in the row's headers; the headers to send
    are the row's, with that context replaced by the producer span's own, so the consumer
    becomes its child. The caller ends the span once the broker answered.
    """
    parent = context_from_headers(headers)
    span = tracer().start_span(f"publish {topic}", context=parent, kind=SpanKind.PRODUCER,
                               attributes={"messaging.system": "kafka",
                                           "messaging.operation.type": "send",
                                           "messaging.destination.name": topic,
                                           "messaging.kafka.message.key": key})
    outgoing = {name: str(value) for name, value in (headers or {}).items()}
    propagate.inject(outgoing, context=trace.set_span_in_context(span))
    return span, outgoing


@contextlib.contextmanager
def consumer_span(topic: str, partition: int, offset: int, key: bytes | None,
                  headers: Sequence[tuple[str, Any]] | None) -> Iterator[Span]:
    """A current CONSUMER span processing one record, child of its producer's span."""
    attributes: dict[str, Any] = {"messaging.system": "kafka",
                                  "messaging.operation.type": "process",
                                  "messaging.destination.name": topic,
                                  "messaging.destination.partition.id": str(partition),
                                  "messaging.kafka.offset": offset}
    if key is not None:
        attributes["messaging.kafka.message.key"] = key.decode("utf-8", "replace")
    with tracer().start_as_current_span(f"process {topic}", context=context_from_headers(headers),
                                        kind=SpanKind.CONSUMER, attributes=attributes) as span:
        yield span


def record_error(span: Span, error: BaseException | str) -> None:
    """Mark `span` failed, with the exception (or the reason) recorded on it."""
    if isinstance(error, BaseException):
        span.record_exception(error)
        span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))
    else:
        span.set_status(Status(StatusCode.ERROR, error))
