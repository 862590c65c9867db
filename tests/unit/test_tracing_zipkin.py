"""The Zipkin side of tracing: the standard exporter name, an exporter that tolerates a
collector that is down, and Zipkin's spans read back as span-file records for the tree."""

from __future__ import annotations

import logging

import pytest
from opentelemetry.sdk.trace.export import SpanExportResult

import trace_tree
from common import tracing


class Refusing:
    """An exporter whose collector refuses every connection."""

    def __init__(self) -> None:
        self.calls = 0
        self.shut = False

    def export(self, spans):
        self.calls += 1
        raise ConnectionError("connection refused")

    def shutdown(self):
        self.shut = True

    def force_flush(self, timeout_millis=30000):
        return True


def test_the_standard_name_zipkin_picks_the_zipkin_json_exporter(monkeypatch):
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "zipkin")
    monkeypatch.setenv("OTEL_EXPORTER_ZIPKIN_ENDPOINT", "http://127.0.0.1:1/api/v2/spans")
    exporter = tracing.make_exporter("gateway")
    assert isinstance(exporter, tracing.TolerantExporter)
    assert type(exporter.delegate).__module__ == "opentelemetry.exporter.zipkin.json"
    assert exporter.delegate.endpoint == "http://127.0.0.1:1/api/v2/spans"


def test_the_standard_name_otlp_picks_the_otlp_over_http_exporter(monkeypatch):
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "otlp")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1")
    exporter = tracing.make_exporter("gateway")
    assert type(exporter.delegate).__module__.startswith("opentelemetry.exporter.otlp.proto.http")


def test_an_unknown_exporter_name_is_refused_with_its_name(monkeypatch):
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "jaeger-thrift")
    with pytest.raises(RuntimeError, match="jaeger-thrift"):
        tracing.make_exporter("gateway")


def test_a_collector_that_is_down_fails_the_export_and_warns_once_a_minute(caplog):
    now = [1000.0]
    delegate = Refusing()
    exporter = tracing.TolerantExporter(delegate, "zipkin", clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="murmur.tracing"):
        results = [exporter.export([]) for _ in range(5)]
        now[0] += tracing.EXPORT_WARNING_INTERVAL
        results.append(exporter.export([]))
    assert results == [SpanExportResult.FAILURE] * 6
    assert delegate.calls == 6
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 2, warnings
    assert "6 batches lost so far" in warnings[-1]
    exporter.shutdown()
    assert delegate.shut


def test_a_zipkin_span_becomes_the_record_the_span_files_hold():
    span = {"traceId": "a" * 32, "id": "b" * 16, "parentId": "c" * 16, "kind": "CONSUMER",
            "name": "process test.tweets.v1", "timestamp": 1_700_000_000_000_000,
            "duration": 1500, "localEndpoint": {"serviceName": "fanout"},
            "tags": {"murmur.process": "test-fanout", "error": "Boom: no"}}
    record = trace_tree.from_zipkin(span)
    assert record["trace_id"] == "a" * 32 and record["parent_id"] == "c" * 16
    assert (record["service"], record["process"], record["kind"]) == (
        "fanout", "test-fanout", "CONSUMER")
    assert record["end_ns"] - record["start_ns"] == 1_500_000
    assert record["status"] == {"code": "ERROR", "description": "Boom: no"}
    internal = trace_tree.from_zipkin({"traceId": "a" * 32, "id": "d" * 16, "name": "x",
                                       "timestamp": 1, "duration": 1})
    assert (internal["kind"], internal["parent_id"]) == ("INTERNAL", None)


@pytest.mark.parametrize("recorded, expected", [(None, "zipkin"), ("zipkin", "zipkin"),
                                                ("file", "file"), ("console", "zipkin")])
def test_make_trace_reads_where_the_profile_exports(monkeypatch, recorded, expected):
    import stackctl

    settings = {"OTEL_TRACES_EXPORTER": recorded} if recorded else {}
    monkeypatch.setattr(stackctl, "service_settings", lambda profile: settings)
    assert trace_tree.chosen_source("auto", "test") == expected
    assert trace_tree.chosen_source("file", "test") == "file"
