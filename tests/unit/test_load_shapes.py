"""Load shapes: steady, spike and the ramp that finds the capacity at the SLOs."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from loadtests import shapes, slo  # noqa: E402

P95_300 = [slo.Objective("GET /timeline", "p95", max=300)]


def judge(window):
    return slo.evaluate(P95_300, window, min_samples=20, no_data_passes=True)


class FakeRun:
    """A closed-loop system: each user makes 1 request/s; p95 is 100 ms while the users
    are at most `knee`, 1000 ms beyond. `probe` returns cumulative stats at `t`."""

    def __init__(self, knee: int) -> None:
        self.knee = knee
        self.requests = 0
        self.hist: dict[int, int] = {}
        self.t = 0.0

    def advance(self, t: float, users: int) -> None:
        n = int(round((t - self.t) * users))
        ms = 100 if users <= self.knee else 1000
        self.requests += n
        self.hist[ms] = self.hist.get(ms, 0) + n
        self.t = t

    def probe(self):
        return {"GET /timeline": slo.RouteStats("GET /timeline", self.requests, 0, 0, 0,
                                                dict(self.hist), self.t)}


def drive(plan, run: FakeRun | None = None, until: float = 10_000):
    """Tick once a second like Locust does; return [(t, users)] until the plan ends."""
    ticks, t, users = [], 0.0, 0
    while t < until:
        if run:
            run.advance(t, users)
        step = plan.tick(t, run.probe if run else shapes._no_probe)
        if step is None:
            return ticks
        users = step[0]
        ticks.append((t, users))
        t += 1
    raise AssertionError("the plan never ended")


def test_steady_holds_its_users_for_the_duration_then_ends():
    ticks = drive(shapes.Steady(users=7, spawn_rate=2, duration=30))
    assert len(ticks) == 30 and {u for _, u in ticks} == {7}


def test_spike_bursts_from_base_to_peak_and_recovers():
    plan = shapes.Spike(users=50, spawn_rate=5, duration=100)
    ticks = dict(drive(plan))
    assert plan.base == 10
    assert ticks[0] == 10 and ticks[29] == 10
    assert ticks[30] == 50 and ticks[49] == 50
    assert ticks[50] == 10 and ticks[99] == 10 and 100 not in ticks
    # the burst arrives at once, whatever the spawn rate
    assert plan.tick(30)[1] >= 50


def test_the_ramp_steps_up_until_an_slo_breaks_twice_and_reports_the_last_step_that_held():
    run = FakeRun(knee=60)
    plan = shapes.Ramp(judge, step_users=20, step_time=30, max_users=400, warmup=10)
    ticks = drive(plan, run)
    assert [u for t, u in ticks if t % 30 == 0] == [20, 40, 60, 80, 80]
    assert [s.held for s in plan.steps] == [True, True, True, False, False]
    cap = plan.capacity
    assert cap.users == 60
    # each step is judged over its own window (20 s after a 10 s warm-up): 60 users, 1/s
    assert cap.rps == pytest.approx(60, rel=0.06)
    assert "broke again: GET /timeline p95" in plan.finished
    report = plan.report()
    assert "capacity: 6" in report and "at 60 users (step 3" in report
    assert "BROKE (again)" in report


def test_one_noisy_step_does_not_end_the_ramp():
    # The machine is busy with something else during the 40-user step only.
    run = FakeRun(knee=1000)
    plan = shapes.Ramp(judge, step_users=20, step_time=30, max_users=100, warmup=10)
    t, users = 0.0, 0
    while True:
        run.knee = 0 if 30 <= t < 60 else 1000
        run.advance(t, users)
        step = plan.tick(t, run.probe)
        if step is None:
            break
        users, t = step[0], t + 1
    assert [(s.users, s.held) for s in plan.steps] == [
        (20, True), (40, False), (40, True), (60, True), (80, True), (100, True)]
    assert plan.capacity.users == 100 and "reached the top step" in plan.finished


def test_a_step_is_judged_on_its_own_window_not_the_whole_run():
    # Slow only during step 2's warm-up (the new users' spawn): the judged windows are fast.
    plan = shapes.Ramp(judge, step_users=10, step_time=30, max_users=30, warmup=10)
    run = FakeRun(knee=1000)
    t, users = 0.0, 0
    while True:
        run.knee = 0 if 30 <= t < 40 else 1000
        run.advance(t, users)
        step = plan.tick(t, run.probe)
        if step is None:
            break
        users, t = step[0], t + 1
    assert [s.held for s in plan.steps] == [True, True, True]
    assert "reached the top step" in plan.finished and plan.capacity.users == 30


def test_a_ramp_whose_first_step_breaks_twice_has_no_capacity():
    plan = shapes.Ramp(judge, step_users=20, step_time=10, max_users=100, warmup=3)
    drive(plan, FakeRun(knee=0))
    assert plan.capacity is None and [s.users for s in plan.steps] == [20, 20]
    assert "capacity: none" in plan.report()


def test_shapes_are_built_by_name_with_their_settings():
    assert isinstance(shapes.build("steady", users=3), shapes.Steady)
    spike = shapes.build("spike", users=40, duration=60)
    assert (spike.users, spike.duration) == (40, 60)
    ramp = shapes.build("ramp", judge=judge, users=200, step_users=25, step_time=60)
    assert (ramp.max_users, ramp.step_users, ramp.step_time, ramp.warmup) == (200, 25, 60, 20)
    with pytest.raises(ValueError, match="unknown shape 'square'"):
        shapes.build("square")
    with pytest.raises(ValueError, match="needs a judge"):
        shapes.build("ramp")
    with pytest.raises(ValueError, match="warmup must be shorter"):
        shapes.build("ramp", judge=judge, step_time=10, warmup=10)


@pytest.mark.parametrize("text, seconds", [("90", 90), ("90s", 90), ("5m", 300),
                                           ("1h30m", 5400), ("2.5s", 2.5)])
def test_durations_read_like_locusts(text, seconds):
    assert shapes.parse_seconds(text) == seconds


@pytest.mark.parametrize("text", ["", "5x", "m", "10m5"])
def test_a_bad_duration_is_refused(text):
    with pytest.raises(ValueError):
        shapes.parse_seconds(text)


def test_steady_and_spike_are_judged_after_their_warm_up():
    # Slow (1 s) while the users spawn and sign in, fast afterwards.
    plan = shapes.Steady(users=10, spawn_rate=10, duration=120, warmup=20)
    run = FakeRun(knee=1000)
    t, users = 0.0, 0
    while True:
        run.knee = 0 if t < 20 else 1000
        run.advance(t, users)
        step = plan.tick(t, run.probe)
        if step is None:
            break
        users, t = step[0], t + 1
    whole = run.probe()
    judged = plan.judged_window(whole)
    assert plan.baseline_t == 20 and plan.last_t == 119
    assert judged["GET /timeline"].histogram == {100: 1000}  # none of the slow warm-up
    assert judged["GET /timeline"].seconds == 99
    assert [r.verdict for r in judge(judged)] == ["PASS"]
    assert [r.verdict for r in judge(whole)] == ["FAIL"]  # the warm-up would have failed it
    assert shapes.Steady(duration=60).warmup == 15 and shapes.Steady(duration=600).warmup == 30
    assert shapes.Spike(duration=100).warmup == 15


def test_a_plan_that_ended_before_its_warm_up_has_no_window():
    plan = shapes.Steady(users=1, duration=5, warmup=10)
    drive(plan)
    assert plan.judged_window({}) is None
