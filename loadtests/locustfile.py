"""Murmur's Locust workload: `locust -f loadtests/locustfile.py` (or `make load`).

Two user classes:
- `SocialUser`: a seeded account that signs in once and then reads, posts, follows and
  deletes in the DeathStarBench-like mix of `workload.MIX`, at its own pace (a few users are
  very busy, most are light). Requests are named by route template.
- `FreshnessUser` (one by default): posts as an author with followers and polls one
  follower's home timeline until the tweet is there; the post->visible time is reported as
  its own request type, FRESHNESS, so Locust's statistics, CSV files and HTML report show
  its median, p95 and p99 beside the HTTP routes.

Settings come from MURMUR_LOAD_* environment variables (set by `loadtests/run.py`, or by the
Helm chart's load generator): the shape (steady | ramp | spike; unset: the web UI's own
controls), the SLO file, the seed manifest, and the report folder. At the end of a run
the SLO table is printed and written to the report folder, and the exit code is non-zero
on any breach (a `quitting` listener sets it: Locust's --check-* options cannot express a
percentile per route).
"""

from __future__ import annotations

import json
import logging
import os
import random
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import gevent
from locust import FastHttpUser, LoadTestShape, between, events, task
from locust.runners import MasterRunner, WorkerRunner

from loadtests import shapes, slo, workload
from loadtests.workload import (FOLLOWING, FRESH_CELEBRITY, FRESH_FANOUT, FRESH_POLL,
                                FRESH_POST, HOME, HOME_PAGE_2, MIX, PROFILE, SESSIONS, TWEET,
                                TWEETS, USER_TWEETS, USER_TWEETS_PAGE_2)

log = logging.getLogger("murmur.load")
HERE = Path(__file__).resolve().parent


def _env(name: str, default: str = "") -> str:
    return os.environ.get(f"MURMUR_LOAD_{name}", "") or default


@dataclass(frozen=True)
class Settings:
    manifest: str = _env("MANIFEST", str(HERE.parent / "var/seed/dev.json"))
    slo_file: str = _env("SLO", str(HERE / "slo.toml"))
    shape: str = _env("SHAPE")
    users: str = _env("USERS")
    spawn_rate: str = _env("SPAWN_RATE")
    duration: str = _env("DURATION")
    step_users: str = _env("STEP_USERS")
    step_time: str = _env("STEP_TIME")
    warmup: str = _env("WARMUP")
    run_dir: str = _env("RUN_DIR")
    think: float = float(_env("THINK", "1.0"))  # mean seconds between a user's actions
    signin_rate: float = float(_env("SIGNIN_RATE", "8"))  # sign-ins/s of this process
    freshness_users: int = int(_env("FRESHNESS_USERS", "1"))
    freshness_timeout: float = float(_env("FRESHNESS_TIMEOUT", "30"))
    freshness_poll: float = float(_env("FRESHNESS_POLL", "0.1"))
    # How many author/follower pairs of each kind the freshness user rotates through: a
    # few, so it signs in a few accounts once instead of two new ones every round.
    freshness_pairs: int = int(_env("FRESHNESS_PAIRS", "5"))
    seed: int = int(_env("SEED", str(random.SystemRandom().randrange(1 << 30))))
    page: int = int(_env("PAGE", "20"))  # the page size clients ask for (limit=)
    # TOUR=1: each user first walks every route of the mix once (smoke runs and tests,
    # where a short run must touch every route); the mix's proportions follow.
    tour: bool = _env("TOUR", "0") == "1"
    # REPORT_ON_STOP=1: print the SLO table whenever a run stops, not only when Locust
    # quits (the chart's load generator: its master lives on between runs).
    report_on_stop: bool = _env("REPORT_ON_STOP", "0") == "1"


SETTINGS = Settings()


def _shown(path: str) -> str:
    """A path as the report shows it: relative to the repository when inside it."""
    try:
        return str(Path(path).resolve().relative_to(HERE.parent))
    except ValueError:
        return path

OBJECTIVES = slo.load(SETTINGS.slo_file)
_manifest: workload.Manifest | None = None


def manifest() -> workload.Manifest:
    global _manifest
    if _manifest is None:
        _manifest = workload.load_manifest(SETTINGS.manifest)
    return _manifest


# ------------------------------------------------------------------- 429 / 503 counting

# (method, name) -> [throttled, unavailable], since the last report to the master.
COUNTS: dict[tuple[str, str], list[int]] = {}


