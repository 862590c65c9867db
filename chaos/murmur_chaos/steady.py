"""The API's steady state, what is observed while a fault lasts, and the time to recover.

Steady means: concurrent reads of a profile, a user timeline and a home timeline all
answer 200, undegraded, within a latency bound, and no circuit breaker is open in any
worker of any serving process (read from each process's `/metrics`).
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Iterable

import requests
from prometheus_client.parser import text_string_to_metric_families

from common import config
from murmur_chaos import api as client
from murmur_chaos import context
from murmur_chaos.context import Deviation, Run

# The processes whose breakers requests through nginx move, by their port key.
SERVING = ("gateway", "gateway-2", "users", "timeline")


def metrics_texts(run: Run, services: Iterable[str] = SERVING) -> dict[str, str]:
    """`/metrics` of each serving process (of each pod, on Kubernetes), by name."""
    if not run.local:
        from murmur_chaos import kube

        return kube.metrics_texts(run, services)
    offset = config.PROFILES[run.profile].port_offset
    return {name: requests.get(
        f"http://127.0.0.1:{config.SERVICE_PORTS[name] + offset}/metrics", timeout=5).text
        for name in services}


def metric(run: Run, service: str, name: str, **labels: str) -> float:
    """Sum of the samples of `name` with `labels` over a service's processes (0 if none)."""
    total = 0.0
    for source, text in metrics_texts(run, (service,)).items():
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and all(sample.labels.get(k) == v
                                               for k, v in labels.items()):
                    total += sample.value
    return total


def open_breakers(run: Run) -> list[str]:
    """`process/breaker` for each breaker open (refusing calls) in some live worker.

    A half-open breaker is not counted: it lets the next call through as its trial.
    """
    found = []
    for source, text in metrics_texts(run).items():
        for family in text_string_to_metric_families(text):
            found += [f"{source}/{s.labels['breaker']}" for s in family.samples
                      if s.name == "murmur_breaker_state" and s.value >= 2]
    return found


def prober(run: Run) -> client.Member:
    """The account whose reads probe the steady state (signed up once per run)."""
    saved = context.state(run).get("prober")
    if saved:
        return client.member(saved)
    made = client.sign_up(run.api, "chaos_probe")
    client.wait_until_known(run.api, made)
    context.update_state(run, prober=made.as_dict())
    return made


def _read_all(run: Run, reader: client.Member, rounds: int) -> list[tuple[str, int, float, str]]:
    """Concurrent reads of a profile, a user timeline and a home timeline: (path, status,
    seconds, degraded marker) each. Concurrency reaches more than one worker of each
    service: a worker's open breaker only shows when a call reaches it."""
    paths = [(f"/users/{reader.username}", {}), (f"/users/{reader.username}/tweets", {}),
             ("/timeline", reader.auth)]

    def get(target: tuple[str, dict[str, str]]) -> tuple[str, int, float, str]:
        path, headers = target
        started = time.perf_counter()
        try:
            resp = requests.get(f"{run.api}{path}", headers=headers, timeout=10)
            status, degraded = resp.status_code, resp.headers.get(client.DEGRADED, "")
        except requests.RequestException as exc:
            status, degraded = 0, type(exc).__name__
        return path, status, time.perf_counter() - started, degraded

    with ThreadPoolExecutor(rounds) as pool:
        return list(pool.map(get, paths * rounds))


def _unsteady(run: Run, rounds: int, max_latency_ms: float) -> str:
    """Why the steady state does not hold now ('' when it does)."""
    answers = _read_all(run, prober(run), rounds)
    problems = []
    bad = [(p, s) for p, s, _, _ in answers if s != 200]
    if bad:
        problems.append(f"{len(bad)} of {len(answers)} reads not 200: {sorted(set(bad))[:4]}")
    degraded = sorted({(p, d) for p, s, _, d in answers if s == 200 and d})
    if degraded:
        problems.append(f"degraded answers: {degraded[:3]}")
    slow = max(t for _, _, t, _ in answers) * 1000
    if slow > max_latency_ms:
        problems.append(f"slowest read {slow:.0f} ms > {max_latency_ms:.0f} ms")
    still_open = open_breakers(run)
    if still_open:
        problems.append(f"breakers open: {still_open}")
    return "; ".join(problems)


