"""Tracing setup, the span file format, propagation through headers, and the trace printer.

The global tracer provider can be set once per process, so the tests that need the SDK
installed the way a service installs it run a short script in a child process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.sampling import ALWAYS_ON

import trace_tree as trace_printer
from common import tracing

SERVICES = Path(__file__).resolve().parents[2] / "services"


def run_in_child(tmp_path: Path, script: str, **env: str) -> subprocess.CompletedProcess:
    """Run `script` in a fresh interpreter whose span files go to `tmp_path`/traces."""
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    child_env.update(PYTHONPATH=str(SERVICES), MURMUR_HOME=str(tmp_path),
                     MURMUR_PROCESS="unit-proc", **env)
    child_env.pop("MURMUR_TRACES_DIR", None)
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], env=child_env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result


def spans_in(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_the_file_exporter_writes_one_json_line_per_finished_span(tmp_path):
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(tracing.FileSpanExporter(
        tmp_path / "svc.jsonl")))
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("outer", attributes={"answer": 42}) as outer:
        with tracer.start_as_current_span("inner"):
            pass
        tracing.record_error(outer, ValueError("boom"))

    inner, outer_span = spans_in(tmp_path / "svc.jsonl")
    assert (inner["name"], outer_span["name"]) == ("inner", "outer")
    assert inner["trace_id"] == outer_span["trace_id"]
    assert inner["parent_id"] == outer_span["span_id"]
    assert outer_span["parent_id"] is None
    assert outer_span["attributes"] == {"answer": 42}
    assert outer_span["status"] == {"code": "ERROR", "description": "ValueError: boom"}
    assert outer_span["end_ns"] >= inner["end_ns"] > inner["start_ns"] > 0
    assert len(outer_span["trace_id"]) == 32 and len(outer_span["span_id"]) == 16


def test_a_full_span_file_is_moved_aside_and_a_new_one_begun(tmp_path):
    provider = TracerProvider()
    exporter = tracing.FileSpanExporter(tmp_path / "svc.jsonl", max_bytes=1)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    for name in ("first", "second"):
        with tracer.start_as_current_span(name):
            pass

    assert [s["name"] for s in spans_in(tmp_path / "svc.jsonl.1")] == ["first"]
    assert [s["name"] for s in spans_in(tmp_path / "svc.jsonl")] == ["second"]


def test_trace_headers_round_trip_through_a_dict_and_kafka_header_tuples():
    span = TracerProvider().get_tracer("test").start_span("post")
    with trace.use_span(span, end_on_exit=True):
        headers = tracing.current_trace_headers()
    assert headers["traceparent"].split("-")[1] == f"{span.get_span_context().trace_id:032x}"

    for carrier in (headers, [(k, v.encode()) for k, v in headers.items()]):
        extracted = trace.get_current_span(tracing.context_from_headers(carrier))
        assert extracted.get_span_context().trace_id == span.get_span_context().trace_id
        assert extracted.get_span_context().span_id == span.get_span_context().span_id


def test_headers_without_a_trace_context_give_no_parent():
    for carrier in (None, {"request_id": "abc"}, [("request_id", b"abc")]):
        extracted = trace.get_current_span(tracing.context_from_headers(carrier))
        assert not extracted.get_span_context().is_valid


def test_without_the_sdk_there_are_no_trace_headers_to_store():
    assert tracing.current_trace_headers() == {}


def test_a_client_span_outside_any_trace_is_not_recorded_but_one_inside_is():
    provider = TracerProvider(sampler=tracing.SkipOrphanClientSpans(ALWAYS_ON))
    tracer = provider.get_tracer("test")
    orphan = tracer.start_span("GET", kind=trace.SpanKind.CLIENT)
    with tracer.start_as_current_span("request", kind=trace.SpanKind.SERVER) as server:
        child = tracer.start_span("GET", kind=trace.SpanKind.CLIENT)
        assert server.is_recording() and child.is_recording()
    assert not orphan.is_recording()


def test_setup_exports_the_process_spans_to_its_file_under_the_service_name(tmp_path):
    run_in_child(tmp_path, """
        from common import tracing
        tracing.setup("svc")
        with tracing.tracer().start_as_current_span("work"):
            pass
        tracing.shutdown()
    """)

    (span,) = spans_in(tmp_path / "traces" / "unit-proc.jsonl")
    assert (span["name"], span["service"], span["process"]) == ("work", "svc", "unit-proc")


def test_otel_service_name_overrides_the_service_name(tmp_path):
    run_in_child(tmp_path, """
        from common import tracing
        tracing.setup("svc")
        with tracing.tracer().start_as_current_span("work"):
            pass
        tracing.shutdown()
    """, OTEL_SERVICE_NAME="renamed")

    (span,) = spans_in(tmp_path / "traces" / "unit-proc.jsonl")
    assert span["service"] == "renamed"


@pytest.mark.parametrize("env", [{"OTEL_SDK_DISABLED": "true"}, {"OTEL_TRACES_EXPORTER": "none"}])
def test_tracing_switched_off_writes_no_span_file(tmp_path, env):
    run_in_child(tmp_path, """
        from common import tracing
        tracing.setup("svc")
        with tracing.tracer().start_as_current_span("work"):
            pass
        tracing.shutdown()
    """, **env)

    assert not (tmp_path / "traces" / "unit-proc.jsonl").exists()


def test_the_consumer_continues_the_trace_that_wrote_the_outbox_row(tmp_path):
    run_in_child(tmp_path, """
        from common import tracing
        tracing.setup("svc")
        with tracing.tracer().start_as_current_span("post"):
            row_headers = {"request_id": "r1", **tracing.current_trace_headers()}
        span, sent = tracing.start_producer_span("tweets.v1", "42", row_headers)
        span.end()
        assert sent["request_id"] == "r1"
        record_headers = [(k, v.encode()) for k, v in sent.items()]
        with tracing.consumer_span("tweets.v1", 3, 7, b"42", record_headers):
            with tracing.tracer().start_as_current_span("deliver"):
                pass
        tracing.shutdown()
    """)

    spans = {s["name"]: s for s in spans_in(tmp_path / "traces" / "unit-proc.jsonl")}
    post, publish = spans["post"], spans["publish tweets.v1"]
    process, deliver = spans["process tweets.v1"], spans["deliver"]
    assert len({s["trace_id"] for s in spans.values()}) == 1
    assert publish["parent_id"] == post["span_id"] and publish["kind"] == "PRODUCER"
    assert process["parent_id"] == publish["span_id"] and process["kind"] == "CONSUMER"
    assert deliver["parent_id"] == process["span_id"]
    assert process["attributes"]["messaging.kafka.offset"] == 7


def test_importing_sets_nothing_up_and_setup_installs_and_patches_once(tmp_path):
    run_in_child(tmp_path, """
        import cassandra.cluster, redis, urllib3
        from opentelemetry import trace
        from common import tracing
        original = cassandra.cluster.Session.execute_async
        assert tracing.installed_provider() is None and tracing.instrumented() == set()
        assert not hasattr(original, "__murmur_traced__")

        provider = tracing.setup("svc")
        assert trace.get_tracer_provider() is provider is tracing.installed_provider()
        assert tracing.instrumented() == {"urllib3", "redis", "cassandra"}
        patched = cassandra.cluster.Session.execute_async
        assert patched is not original

        assert tracing.setup("svc") is provider  # a second call changes nothing
        assert cassandra.cluster.Session.execute_async is patched
        tracing.shutdown()
    """)


def test_a_disabled_instrumentation_leaves_its_client_alone(tmp_path):
    run_in_child(tmp_path, """
        import redis, urllib3
        from common import tracing
        tracing.setup("svc")
        assert tracing.instrumented() == {"urllib3"}
        tracing.shutdown()
    """, OTEL_PYTHON_DISABLED_INSTRUMENTATIONS="redis")


def test_tracing_switched_off_installs_and_patches_nothing(tmp_path):
    run_in_child(tmp_path, """
        import redis, urllib3
        from common import tracing
        assert tracing.setup("svc") is None
        assert tracing.installed_provider() is None and tracing.instrumented() == set()
    """, OTEL_SDK_DISABLED="true")


# --------------------------------------------------------------------- the printer


def sample_span(span_id, parent, name, service, start_ms, end_ms, trace_id="a" * 32,
                kind="INTERNAL", status="UNSET"):
    return {"trace_id": trace_id, "span_id": span_id, "parent_id": parent, "name": name,
            "service": service, "kind": kind, "start_ns": start_ms * 1_000_000,
            "end_ns": end_ms * 1_000_000, "attributes": {},
            "status": {"code": status, "description": ""}}


SAMPLE = [
    sample_span("05", "04", "process tweets.v1", "fanout", 30, 38, kind="CONSUMER"),
    sample_span("01", None, "POST /api/v1/tweets", "gateway", 0, 20, kind="SERVER"),
    sample_span("03", "02", "POST /internal/v1/tweets", "timeline", 3, 15, kind="SERVER"),
    sample_span("02", "01", "POST", "gateway", 2, 18, kind="CLIENT"),
    sample_span("04", "03", "publish tweets.v1", "timeline-relay", 25, 28, kind="PRODUCER"),
    sample_span("06", "05", "EVALSHA", "fanout", 35, 36, kind="CLIENT", status="ERROR"),
    sample_span("07", "01", "GET", "gateway", 1, 2, kind="CLIENT"),
]


def test_the_tree_nests_children_under_parents_in_start_order():
    (root,) = trace_printer.build_tree(SAMPLE)
    assert root.span["span_id"] == "01"
    assert [c.span["span_id"] for c in root.children] == ["07", "02"]
    chain, node = [], root
    while node.children:
        node = node.children[-1]
        chain.append(node.span["service"])
    assert chain == ["gateway", "timeline", "timeline-relay", "fanout", "fanout"]


def test_a_span_whose_parent_was_not_exported_is_printed_as_a_root():
    roots = trace_printer.build_tree([s for s in SAMPLE if s["span_id"] != "04"])
    assert [r.span["span_id"] for r in roots] == ["01", "05"]
    assert "(parent 04 not exported)" in trace_printer.render(
        [s for s in SAMPLE if s["span_id"] != "04"])


def test_the_printout_indents_each_span_by_depth_with_its_service_and_duration():
    lines = trace_printer.render(SAMPLE).splitlines()
    assert lines[0] == (f"trace {'a' * 32}: 7 spans, 38.0 ms, services: fanout, gateway, "
                        "timeline, timeline-relay")
    body = lines[2:]
    assert body[0].split() == ["+0.0", "ms", "20.0", "ms", "POST", "/api/v1/tweets",
                               "[gateway", "server]"]
    assert "├─ GET  [gateway client]" in body[1]
    assert "└─ POST  [gateway client]" in body[2]
    assert "   └─ POST /internal/v1/tweets  [timeline server]" in body[3]
    assert body[6].rstrip().endswith("└─ EVALSHA  [fanout client]  ERROR")
    assert body[4].lstrip().startswith("+25.0 ms")


def test_the_default_trace_is_the_latest_one_that_reached_fanout(tmp_path):
    older = [dict(s, trace_id="b" * 32) for s in SAMPLE]
    newer = [dict(s, trace_id="c" * 32, start_ns=s["start_ns"] + 10**9,
                  end_ns=s["end_ns"] + 10**9) for s in SAMPLE]
    never_fanned = [sample_span("09", None, "GET /x", "gateway", 5000, 5001, trace_id="d" * 32)]
    by_file = {"test-fanout.jsonl": [s for s in newer + older if s["service"] == "fanout"],
               "test-gateway-1.jsonl": [s for s in older + newer + never_fanned
                                        if s["service"] == "gateway"],
               "fanout.jsonl": [sample_span("08", None, "x", "fanout", 9000, 9001,
                                            trace_id="e" * 32)]}
    for name, spans in by_file.items():
        (tmp_path / name).write_text("".join(json.dumps(s) + "\n" for s in spans) + '{"torn')

    files = trace_printer.span_files(tmp_path, "test")
    assert sorted(f.name for f in files) == ["test-fanout.jsonl", "test-gateway-1.jsonl"]
    assert trace_printer.latest_trace(files) == "c" * 32
    assert {s["span_id"] for s in trace_printer.read_spans(files, "c" * 32)} == \
        {"01", "02", "05", "06", "07"}
    assert [f.name for f in trace_printer.span_files(tmp_path, "dev")] == ["fanout.jsonl"]