@events.request.add_listener
def _count_throttling(request_type, name, response=None, exception=None, **_kw) -> None:
    if exception is None or response is None:
        return
    status = getattr(response, "status_code", 0)
    if status == 429:
        COUNTS.setdefault((request_type, name), [0, 0])[0] += 1
    elif status == 503 and response.headers.get("Retry-After"):
        COUNTS.setdefault((request_type, name), [0, 0])[1] += 1


@events.report_to_master.add_listener
def _send_counts(client_id, data, **_kw) -> None:
    data["murmur_counts"] = [[m, n, *c] for (m, n), c in COUNTS.items()]
    COUNTS.clear()


@events.worker_report.add_listener
def _merge_counts(client_id, data, **_kw) -> None:
    for method, name, throttled, unavailable in data.get("murmur_counts", []):
        counts = COUNTS.setdefault((method, name), [0, 0])
        counts[0] += throttled
        counts[1] += unavailable


def snapshot(environment, seconds: float) -> dict[str, slo.RouteStats]:
    """The run's statistics so far, by route ("<METHOD> <name>")."""
    stats = {}
    for (name, method), entry in list(environment.runner.stats.entries.items()):
        throttled, unavailable = COUNTS.get((method, name), (0, 0))
        route = f"{method} {name}"
        stats[route] = slo.RouteStats(route, entry.num_requests, entry.num_failures, throttled,
                                      unavailable, dict(entry.response_times), seconds)
    return stats


# ------------------------------------------------------------------------ sessions

_tokens: dict[str, tuple[str, float]] = {}  # username -> (token, renew after; monotonic)
_next_signin = 0.0


def token_for(user: FastHttpUser, username: str, fresh: bool = False) -> str:
    """A session token for `username`: signed in once per process and kept.

    Sign-ins are paced below nginx's per-address sign-in limit (SIGNIN_RATE per process;
    `run.py` divides it by the number of processes), and a 429 is honoured: wait for its
    Retry-After, then try again. Each 429 still counts, under "POST /sessions".
    """
    global _next_signin
    cached = _tokens.get(username)
    if cached and not fresh and cached[1] > time.monotonic():
        return cached[0]
    for _ in range(20):
        now = time.monotonic()
        slot = max(now, _next_signin)
        _next_signin = slot + 1 / SETTINGS.signin_rate
        if slot > now:
            gevent.sleep(slot - now)
        with user.client.post("/api/v1/sessions", name=SESSIONS, catch_response=True, json={
                "username": username, "password": manifest().password}) as resp:
            if resp.status_code == 200:
                body = resp.json()
                _tokens[username] = (body["access_token"],
                                     time.monotonic() + int(body["expires_in"]) - 60)
                return body["access_token"]
            resp.failure(_failure_text(resp))
            if resp.status_code not in (429, 503):
                raise RuntimeError(f"cannot sign in {username}: HTTP {resp.status_code}")
            retry_after = resp.headers.get("Retry-After") or "1"
        gevent.sleep(float(retry_after) if retry_after.isdigit() else 1.0)
    raise RuntimeError(f"cannot sign in {username}: still refused after 20 tries")


def _failure_text(resp) -> str:
    """A failure message that groups well: status and problem title, never an id."""
    title = ""
    try:
        title = (resp.json() or {}).get("title", "")
    except Exception:  # noqa: BLE001 - not JSON: the status says enough
        pass
    return f"HTTP {resp.status_code} {title}".strip()


