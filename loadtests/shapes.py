"""Load shapes as plain plans: how many users at which second, and when to stop.

Each plan has `tick(t, probe)`: given the seconds since the run started it returns
`(users, spawn_rate)`, or None to end the run. The locustfile wraps the selected plan in a
Locust `LoadTestShape` (Locust calls `tick` about once a second); `probe()` returns the
run's cumulative statistics by route (`slo.RouteStats`, `seconds` = t), which only the ramp
uses.

- `steady`: `users` users (reached at `spawn_rate`) for `duration` seconds; the SLOs are
            judged over the run after `warmup` seconds (the spawn and the users' sign-ins,
            argon2 on the users service, are not what a steady run measures).
- `ramp`:   `step_users` more users every `step_time` seconds. Each step is judged by the
            SLOs over its own window (after `warmup` seconds, so the new users' sign-in and
            the spawn are not in it). A step that breaks an SLO is run once more with the
            same users (`retries`); the run ends when it breaks again, or after the step at
            `max_users`. The capacity is the throughput of the last step where every SLO
            held.
- `spike`:  `base` users, then all `users` at once (a burst), then back to `base` to watch
            recovery: base for the first 30 % of `duration`, the burst until 50 %, recovery
            for the rest. Judged after `warmup` like steady: the burst is in the window.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping

from loadtests import slo

Snapshot = Mapping[str, slo.RouteStats]
Probe = Callable[[], Snapshot]
Tick = tuple[int, float] | None


def _no_probe() -> Snapshot:
    return {}


def window(start: Snapshot, end: Snapshot, seconds: float) -> dict[str, slo.RouteStats]:
    """What happened between two snapshots of a run, by route, over `seconds`."""
    result = {}
    for route, stats in end.items():
        result[route] = stats.minus(start.get(route, slo.RouteStats(route)))
        result[route].seconds = seconds
    return result


@dataclass
class Windowed:
    """A plan judged over one window: from `warmup` seconds to its last tick."""

    warmup: float = -1.0  # < 0: the plan's default
    baseline: Snapshot | None = None
    baseline_t: float = 0.0
    last_t: float = 0.0

    def _observe(self, t: float, probe: Probe) -> None:
        self.last_t = t
        if self.baseline is None and t >= self.warmup:
            self.baseline, self.baseline_t = probe(), t

    def judged_window(self, end: Snapshot) -> dict[str, slo.RouteStats] | None:
        """The run's statistics after the warm-up (None if it never ended)."""
        if self.baseline is None:
            return None
        return window(self.baseline, end, max(0.0, self.last_t - self.baseline_t))


@dataclass
class Steady(Windowed):
    users: int = 20
    spawn_rate: float = 5.0
    duration: float = 60.0

    def __post_init__(self) -> None:
        if self.warmup < 0:
            self.warmup = min(30.0, self.duration / 4)

    def tick(self, t: float, probe: Probe = _no_probe) -> Tick:
        if t >= self.duration:
            return None
        self._observe(t, probe)
        return self.users, self.spawn_rate

    def describe(self) -> str:
        return (f"steady: {self.users} users for {self.duration:g}s (spawn {self.spawn_rate:g}/s;"
                f" judged after {self.warmup:g}s)")


