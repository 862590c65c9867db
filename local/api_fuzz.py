"""Fuzz the public API through the edge with schemathesis and count what it answered.

    make api-fuzz [PROFILE=test] [EXAMPLES=50] [SEED=n] [MAX_TIME=s]

    python local/api_fuzz.py [--max-examples 50] [--seed N] [--max-time S] [--document URL|FILE]
                             [-- schemathesis args]

Runs `schemathesis run` on the OpenAPI document the edge serves, against the edge (nginx
in front of the gateways, so its own answers are met too), with `--checks all`, every
phase including the stateful one (which chains operations along the document's links),
strings that may hold NUL and control characters, and the bearer token of an account it
signs up first. Schemathesis's settings that its command line cannot give are in
local/api-fuzz.toml.

It runs schemathesis in this process, so that it can:
- count every request through an `after_call` hook: the cases run, the 5xx answers and
  the answers whose status the document does not declare for their operation;
- send from a loopback address of its own (127.240.x.y): the edge's per-address rate
  limits and users' per-address sign-in throttle then count the fuzzer apart from the
  other clients of the machine, whose sign-ins its failed ones would otherwise lock out.

Its exit status is schemathesis's: non-zero when a check failed. Reports (JUnit, NDJSON
events) are written to var/api-fuzz/<profile>/.
"""

from __future__ import annotations

import argparse
import collections
import os
import secrets
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "services"))

from common import config  # noqa: E402

SETTINGS = REPO / "local" / "api-fuzz.toml"
PHASES = "examples,coverage,fuzzing,stateful"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-examples", type=int, default=50,
                        help="test cases per operation and phase")
    parser.add_argument("--seed", type=int, default=None, help="repeat an earlier run's cases")
    parser.add_argument("--max-time", type=int, default=None,
                        help="seconds; fuzzing and stateful phases repeat until spent")
    parser.add_argument("--document", default=None,
                        help="the OpenAPI document to hold the API to, a URL or a file "
                             "(default: the one the edge serves)")
    parser.add_argument("extra", nargs="*", help="more `schemathesis run` options, after --")
    return parser.parse_args(argv)


def own_address() -> str:
    """A loopback address for this run's connections, outside the e2e tests' range."""
    pid = os.getpid()
    return f"127.240.{(pid >> 8) & 255}.{pid & 255 or 1}"


def send_from(address: str) -> None:
    """Make every connection this process opens to the loopback leave from `address`.

    Schemathesis makes its HTTP clients itself; urllib3 under them opens each socket
    through `create_connection`, which takes the source address."""
    from urllib3.util import connection

    opened = connection.create_connection

    def create_connection(target: Any, *args: Any, source_address: Any = None, **kwargs: Any):
        if source_address is None and str(target[0]).startswith("127."):
            source_address = (address, 0)
        return opened(target, *args, source_address=source_address, **kwargs)

    connection.create_connection = create_connection  # type: ignore[assignment]


def access_token(api: str) -> str:
    """The token of a new account, signed up and signed in for this run."""
    import requests

    name, password = f"fz_{secrets.token_hex(6)}", secrets.token_urlsafe(18)
    created = requests.post(f"{api}/users", json={"username": name, "password": password},
                            timeout=15)
    created.raise_for_status()
    session = requests.post(f"{api}/sessions", json={"username": name, "password": password},
                            timeout=15)
    session.raise_for_status()
    return session.json()["access_token"]


def documented(responses: dict[str, Any], status: int) -> bool:
    """Whether an operation's `responses` declare `status` (exactly, as `4XX`, or default)."""
    declared = {str(key).upper() for key in responses}
    return bool({str(status), f"{str(status)[0]}XX", "DEFAULT"} & declared)


class Tally:
    """What the API answered to the run's requests."""

    def __init__(self) -> None:
        self.requests = 0
        self.cases: set[str] = set()
        self.server_errors: collections.Counter[tuple[str, int]] = collections.Counter()
        self.undocumented: collections.Counter[tuple[str, int]] = collections.Counter()
        self.statuses: dict[str, collections.Counter[int]] = collections.defaultdict(
            collections.Counter)

    def record(self, case: Any, status: int) -> None:
        """Count one answer to `case`."""
        self.requests += 1
        self.cases.add(case.id)
        operation = case.operation
        label = f"{operation.method.upper()} {operation.path}"
        self.statuses[label][status] += 1
        if status >= 500:
            self.server_errors[(label, status)] += 1
        # A method the operation does not have (the `unsupported_method` check) is answered
        # by another resource's rules (405 with Allow); only the operation's own are counted.
        if case.method.upper() == operation.method.upper() and not documented(
                operation.definition.raw.get("responses", {}), status):
            self.undocumented[(f"{case.method.upper()} {operation.path}", status)] += 1

    def report(self) -> list[str]:
        """The statuses each operation answered, the figures of the run, then each 5xx
        and undocumented status with its count."""
        lines = [f"{label}: " + ", ".join(f"{status} x{count}"
                                          for status, count in sorted(counter.items()))
                 for label, counter in sorted(self.statuses.items())]
        lines += [f"cases run: {len(self.cases)} ({self.requests} requests)",
                 f"5xx answers: {sum(self.server_errors.values())}",
                 f"undocumented statuses: {sum(self.undocumented.values())}"
                 f" ({len(self.undocumented)} distinct)"]
        for title, counter in (("5xx", self.server_errors), ("undocumented", self.undocumented)):
            lines += [f"  {title}: {label} -> {status} x{count}"
                      for (label, status), count in sorted(counter.items())]
        return lines


def schemathesis_args(args: argparse.Namespace, origin: str, reports: Path) -> list[str]:
    """The `schemathesis` command line of this run."""
    command = [
        "--config-file", str(SETTINGS), "run", args.document or f"{origin}/api/v1/openapi.json",
        "--url", origin, "--wait-for-schema", "30",
        "--checks", "all", "--phases", PHASES,
        "--max-examples", str(args.max_examples),
        "--generation-allow-x00", "true", "--generation-codec", "utf-8",
        "--generation-database", str(reports / "examples"),
        "--workers", "1", "--request-timeout", "20", "--continue-on-failure",
        "--report", "junit,ndjson", "--report-dir", str(reports),
    ]
    if args.seed is not None:
        command += ["--seed", str(args.seed)]
    if args.max_time is not None:
        command += ["--max-time", str(args.max_time)]
    return command + list(args.extra)


def main(argv: list[str] | None = None) -> int:
    """Run schemathesis against the active profile's edge and print what it met."""
    args = parse_args(argv)
    profile = config.PROFILE.read()
    origin = f"http://127.0.0.1:{config.profile().http_port}"
    reports = REPO / "var" / "api-fuzz" / profile
    reports.mkdir(parents=True, exist_ok=True)

    address = own_address()
    send_from(address)
    os.environ["MURMUR_FUZZ_TOKEN"] = access_token(f"{origin}/api/v1")

    import schemathesis
    from schemathesis.cli import schemathesis as cli

    tally = Tally()

    def after_call(context: Any, case: Any, response: Any) -> None:
        tally.record(case, response.status_code)

    schemathesis.hook(after_call)
    command = schemathesis_args(args, origin, reports)
    print(f"api-fuzz: profile {profile}, from {address}: schemathesis {' '.join(command)}",
          flush=True)
    try:
        cli.main(args=command, prog_name="schemathesis")
        code = 0
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    print("\napi-fuzz:", *tally.report(), sep="\n  ")
    return code


if __name__ == "__main__":
    sys.exit(main())