def api_is_steady(rounds: int = 6, max_latency_ms: float = 1000,
                  configuration: dict | None = None) -> bool:
    """Probe: reads of a profile, a user timeline and a home timeline, `rounds` of each at
    once, all 200 and undegraded within `max_latency_ms`, and no breaker open anywhere."""
    why = _unsteady(context.current(configuration), rounds, max_latency_ms)
    if why:
        raise Deviation(f"not steady: {why}")
    return True


def wait_until_steady(deadline: float = 60, after: str = "fault ended", rounds: int = 6,
                      max_latency_ms: float = 1000,
                      configuration: dict | None = None) -> dict[str, Any]:
    """Action: poll the steady state until it holds; the seconds it took since the mark
    `after` become the experiment's recovery figure (`recovery_s`)."""
    run = context.current(configuration)
    since = context.last_mark(run, after) or time.time()
    end = time.monotonic() + deadline
    why = "never checked"
    while time.monotonic() < end:
        try:
            why = _unsteady(run, rounds, max_latency_ms)
        except (requests.RequestException, ValueError) as exc:
            why = f"{type(exc).__name__}: {exc}"
        if not why:
            recovery = round(time.time() - since, 2)
            context.set_figures(run, recovery_s=recovery)
            context.mark("steady again", configuration)
            return {"recovery_s": recovery}
        time.sleep(0.2)
    context.set_figures(run, recovery_s=None, not_recovered=why)
    raise Deviation(f"not steady {deadline:.0f}s after '{after}': {why}")


def recovered_within(seconds: float = 10, configuration: dict | None = None) -> bool:
    """Probe: the steady state came back within `seconds` of the fault ending (true before
    the method: nothing to recover from yet)."""
    run = context.current(configuration)
    figures = context.figures(run)
    if context.last_mark(run, "fault ended") is None:
        return True
    if figures.get("recovery_s") is None:
        raise Deviation(f"never steady again: {figures.get('not_recovered', 'not measured')}")
    if figures["recovery_s"] > seconds:
        raise Deviation(f"steady again after {figures['recovery_s']:.1f}s, "
                        f"more than {seconds:g}s")
    return True


# --------------------------------------------------------------- observed during a fault


def _observe(run: Run, name: str, ok: bool, detail: str, **data: Any) -> dict[str, Any]:
    entry = {"t": time.time(), "name": name, "ok": ok, "detail": detail, **data}
    with (run.folder / "observations.jsonl").open("a") as out:
        out.write(json.dumps(entry) + "\n")
    return entry


def _settle(attempt: Callable[[], tuple[bool, str]], settle: float) -> tuple[float | None, dict]:
    """Call `attempt` (returning: as expected?, how it answered) until 5 in a row were as
    expected; the seconds it took (None if not within `settle` s) and the answers seen."""
    started, in_a_row, seen = time.monotonic(), 0, {}
    while in_a_row < 5 and time.monotonic() - started < settle:
        ok, shown = attempt()
        seen[shown] = seen.get(shown, 0) + 1
        in_a_row = in_a_row + 1 if ok else 0
        time.sleep(0.05)
    return (round(time.monotonic() - started, 2) if in_a_row >= 5 else None), seen


def _latency_problem(latencies: list[float], quantile: float, max_ms: float) -> str:
    """'' if the `quantile` of `latencies` (ms) is within `max_ms`, else what it was."""
    if not latencies:
        return ""
    ordered = sorted(latencies)
    judged = ordered[min(len(ordered) - 1, int(quantile * len(ordered)))]
    return f"latency q{quantile:g} {judged:.0f} ms > {max_ms:.0f} ms" if judged > max_ms else ""


