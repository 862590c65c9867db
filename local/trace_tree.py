"""Print one trace as an indented tree: `make trace [ID=...] [SOURCE=zipkin|file]`.

The spans come from where the profile's services export them: the local Zipkin's API by
default (`GET /api/v2/traces`, `GET /api/v2/trace/{id}`), or, when the profile was brought
up with `OTEL_TRACES_EXPORTER=file`, the span files `$MURMUR_HOME/traces/<process>.jsonl`
(see services/common/tracing.py). Both profiles share one Zipkin: a span's
`murmur.process` tag (test-profile processes are named `test-...`) tells them apart.
This picks a trace (the one given, else the latest one that reached the fanout worker,
i.e. the most recent post that went all the way), and prints each span with its service,
kind, duration and start offset from the trace's first span.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "services"))

from common import config, tracing  # noqa: E402 - needs the path above

SOURCES = ("auto", "zipkin", "file")


@dataclass
class Node:
    """A span with its children, ordered by start time."""

    span: dict[str, Any]
    children: list[Node] = field(default_factory=list)


def span_files(folder: Path, profile: str) -> list[Path]:
    """The span files of `profile`'s processes (rotated ones included), oldest first."""
    prefix = "" if profile == "dev" else f"{profile}-"
    files = [p for p in folder.glob("*.jsonl*") if p.name.startswith(prefix)]
    if profile == "dev":  # dev processes have no prefix: leave the other profiles' out
        others = tuple(f"{name}-" for name in config.PROFILES if name != "dev")
        files = [p for p in files if not p.name.startswith(others)]
    return sorted(files, key=lambda p: p.stat().st_mtime)


def read_spans(files: Iterable[Path], trace_id: str | None = None) -> Iterator[dict[str, Any]]:
    """Spans in `files` (only those of `trace_id` if given); torn lines are skipped."""
    for path in files:
        with path.open("rb") as lines:
            for line in lines:
                if trace_id is not None and trace_id.encode() not in line:
                    continue  # cheap: most lines belong to other traces
                try:
                    span = json.loads(line)
                except ValueError:
                    continue  # a line another process is still writing
                if trace_id is None or span.get("trace_id") == trace_id:
                    yield span


def latest_trace(files: Iterable[Path], service: str = "fanout") -> str | None:
    """Id of the trace whose `service` span ended last (None if there is none)."""
    best, best_end = None, -1
    for span in read_spans(f for f in files if service in f.name):
        if span.get("service") == service and (span.get("end_ns") or 0) > best_end:
            best, best_end = span["trace_id"], span["end_ns"]
    return best


def from_zipkin(span: dict[str, Any]) -> dict[str, Any]:
    """A Zipkin v2 span as the record the span files hold (times in ns)."""
    tags = dict(span.get("tags") or {})
    start = int(span.get("timestamp") or 0) * 1000
    error = tags.get("error")
    code = "ERROR" if error is not None else tags.get("otel.status_code", "UNSET")
    return {"trace_id": span["traceId"], "span_id": span["id"],
            "parent_id": span.get("parentId"), "name": span.get("name", ""),
            "kind": span.get("kind", "INTERNAL"),
            "service": (span.get("localEndpoint") or {}).get("serviceName", ""),
            "process": tags.get("murmur.process", ""),
            "start_ns": start, "end_ns": start + int(span.get("duration") or 0) * 1000,
            "attributes": tags, "status": {"code": code, "description": error or ""},
            "events": [{"name": a.get("value", ""), "time_ns": int(a.get("timestamp", 0)) * 1000}
                       for a in span.get("annotations") or []],
            "links": []}


class Zipkin:
    """The few calls of Zipkin's v2 API this needs."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout

    def get(self, path: str, **query: Any) -> Any:
        """GET an API path; the decoded JSON (None for a 404)."""
        qs = urllib.parse.urlencode({k: v for k, v in query.items() if v is not None})
        try:
            with urllib.request.urlopen(f"{self.url}{path}{'?' + qs if qs else ''}",
                                        timeout=self.timeout) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise

    def trace(self, trace_id: str) -> list[dict[str, Any]]:
        """Every span of one trace, as span-file records (empty when Zipkin has none)."""
        return [from_zipkin(s) for s in self.get(f"/api/v2/trace/{trace_id}") or []]

    def traces(self, process: str, limit: int = 10, lookback_ms: int = 3_600_000,
               **query: Any) -> list[list[dict[str, Any]]]:
        """The latest traces holding a span of the process named `process`."""
        found = self.get("/api/v2/traces", annotationQuery=f"murmur.process={process}",
                         limit=limit, lookback=lookback_ms, **query) or []
        return [[from_zipkin(s) for s in spans] for spans in found]

    def latest_trace(self, profile: str, service: str = "fanout") -> str | None:
        """Id of the trace whose span of `profile`'s `service` process ended last."""
        prefix = "" if profile == "dev" else f"{profile}-"
        best, best_end = None, -1
        for spans in self.traces(prefix + service, serviceName=service):
            for span in spans:
                if span["service"] == service and span["end_ns"] > best_end:
                    best, best_end = span["trace_id"], span["end_ns"]
        return best


def zipkin_url() -> str:
    """The local platform's Zipkin (MURMUR_ZIPKIN_PORT)."""
    from stackctl import observability  # local/stackctl, beside this file

    return observability.zipkin_url()


