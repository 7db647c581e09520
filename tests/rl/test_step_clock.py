"""`mimictools.rl.step_clock`: the per-phase breakdown of rollout steps behind ``mimic bench --train``.

Only the arithmetic and the marking are checked: how long a phase takes is never asserted."""

from __future__ import annotations

import math

import pytest

from mimictools.rl import step_clock
from mimictools.rl.step_clock import PHASES, StepClock


def test_phase_ms_is_the_mean_gap_between_marks(monkeypatch):
    """Two complete steps with known CPU times (s) -> each phase's mean in ms; an unfinished step is left out."""
    times = iter([0.0, 0.002, 0.003, 0.006, 0.012, 0.013] + [0.013, 0.016, 0.017, 0.021, 0.024] + [2.0, 2.5])
    monkeypatch.setattr(step_clock.time, "perf_counter", lambda: next(times))
    clock = StepClock("cpu")
    for _ in range(1 + 2 * len(PHASES)):  # the first mark, then one at the end of each phase of two steps
        clock.mark()
    clock.mark()
    clock.mark()  # a third step cut short: two phases only
    got = clock.phase_ms()
    assert list(got) == list(PHASES)
    want = {"record": (2 + 0) / 2, "act": (1 + 3) / 2, "physics": (3 + 1) / 2, "post": (6 + 4) / 2, "storage": (1 + 3) / 2}
    assert got == pytest.approx(want)


def test_no_complete_step_gives_no_phases():
    assert StepClock("cpu").phase_ms() == {}


def test_runner_times_one_rollout_by_phase(tmp_path, monkeypatch):
    """Runner.time_rollout_phases marks every step of one real rollout (5 phases, finite, >= 0) and leaves the
    iteration and sample counts alone."""
    pytest.importorskip("mujoco")
    from mimictools.app.run import build_env, resolve_run
    from mimictools.rl.runner import Runner

    cfg, spec = resolve_run(engine="mujoco", num_envs=2, device="cpu", num_threads=1)
    env = build_env(cfg, spec)
    try:
        agent = cfg.agent.__class__(**{**cfg.agent.__dict__, "steps_per_iter": 5})
        runner = Runner(env, agent, tmp_path, seed=0, tensorboard=False)
        marks = []
        original = StepClock.mark

        def counting_mark(self):
            marks.append(1)
            original(self)

        monkeypatch.setattr(StepClock, "mark", counting_mark)
        got = runner.time_rollout_phases()
        assert len(marks) == 1 + 5 * len(PHASES)  # one before the first step, then one per phase
        assert list(got) == list(PHASES)
        assert all(math.isfinite(v) and v >= 0 for v in got.values())
        assert runner.iteration == -1 and runner.samples == 0
        runner.iterate()  # the loop goes on as usual afterwards
        assert runner.iteration == 0 and runner.samples == 10
    finally:
        env.close()