def observe_reads(path: str = "/timeline", seconds: float = 10, status: int = 200,
                  degraded: str = "", max_latency_ms: float = 2000,
                  expect_followed_tweets: bool = False, retry_after: bool = False,
                  latency_quantile: float = 1.0, settle: float = 0, name: str = "",
                  expect_authors: bool = False,
                  configuration: dict | None = None) -> dict[str, Any]:
    """Action: read `path` (`/timeline`, `/users/{prober}`, `/users/{prober}/tweets`,
    `/users/{author}/...` for the ledger's author, `/tweets/{tweet}` for its first
    acknowledged tweet) while a fault lasts and record whether
    each answered `status`, with the `degraded` marker ('' for none; alternatives as
    'a|b'), the reads'
    `latency_quantile` (1.0: every read) within `max_latency_ms`, holding the ledger's tweets (`expect_followed_tweets`) and with a
    Retry-After (`retry_after`), reading again and again for `seconds` (the fault lasts
    that long). With `settle` > 0, judging starts once 5 reads in a row answered `status`
    (every worker of a service has its own breaker: each must meet the fault first), or
    fails if that takes longer than `settle` s. With `expect_authors`, every tweet of a
    200 must name its author. `observations_held` judges the records afterwards."""
    run = context.current(configuration)
    from murmur_chaos import ledger

    book = ledger.book(run)
    reader = client.member(book["followers"][0]) if book.get("followers") else prober(run)
    author = book.get("author", {}).get("username", reader.username)
    real_path = path.replace("{prober}", prober(run).username).replace("{author}", author)
    if "{tweet}" in real_path:
        acked = ledger.acknowledged_ids(run)
        if not acked:
            return _observe(run, name or f"GET {path}", False, "no acknowledged tweet to read")
        real_path = real_path.replace("{tweet}", acked[0])
    headers = reader.auth if real_path.startswith("/timeline") else {}
    wanted = {f"{status} {d}".strip() for d in degraded.split("|")}

    def attempt() -> tuple[bool, str]:
        try:
            got = requests.get(f"{run.api}{real_path}", headers=headers, timeout=10)
        except requests.RequestException as exc:
            return False, type(exc).__name__
        answer = f"{got.status_code} {got.headers.get(client.DEGRADED, '')}".strip()
        # Say who refused, and why, in the record (not in what is matched).
        return answer in wanted, answer + (f" ({got.text[:90]})" if got.status_code >= 400
                                           else "")

    settled_after = None
    if settle:
        settled_after, seen = _settle(attempt, settle)
        if settled_after is None:
            return _observe(run, name or f"GET {path} -> {status} {degraded}".strip(), False,
                            f"never 5 answers in a row as expected within {settle:g}s "
                            f"(answers seen: {seen})")
    problems, latencies = [], []
    end = time.monotonic() + seconds
    samples = 0
    while samples < 3 or time.monotonic() < end:
        samples += 1
        time.sleep(0.1)
        started = time.perf_counter()
        try:
            resp = requests.get(f"{run.api}{real_path}", headers=headers, timeout=10)
        except requests.RequestException as exc:
            problems.append(f"no answer ({type(exc).__name__})")
            continue
        latencies.append((time.perf_counter() - started) * 1000)
        if resp.status_code != status:
            problems.append(f"{resp.status_code} instead of {status}")
        elif resp.headers.get(client.DEGRADED, "") not in degraded.split("|"):
            problems.append(f"degraded marker {resp.headers.get(client.DEGRADED)!r}, "
                            f"wanted {degraded!r}")
        elif retry_after and not resp.headers.get("Retry-After"):
            problems.append("no Retry-After")
        elif expect_followed_tweets:
            shown = {t["id"] for t in resp.json()["items"]}
            missing = set(ledger.acknowledged_ids(run, before=time.time())) - shown
            if missing:
                problems.append(f"{len(missing)} of the followees' tweets missing")
        if expect_authors and resp.status_code == 200:
            body = resp.json()
            tweets = body.get("items", [body])
            nameless = [t.get("id") for t in tweets if not t.get("author", {}).get("username")]
            if not tweets:
                problems.append("no tweets to show")
            elif nameless:
                problems.append(f"{len(nameless)} of {len(tweets)} tweets without their "
                                "author's username")
    slow = _latency_problem(latencies, latency_quantile, max_latency_ms)
    if slow:
        problems.append(slow)
    label = name or f"GET {path} -> {status}{' ' + degraded if degraded else ''}"
    p50 = sorted(latencies)[len(latencies) // 2] if latencies else None
    return _observe(run, label, not problems, "; ".join(sorted(set(problems))) or
                    f"{samples} reads as expected"
                    + (f" (settled {settled_after}s after the fault)" if settle else ""),
                    p50_ms=p50, settled_after_s=settled_after,
                    max_ms=max(latencies) if latencies else None)


def observations_held(configuration: dict | None = None) -> bool:
    """Probe: every observation recorded during the fault was as the hypothesis said."""
    run = context.current(configuration)
    path = run.folder / "observations.jsonl"
    if not path.exists():
        return True
    failed = [json.loads(line) for line in path.read_text().splitlines()]
    failed = [o for o in failed if not o["ok"]]
    if failed:
        raise Deviation("; ".join(f"{o['name']}: {o['detail']}" for o in failed[:3]))
    return True


def observe_writes(seconds: float = 5, status: int = 503, max_latency_ms: float = 1000,
                   retry_after: bool = True, settle: float = 0, latency_quantile: float = 1.0,
                   configuration: dict | None = None) -> dict[str, Any]:
    """Action: while a fault lasts, the ledger's first follower edits their bio and
    follows the prober, again and again for `seconds`; record whether every answer was
    `status` (problem+json, with Retry-After if `retry_after`), their `latency_quantile`
    within `max_latency_ms`. With `settle` > 0, judging starts once 5 writes in a row answered so (each worker's
    breaker must meet the fault first), or fails if that takes longer than `settle` s."""
    run = context.current(configuration)
    from murmur_chaos import ledger

    writer = client.member(ledger.book(run)["followers"][0])
    target = prober(run).username
    calls = [("PATCH", "/users/me", {"json": {"bio": "during a fault"},
                                     "headers": {**writer.auth, "If-Match": "*"}}),
             ("PUT", f"/users/me/following/{target}", {"headers": writer.auth})]
    label = f"writes answer {status}" + (" + Retry-After" if retry_after else "")
    turn = iter(range(1 << 30))

    def attempt() -> tuple[bool, str]:
        method, path, kwargs = calls[next(turn) % len(calls)]
        started = time.perf_counter()
        try:
            resp = requests.request(method, f"{run.api}{path}", timeout=10, **kwargs)
        except requests.RequestException as exc:
            return False, type(exc).__name__
        fast = (time.perf_counter() - started) * 1000 <= max_latency_ms
        return resp.status_code == status and fast, f"{resp.status_code}{'' if fast else ' slow'}"

    settled_after = None
    if settle:
        settled_after, seen = _settle(attempt, settle)
        if settled_after is None:
            return _observe(run, label, False, f"never 5 writes in a row answered {status} "
                            f"within {max_latency_ms:.0f} ms in {settle:g}s (seen: {seen})")
    problems, latencies = [], []
    end = time.monotonic() + seconds
    n = 0
    while n < 4 or time.monotonic() < end:
        method, path, kwargs = calls[n % len(calls)]
        n += 1
        started = time.perf_counter()
        try:
            resp = requests.request(method, f"{run.api}{path}", timeout=10, **kwargs)
        except requests.RequestException as exc:
            problems.append(f"{method} {path}: no answer ({type(exc).__name__})")
            continue
        latencies.append((time.perf_counter() - started) * 1000)
        if resp.status_code != status:
            problems.append(f"{method} {path}: {resp.status_code} instead of {status}")
        elif status >= 400 and not resp.headers.get("Content-Type", "").startswith(
                "application/problem+json"):
            problems.append(f"{method} {path}: not problem+json")
        elif retry_after and not resp.headers.get("Retry-After"):
            problems.append(f"{method} {path}: no Retry-After")
        time.sleep(0.1)
    slow = _latency_problem(latencies, latency_quantile, max_latency_ms)
    if slow:
        problems.append(slow)
    return _observe(run, label, not problems, "; ".join(sorted(set(problems))) or
                    f"{n} writes as expected", settled_after_s=settled_after,
                    max_ms=max(latencies) if latencies else None)


def wait_for_breaker(service: str = "timeline", breaker: str = "cassandra",
                     deadline: float = 60, drive: str = "/users/{prober}/tweets",
                     configuration: dict | None = None) -> dict[str, Any]:
    """Action: wait until `service`'s breaker for the dependency `breaker` is open in some
    worker (the background load, and reads of `drive`, make calls into it); records the
    seconds since the fault started."""
    run = context.current(configuration)
    since = context.last_mark(run, "fault started") or time.time()
    end = time.monotonic() + deadline
    # Breakers are named `<service>.<dependency>` (common.resilience.breaker_name).
    name = f"{service}.{breaker}"
    while time.monotonic() < end:
        if metric(run, service, "murmur_breaker_state", breaker=name) >= 2:
            opened = round(time.time() - since, 2)
            context.set_figures(run, breaker_opened_after_s=opened)
            return _observe(run, f"{service}'s {breaker} breaker opens", True,
                            f"open {opened}s after the fault started")
        requests.get(f"{run.api}{drive.replace('{prober}', prober(run).username)}",
                     timeout=10)
        time.sleep(0.05)
    return _observe(run, f"{service}'s {breaker} breaker opens", False,
                    f"still closed {deadline:.0f}s after the fault started")