def chosen_source(source: str, profile: str) -> str:
    """`zipkin` or `file`: for `auto`, where the profile's services export (the exporter
    its last `up` recorded; the platform's default is Zipkin)."""
    if source != "auto":
        return source
    from stackctl import service_settings

    exporter = service_settings(profile).get("OTEL_TRACES_EXPORTER", "zipkin")
    return "file" if exporter.split(",")[0].strip().lower() == "file" else "zipkin"


def build_tree(spans: Iterable[dict[str, Any]]) -> list[Node]:
    """The spans of one trace as trees; a span whose parent is missing becomes a root."""
    nodes = {s["span_id"]: Node(s) for s in spans}
    roots: list[Node] = []
    for node in nodes.values():
        parent = nodes.get(node.span.get("parent_id") or "")
        (parent.children if parent is not None else roots).append(node)
    for node in nodes.values():
        node.children.sort(key=lambda n: n.span["start_ns"])
    roots.sort(key=lambda n: n.span["start_ns"])
    return roots


def render(spans: list[dict[str, Any]]) -> str:
    """The trace as text: a header line, then one line per span, indented by depth."""
    if not spans:
        return "no spans"
    start = min(s["start_ns"] for s in spans)
    end = max(s["end_ns"] for s in spans)
    services = sorted({s.get("service", "") for s in spans})
    lines = [f"trace {spans[0]['trace_id']}: {len(spans)} spans, {_ms(end - start)}, "
             f"services: {', '.join(services)}"]

    def walk(node: Node, prefix: str, last: bool, top: bool) -> None:
        s = node.span
        branch = "" if top else ("└─ " if last else "├─ ")
        status = s.get("status", {})
        error = f"  ERROR {status.get('description', '')}".rstrip() \
            if status.get("code") == "ERROR" else ""
        orphan = ""
        if top and s.get("parent_id"):
            orphan = f"  (parent {s['parent_id']} not exported)"
        lines.append(f"{_ms(s['start_ns'] - start, '+'):>11} {_ms(s['end_ns'] - s['start_ns']):>10}"
                     f"  {prefix}{branch}{s['name']}  [{s.get('service', '?')} "
                     f"{s.get('kind', '').lower()}]{error}{orphan}")
        child_prefix = prefix if top else prefix + ("   " if last else "│  ")
        for i, child in enumerate(node.children):
            walk(child, child_prefix, i == len(node.children) - 1, False)

    lines.append(f"{'start':>11} {'duration':>10}  span  [service kind]")
    for root in build_tree(spans):
        walk(root, "", True, True)
    return "\n".join(lines)


def _ms(ns: int, sign: str = "") -> str:
    return f"{sign}{ns / 1e6:.1f} ms"


def main(argv: list[str] | None = None) -> int:
    """Print the chosen trace; exit 1 when there is none."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--id", help="trace id (32 hex digits); default: the latest that "
                                     "reached fanout")
    parser.add_argument("--profile", default=config.profile().name,
                        help="whose spans to read (default: MURMUR_PROFILE or dev)")
    parser.add_argument("--source", choices=SOURCES, default="auto",
                        help="zipkin, file, or auto: where the profile's services export")
    parser.add_argument("--dir", type=Path, default=tracing.traces_dir(),
                        help="folder of the span files")
    parser.add_argument("--zipkin", default=None, help="Zipkin's base URL")
    args = parser.parse_args(argv)
    if chosen_source(args.source, args.profile) == "zipkin":
        return print_from_zipkin(Zipkin(args.zipkin or zipkin_url()), args.id, args.profile)
    return print_from_files(args.dir, args.id, args.profile)


def print_from_zipkin(zipkin: Zipkin, trace_id: str | None, profile: str) -> int:
    """Print a trace read from Zipkin's API; 1 when there is none."""
    try:
        trace_id = trace_id.lower() if trace_id else zipkin.latest_trace(profile)
        if trace_id is None:
            print(f"no trace of profile {profile} has reached fanout in Zipkin yet; "
                  "pass ID=<trace id>", file=sys.stderr)
            return 1
        spans = zipkin.trace(trace_id)
    except OSError as exc:
        print(f"Zipkin is not answering at {zipkin.url} ({exc}); start it with "
              "`make start SERVICE=zipkin`, or read the span files with SOURCE=file",
              file=sys.stderr)
        return 1
    if not spans:
        print(f"trace {trace_id} is not in Zipkin", file=sys.stderr)
        return 1
    print(render(spans))
    print(f"\nin the viewer: {zipkin.url.replace('127.0.0.1', 'localhost')}"
          f"/zipkin/traces/{trace_id}")
    return 0


def print_from_files(folder: Path, trace_id: str | None, profile: str) -> int:
    """Print a trace read from the span files; 1 when there is none."""
    files = span_files(folder, profile)
    if not files:
        print(f"no span files of profile {profile} in {folder} (the services write them "
              "when brought up with OTEL_TRACES_EXPORTER=file)", file=sys.stderr)
        return 1
    trace_id = trace_id.lower() if trace_id else latest_trace(files)
    if trace_id is None:
        print("no trace has reached fanout yet; pass ID=<trace id>", file=sys.stderr)
        return 1
    spans = list(read_spans(files, trace_id))
    if not spans:
        print(f"trace {trace_id} is not in {folder}", file=sys.stderr)
        return 1
    print(render(spans))
    return 0


if __name__ == "__main__":
    sys.exit(main())