class MurmurUser(FastHttpUser):
    abstract = True
    network_timeout = 15.0
    connection_timeout = 5.0

    def call(self, method: str, path: str, name: str, token: str | None = None,
             ok: tuple[int, ...] = (200,), **kwargs):
        """One request named `name`; a status outside `ok` is a failure (its text says
        which status, so failures.csv groups them). Returns the response."""
        headers = kwargs.pop("headers", {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        with self.client.request(method, path, name=name, headers=headers,
                                 catch_response=True, **kwargs) as resp:
            if resp.status_code in ok:
                resp.success()
            else:
                resp.failure(_failure_text(resp))
            return resp


# ---------------------------------------------------------------------- the mix


class SocialUser(MurmurUser):
    """A seeded account using Murmur the way the mix says, at its own pace."""

    weight = 100

    def wait_time(self) -> float:
        return workload.think_time(self.rng, SETTINGS.think, self.busy)

    def on_start(self) -> None:
        self.rng = random.Random(f"{SETTINGS.seed}-{id(self)}")
        self.account = workload.pick_account(manifest(), self.rng)
        self.busy = workload.activity(self.rng)
        self.home_cursor: str | None = None
        self.author_cursor: tuple[str, str] | None = None
        self.own: deque[str] = deque(maxlen=50)  # ids of tweets this user posted
        self.seen: deque[str] = deque(maxlen=50)  # ids met in timelines
        self.churn: str | None = None  # the account followed by churn, to unfollow next
        self.token = token_for(self, self.account.username)
        if SETTINGS.tour:
            self.tour()

    def tour(self) -> None:
        """Every route of the mix once: pages 2 follow their first pages, the tweet viewed
        is one just read, the churn follows then unfollows, the delete removes a new post."""
        for step in (self.home_page_2, self.user_tweets_page_2, self.profile, self.post,
                     self.tweet, self.follow_churn, self.follow_churn, self.delete):
            step()

    def authed(self, method: str, path: str, name: str, ok=(200,), **kwargs):
        resp = self.call(method, path, name, token=self.token, ok=ok, **kwargs)
        if resp.status_code == 401:  # expired: sign in again for the next request
            self.token = token_for(self, self.account.username, fresh=True)
        return resp

    def _page(self, resp) -> tuple[list[dict], str | None]:
        if resp.status_code != 200:
            return [], None
        body = resp.json()
        items = body.get("items", [])
        self.seen.extend(t["id"] for t in items[:5])
        return items, body.get("next_cursor")

    @task(MIX["home"])
    def home(self) -> None:
        _, self.home_cursor = self._page(self.authed(
            "GET", f"/api/v1/timeline?limit={SETTINGS.page}", HOME))

    @task(MIX["home_page_2"])
    def home_page_2(self) -> None:
        """The next page of the last home read (a first page is read when there is none)."""
        if not self.home_cursor:
            self.home()
        if self.home_cursor:
            _, self.home_cursor = self._page(self.authed(
                "GET", f"/api/v1/timeline?limit={SETTINGS.page}&cursor={self.home_cursor}",
                HOME_PAGE_2))

    @task(MIX["user_tweets"])
    def user_tweets(self) -> None:
        author = workload.pick_author(manifest(), self.rng).username
        _, cursor = self._page(self.authed(
            "GET", f"/api/v1/users/{author}/tweets?limit={SETTINGS.page}", USER_TWEETS))
        self.author_cursor = (author, cursor) if cursor else None

    @task(MIX["user_tweets_page_2"])
    def user_tweets_page_2(self) -> None:
        if not self.author_cursor:
            self.user_tweets()
        if self.author_cursor:
            author, cursor = self.author_cursor
            _, more = self._page(self.authed(
                "GET", f"/api/v1/users/{author}/tweets?limit={SETTINGS.page}&cursor={cursor}",
                USER_TWEETS_PAGE_2))
            self.author_cursor = (author, more) if more else None

    @task(MIX["post"])
    def post(self) -> None:
        resp = self.authed("POST", "/api/v1/tweets", TWEETS, ok=(201,),
                           json={"text": workload.tweet_text(self.rng)},
                           headers={"Idempotency-Key": workload.idempotency_key()})
        if resp.status_code == 201:
            self.own.append(resp.json()["id"])

    @task(MIX["delete"])
    def delete(self) -> None:
        if not self.own:
            self.post()
        if self.own:
            self.authed("DELETE", f"/api/v1/tweets/{self.own.popleft()}", TWEET, ok=(204,))

    @task(MIX["profile"])
    def profile(self) -> None:
        author = workload.pick_author(manifest(), self.rng).username
        self.authed("GET", f"/api/v1/users/{author}", PROFILE)

    @task(MIX["tweet"])
    def tweet(self) -> None:
        if not self.seen:
            self.home()
        if self.seen:
            # 404 is a right answer too: its author may have deleted it meanwhile.
            self.authed("GET", f"/api/v1/tweets/{self.rng.choice(self.seen)}", TWEET,
                        ok=(200, 404))

    @task(MIX["follow_churn"])
    def follow_churn(self) -> None:
        """Follow someone new, and on the next turn unfollow them again: the seeded graph
        (and with it the freshness pairs) is left as it was."""
        if self.churn:
            self.authed("DELETE", f"/api/v1/users/me/following/{self.churn}", FOLLOWING,
                        ok=(204,))
            self.churn = None
        else:
            self.churn = workload.churn_target(manifest(), self.rng,
                                               self.account.username).username
            self.authed("PUT", f"/api/v1/users/me/following/{self.churn}", FOLLOWING, ok=(204,))

    def on_stop(self) -> None:
        if getattr(self, "churn", None):
            self.authed("DELETE", f"/api/v1/users/me/following/{self.churn}", FOLLOWING,
                        ok=(204,))


# ------------------------------------------------------------------ fan-out freshness


class FreshnessUser(MurmurUser):
    """Posts as an author with followers, polls one follower's home timeline until the
    tweet is there, and reports post->visible as a FRESHNESS request: from the post's 201
    to the end of the first home-timeline read that holds it (so it includes one read;
    the poll interval, FRESHNESS_POLL, is the resolution)."""

    fixed_count = SETTINGS.freshness_users
    wait_time = between(0.5, 1.5)

    def on_start(self) -> None:
        self.rng = random.Random(f"{SETTINGS.seed}-fresh-{id(self)}")
        self.round = 0
        m, n = manifest(), SETTINGS.freshness_pairs
        self.fanout_pairs = self.rng.sample(m.fanout_pairs, min(n, len(m.fanout_pairs)))
        self.celebrity_pairs = self.rng.sample(m.celebrity_pairs,
                                               min(n, len(m.celebrity_pairs)))
        if not self.fanout_pairs and not self.celebrity_pairs:
            raise RuntimeError("the seed manifest has no author/follower pairs")

    @task
    def measure(self) -> None:
        """Three rounds in four measure a fanned-out author, the fourth a celebrity."""
        celebrity = bool(self.celebrity_pairs) and (self.round % 4 == 3 or not self.fanout_pairs)
        pairs = self.celebrity_pairs if celebrity else self.fanout_pairs
        self.round += 1
        author, follower = pairs[self.round % len(pairs)]
        author_token, follower_token = token_for(self, author), token_for(self, follower)
        resp = self.call("POST", "/api/v1/tweets", FRESH_POST, token=author_token, ok=(201,),
                         json={"text": f"freshness {workload.tweet_text(self.rng)}"[:280]},
                         headers={"Idempotency-Key": workload.idempotency_key()})
        if resp.status_code != 201:
            return
        tweet_id = resp.json()["id"]
        accepted = time.perf_counter()
        started = time.time()
        name = FRESH_CELEBRITY if celebrity else FRESH_FANOUT
        deadline = accepted + SETTINGS.freshness_timeout
        while True:
            poll = self.call("GET", "/api/v1/timeline?limit=20", FRESH_POLL, token=follower_token)
            if poll.status_code == 200 and any(t["id"] == tweet_id
                                               for t in poll.json().get("items", [])):
                self.environment.events.request.fire(
                    request_type="FRESHNESS", name=name, start_time=started,
                    response_time=(time.perf_counter() - accepted) * 1000, response_length=0,
                    response=None, context={}, exception=None)
                return
            if time.perf_counter() >= deadline:
                self.environment.events.request.fire(
                    request_type="FRESHNESS", name=name, start_time=started,
                    response_time=(time.perf_counter() - accepted) * 1000, response_length=0,
                    response=None, context={},
                    exception=TimeoutError(f"not visible within {SETTINGS.freshness_timeout:g}s"))
                return
            gevent.sleep(SETTINGS.freshness_poll)


if SETTINGS.freshness_users <= 0:
    FreshnessUser.abstract = True  # only the mix


# ------------------------------------------------------------------------- shapes

PLAN = None


def _judge_step(window) -> list[slo.Result]:
    return slo.evaluate(OBJECTIVES, window, min_samples=20, no_data_passes=True,
                        skip_metrics=frozenset({"rps"}))


def _seconds(text: str) -> float | None:
    return shapes.parse_seconds(text) if text else None


def _number(text: str, kind=int):
    return kind(text) if text else None


if SETTINGS.shape:
    PLAN = shapes.build(
        SETTINGS.shape, judge=_judge_step, users=_number(SETTINGS.users),
        spawn_rate=_number(SETTINGS.spawn_rate, float), duration=_seconds(SETTINGS.duration),
        step_users=_number(SETTINGS.step_users), step_time=_seconds(SETTINGS.step_time),
        warmup=_seconds(SETTINGS.warmup))

    class MurmurShape(LoadTestShape):
        """The shape named by MURMUR_LOAD_SHAPE (see loadtests/shapes.py)."""

        def tick(self):
            t = self.get_run_time()
            return PLAN.tick(t, lambda: snapshot(self.runner.environment, t))


# ------------------------------------------------------------------- end of a run


@events.test_start.add_listener
def _announce(environment, **_kw) -> None:
    COUNTS.clear()  # Locust resets its statistics for a new run (the web UI's): so do we
    if not isinstance(environment.runner, WorkerRunner):
        log.info("Murmur load: %s; SLOs from %s; manifest %s", PLAN.describe() if PLAN else
                 "users and rate from the command line or the web UI", SETTINGS.slo_file,
                 SETTINGS.manifest)


def _judged_stats(environment) -> tuple[dict[str, slo.RouteStats], str]:
    """The statistics the SLOs are judged on, and which part of the run they cover: after
    the warm-up for steady and spike, else the whole run."""
    total = environment.runner.stats.total
    seconds = max(0.0, (total.last_request_timestamp or 0) - (total.start_time or 0))
    whole = snapshot(environment, seconds)
    if isinstance(PLAN, shapes.Windowed):
        judged = PLAN.judged_window(whole)
        if judged is not None:
            return judged, (f"from {PLAN.baseline_t:.0f}s to {PLAN.last_t:.0f}s of the run "
                            f"(after a {PLAN.warmup:g}s warm-up)")
    return whole, "the whole run"


def _judge(environment) -> list[slo.Result]:
    return slo.evaluate(OBJECTIVES, _judged_stats(environment)[0])


@events.test_stop.add_listener
def _report_on_stop(environment, **_kw) -> None:
    if SETTINGS.report_on_stop and not isinstance(environment.runner, WorkerRunner):
        results = _judge(environment)
        lines = [f"SLOs ({_shown(SETTINGS.slo_file)}):", slo.table(results)]
        if isinstance(PLAN, shapes.Ramp):
            lines += ["", PLAN.report()]
        log.info("run stopped\n%s", "\n".join(lines))


@events.quitting.add_listener
def _judge_run(environment, **_kw) -> None:
    """Print and write the SLO table; a breach makes the exit code 1."""
    if isinstance(environment.runner, WorkerRunner) or environment.runner is None:
        return
    judged, span = _judged_stats(environment)
    results = slo.evaluate(OBJECTIVES, judged)
    failed = slo.breaches(results)
    ramp = PLAN if isinstance(PLAN, shapes.Ramp) else None
    if ramp:
        # The whole run includes the step that broke: its table is for reading only.
        lines = [f"SLOs over the whole run, steps that broke included "
                 f"({_shown(SETTINGS.slo_file)}):", slo.table(results), "",
                 "Ramp (each step judged over its own window; this is the verdict):",
                 ramp.report()]
        cap = ramp.capacity
        if cap:
            lines += ["", f"Routes at the capacity step ({cap.users} users):",
                      slo.routes_table(cap.window)]
        code = 0 if cap else 1
    else:
        lines = [f"Routes, {span}:", slo.routes_table(judged), "",
                 f"SLOs, {span} ({_shown(SETTINGS.slo_file)}):", slo.table(results)]
        code = 1 if failed else 0
    if failed and not ramp:
        lines += ["", "BREACHED: " + "; ".join(f"{r.objective.label} = {r.shown} "
                                              f"(wants {r.objective.threshold})" for r in failed)]
    text = "\n".join(lines)
    if not SETTINGS.run_dir:  # run.py prints it last, after Locust's own summary
        print("\n" + text + "\n", flush=True)
    else:
        out = Path(SETTINGS.run_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "slo.txt").write_text(text + "\n")
        summary = {"passed": not failed, "exit_code": code, "slo_file": _shown(SETTINGS.slo_file),
                   "judged": span, "routes": slo.routes_json(judged),
                   "results": slo.as_json(results),
                   "throttled": {f"{m} {n}": c[0] for (m, n), c in COUNTS.items() if c[0]},
                   "unavailable": {f"{m} {n}": c[1] for (m, n), c in COUNTS.items() if c[1]}}
        if ramp:
            cap = ramp.capacity
            summary["ramp"] = {
                "capacity_rps": cap.rps if cap else None, "capacity_users": cap.users if cap
                else None, "ended": ramp.finished,
                "steps": [{"users": s.users, "rps": s.rps, "held": s.held,
                           "results": slo.as_json(s.results),
                           "routes": slo.routes_json(s.window)} for s in ramp.steps]}
        (out / "slo.json").write_text(json.dumps(summary, indent=2) + "\n")
    environment.process_exit_code = code


@events.init.add_listener
def _check_manifest(environment, **_kw) -> None:
    """Fail at start, not at the first user, when the manifest is missing or empty."""
    if isinstance(environment.runner, MasterRunner):
        return  # the workers use it; the master only needs the SLOs
    try:
        manifest()
    except workload.ManifestError as exc:
        log.error("%s", exc)
        raise SystemExit(2)
