"""Print one trace from the exported span files as an indented tree: `make trace [ID=...]`.

Every Murmur process appends its finished spans to `$MURMUR_HOME/traces/<process>.jsonl`
(see services/common/tracing.py). This reads the files of one profile (test-profile
processes are named `test-...`), picks a trace (the one given, else the latest one that
reached the fanout worker, i.e. the most recent post that went all the way), and prints
each span with its service, kind, duration and start offset from the trace's first span.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "services"))

from common import config, tracing  # noqa: E402 - needs the path above


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
                        help="whose span files to read (default: MURMUR_PROFILE or dev)")
    parser.add_argument("--dir", type=Path, default=tracing.traces_dir(),
                        help="folder of the span files")
    args = parser.parse_args(argv)
    files = span_files(args.dir, args.profile)
    if not files:
        print(f"no span files of profile {args.profile} in {args.dir}", file=sys.stderr)
        return 1
    trace_id = args.id.lower() if args.id else latest_trace(files)
    if trace_id is None:
        print("no trace has reached fanout yet; pass ID=<trace id>", file=sys.stderr)
        return 1
    spans = list(read_spans(files, trace_id))
    if not spans:
        print(f"trace {trace_id} is not in {args.dir}", file=sys.stderr)
        return 1
    print(render(spans))
    return 0


if __name__ == "__main__":
    sys.exit(main())