@dataclass
class Spike(Windowed):
    users: int = 100
    spawn_rate: float = 5.0
    duration: float = 120.0
    base: int = 0  # 0: a fifth of `users`
    spike_from: float = 0.3
    spike_to: float = 0.5

    def __post_init__(self) -> None:
        if not self.base:
            self.base = max(1, self.users // 5)
        if self.warmup < 0:
            self.warmup = min(30.0, self.spike_from * self.duration / 2)

    def tick(self, t: float, probe: Probe = _no_probe) -> Tick:
        if t >= self.duration:
            return None
        self._observe(t, probe)
        if self.spike_from * self.duration <= t < self.spike_to * self.duration:
            # The burst arrives within about a second, whatever the spawn rate.
            return self.users, float(max(self.spawn_rate, self.users))
        return self.base, float(max(self.spawn_rate, self.users))

    def describe(self) -> str:
        return (f"spike: {self.base} users, {self.users} from {self.spike_from * self.duration:g}s"
                f" to {self.spike_to * self.duration:g}s, {self.base} until {self.duration:g}s"
                f" (judged after {self.warmup:g}s)")


@dataclass
class Step:
    """One judged step of the ramp."""

    users: int
    rps: float
    results: list[slo.Result]
    window: dict[str, slo.RouteStats]

    @property
    def held(self) -> bool:
        return not slo.breaches(self.results)


@dataclass
class Ramp:
    judge: Callable[[Snapshot], list[slo.Result]]
    step_users: int = 20
    step_time: float = 30.0
    max_users: int = 400
    spawn_rate: float = 10.0
    warmup: float = 10.0
    # A step that breaks is run once more at the same users before the ramp ends: the
    # machine may share its cores, and one noisy step should not end a ramp.
    retries: int = 1
    steps: list[Step] = field(default_factory=list)
    finished: str = ""  # why the ramp ended
    _level: int = 0  # users = step_users * (level + 1)
    _tries: int = 0  # breaks at this level so far
    _step_start: float | None = None
    _window_start: Snapshot | None = None
    _window_t: float = 0.0

    def users_at(self, level: int) -> int:
        return min(self.step_users * (level + 1), self.max_users)

    def tick(self, t: float, probe: Probe = _no_probe) -> Tick:
        if self.finished:
            return None
        if self._step_start is None:
            self._step_start = t
        elif t - self._step_start >= self.step_time:
            if not self._judge_step(probe(), t):
                return None
            self._step_start, self._window_start = t, None
        if self._window_start is None and t - self._step_start >= self.warmup:
            self._window_start, self._window_t = probe(), t
        return self.users_at(self._level), self.spawn_rate

    def _judge_step(self, end: Snapshot, t: float) -> bool:
        """Judge the step that just ended (at `t`); False ends the ramp."""
        users = self.users_at(self._level)
        judged = window(self._window_start or {}, end,
                        t - self._window_t if self._window_start is not None else 0.0)
        http = slo.combine(s for r, s in judged.items() if not r.startswith(slo.FRESHNESS_PREFIX))
        rps = http.requests / http.seconds if http.seconds > 0 else 0.0
        step = Step(users, rps, self.judge(judged), judged)
        self.steps.append(step)
        if not step.held:
            self._tries += 1
            if self._tries <= self.retries:
                return True  # the same users once more
            names = ", ".join(r.objective.label for r in slo.breaches(step.results))
            self.finished = f"step {len(self.steps)} ({users} users) broke again: {names}"
            return False
        if users >= self.max_users:
            self.finished = (f"reached the top step ({users} users) with every SLO held: the "
                             "capacity is at least this; raise USERS to find it")
            return False
        self._level, self._tries = self._level + 1, 0
        return True

    @property
    def capacity(self) -> Step | None:
        """The last step where every SLO held before the ramp ended, if any."""
        held = [step for step in self.steps if step.held]
        return held[-1] if held else None

    def describe(self) -> str:
        return (f"ramp: +{self.step_users} users every {self.step_time:g}s up to "
                f"{self.max_users} (judged after {self.warmup:g}s of each step)")

    def report(self) -> str:
        """The steps as a table, then the capacity line."""
        rows = [("step", "users", "req/s", "verdict", "broken objectives")]
        for n, step in enumerate(self.steps, 1):
            broken = ", ".join(f"{r.objective.label} = {r.shown}"
                               for r in slo.breaches(step.results))
            again = n > 1 and self.steps[n - 2].users == step.users
            rows.append((str(n), str(step.users), f"{step.rps:.1f}",
                         ("held" if step.held else "BROKE") + (" (again)" if again else ""),
                         broken))
        widths = [max(len(r[i]) for r in rows) for i in range(5)]
        lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
        lines.insert(1, "  ".join("-" * w for w in widths))
        cap = self.capacity
        lines.append("")
        lines.append(f"capacity: {cap.rps:.1f} requests/s at {cap.users} users (step "
                     f"{self.steps.index(cap) + 1}, the last where every SLO held)" if cap else
                     "capacity: none - the first step broke an SLO, twice")
        if self.finished:
            lines.append(f"ended: {self.finished}")
        return "\n".join(lines)


SHAPES = ("steady", "ramp", "spike")


def build(name: str, judge: Callable[[Snapshot], list[slo.Result]] | None = None,
          users: int | None = None, spawn_rate: float | None = None,
          duration: float | None = None, step_users: int | None = None,
          step_time: float | None = None, warmup: float | None = None):
    """The plan called `name`, with the given settings over its defaults."""
    given = {k: v for k, v in dict(users=users, spawn_rate=spawn_rate, duration=duration,
                                   warmup=warmup).items() if v is not None}
    if name == "steady":
        return Steady(**given)
    if name == "spike":
        return Spike(**given)
    if name == "ramp":
        given.pop("warmup", None)
        if judge is None:
            raise ValueError("the ramp needs a judge (the SLO evaluation of one step)")
        settings = {"max_users": users, "spawn_rate": spawn_rate, "step_users": step_users,
                    "step_time": step_time, "warmup": warmup}
        ramp = Ramp(judge, **{k: v for k, v in settings.items() if v is not None})
        if warmup is None:
            ramp.warmup = ramp.step_time / 3
        if ramp.warmup >= ramp.step_time:
            raise ValueError("the ramp's warmup must be shorter than a step")
        return ramp
    raise ValueError(f"unknown shape {name!r}: choose one of {', '.join(SHAPES)}")


def parse_seconds(text: str) -> float:
    """'90', '90s', '5m', '1h30m' -> seconds."""
    text = text.strip().lower()
    if not text:
        raise ValueError("empty duration")
    if text.replace(".", "", 1).isdigit():
        return float(text)
    total, number = 0.0, ""
    for ch in text:
        if ch.isdigit() or ch == ".":
            number += ch
        elif ch in "hms" and number:
            total += float(number) * {"h": 3600, "m": 60, "s": 1}[ch]
            number = ""
        else:
            raise ValueError(f"not a duration: {text!r} (use 90, 90s, 5m or 1h30m)")
    if number:
        raise ValueError(f"not a duration: {text!r} (a number without a unit at the end)")
    return total
