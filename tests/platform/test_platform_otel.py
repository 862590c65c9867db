"""`up` hands its caller's OTEL_* variables to the services, and a plain `up` takes them back.

supervisord keeps the environment it was first started with, so the variables are recorded
per profile and written into each program's definition; a changed set restarts the services.
The platform's own default sends spans to the local Zipkin; `OTEL_TRACES_EXPORTER=file`
given to `up` overrides it, and the span files then hold a whole post's trace, which
`make trace` prints from them.
"""

from __future__ import annotations

import json
import time

import stackctl
import trace_tree
from common import config, tracing
from conftest import make, service_env, stackctl as run_stackctl, wait_until
from trace_chain import DEADLINE, check_chain, complete_chain, post_and_deliver

SERVICES = ["test-users", "test-timeline", "test-fanout", "test-gateway-1", "test-gateway-2",
            "test-users-relay", "test-timeline-relay", "test-timeline-authors"]


def platform_defaults() -> dict[str, str]:
    return stackctl.observability.tracing_defaults()


def spans_in_files(trace_id: str | None = None) -> list[dict]:
    files = trace_tree.span_files(tracing.traces_dir(), config.profile().name)
    return list(trace_tree.read_spans(files, trace_id))


def delivery_span_in_files(tweet_id: str) -> dict | None:
    """fanout's span of writing `tweet_id` into home timelines, once it is in its file."""
    needle = f'"murmur.tweet_id":"{tweet_id}"'.encode()
    for path in trace_tree.span_files(tracing.traces_dir(), config.profile().name):
        if "fanout" in path.name:
            for line in path.read_bytes().splitlines():
                if needle in line and b'"home_timeline.deliver"' in line:
                    return json.loads(line)
    return None


def test_the_services_export_to_the_local_zipkin_by_default():
    defaults = platform_defaults()
    assert defaults["OTEL_TRACES_EXPORTER"] == "zipkin"
    assert defaults["OTEL_EXPORTER_ZIPKIN_ENDPOINT"] == (
        f"http://127.0.0.1:{stackctl.ports().zipkin}/api/v2/spans")
    if stackctl.service_settings("test").get("OTEL_TRACES_EXPORTER"):
        raise AssertionError("the test profile was brought up with an exporter of its own: "
                             "`make test-up` without OTEL_* puts the default back")
    for name in SERVICES:
        env = service_env(name)
        assert {k: env.get(k) for k in defaults} == defaults, name


def test_otel_variables_given_to_up_override_the_default_and_a_plain_up_restores_it():
    settings = {"OTEL_TRACES_EXPORTER": "file", "OTEL_BSP_SCHEDULE_DELAY": "100",
                "OTEL_RESOURCE_ATTRIBUTES": "murmur.check=platform-test"}
    try:
        with_otel = run_stackctl("up", env=settings, timeout=240)
        assert with_otel.returncode == 0, with_otel.stdout + with_otel.stderr
        assert "restarting test-gateway-1: its definition changed" in with_otel.stdout
        for name in SERVICES:
            env = service_env(name)
            assert {k: env.get(k) for k in settings} == settings, name

        # The SDK really reads them: a post's whole trace lands in the span files.
        started = time.monotonic()
        tweet_id, _ = post_and_deliver("follow me through the span files")
        deliver = wait_until(lambda: delivery_span_in_files(tweet_id), timeout=DEADLINE,
                             interval=0.2, message="fanout's delivery span in its file")
        trace_id = deliver["trace_id"]
        chain = wait_until(lambda: complete_chain(spans_in_files(trace_id), deliver),
                           timeout=DEADLINE, interval=0.2,
                           message="every span of the post's trace in the files")
        check_chain(chain, trace_id)
        assert deliver["process"] == "test-fanout"
        print(f"\nwhole trace in the span files {time.monotonic() - started:.2f}s after "
              "the post")
        # `make trace` follows the recorded exporter: it reads the files now.
        printed = make("trace", f"ID={trace_id}")
        assert printed.returncode == 0, printed.stdout + printed.stderr
        assert f"trace {trace_id}:" in printed.stdout
        assert "process test.tweets.v1  [fanout consumer]" in printed.stdout
    finally:
        plain = run_stackctl("up", env={k: "" for k in settings}, timeout=240)
    assert plain.returncode == 0, plain.stdout + plain.stderr
    for name in SERVICES:
        otel = {k: v for k, v in service_env(name).items() if k.startswith("OTEL_")}
        assert otel == platform_defaults(), name
