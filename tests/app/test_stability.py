"""The physics stability probe that `mimic train` runs before training (`mimictools.app.stability`)."""

from __future__ import annotations

import pytest
import torch

from mimictools.app.run import resolve_run
from mimictools.app.stability import SPEED_LIMIT_RAD_S, PhysicsWatch, StabilityProbe, probe_stability

pytest.importorskip("mujoco")


def _probe(sim_freq: int, **kw):
    cfg, spec = resolve_run(overrides=[f"engine.sim_freq={sim_freq}"])  # the bundled demo
    return probe_stability(cfg.env, cfg.engine, spec.motion_file, spec.char_file, **kw)


def test_bundled_humanoid_is_stable_at_240_hz_and_blows_up_at_60():
    """Measured 2026-11-24: ~28 rad/s at 240 Hz, ~71 at 120 Hz, ~3e7 at 60 Hz (explicit PD, too coarse a step);
    the bundled demo clip (a squat), not the spinkick."""
    fine = _probe(240)
    assert fine.stable and 1.0 < fine.max_speed_rad_s < SPEED_LIMIT_RAD_S  # it moved, within human speeds
    assert "stable at 240 Hz" in fine.message()
    coarse = _probe(60)
    assert not coarse.stable and coarse.max_speed_rad_s > 10 * SPEED_LIMIT_RAD_S
    msg = coarse.message()
    assert "UNSTABLE at 60 Hz" in msg
    # the advice names a rate that was probed and found stable, never the rate already set
    assert coarse.higher and coarse.higher[-1].stable and coarse.higher[-1].sim_freq > 60
    assert f"engine.sim_freq={coarse.higher[-1].sim_freq:g}" in msg and "engine.sim_freq=60" not in msg


def test_mujoco_resets_make_a_probe_unstable_whatever_the_speed():
    probe = StabilityProbe(240.0, 50.0, unstable_steps=3, env_steps=2000)  # > 1e-3 of the env-steps
    assert StabilityProbe(240.0, 50.0, unstable_steps=2, env_steps=9600).stable  # rare: tolerated
    assert not probe.stable and "3 MuJoCo instability resets" in probe.message()
    assert "engine.sim_freq=240" not in probe.message()


def test_physics_watch_warns_once_and_sums():
    class FakeEngine:
        counts = [5, 0, 2, 4]  # the first read (at construction) is the probe's, not the run's

        def unstable_steps(self, reset=False):
            return self.counts.pop(0)

    lines = []
    watch = PhysicsWatch(FakeEngine(), 120, lines.append)
    seen = []
    update = watch.wrap(seen.append)
    for it in range(3):
        update(type("Rep", (), {"iteration": it})())
    assert len(seen) == 3 and len(lines) == 1
    assert "120 Hz" in lines[0] and "2 env-steps" in lines[0] and "iteration 1" in lines[0]
    assert watch.total == 6 and "6 env-steps" in watch.summary()
    assert PhysicsWatch(object(), 240, lines.append).summary() is None  # engines without a counter


def test_probe_leaves_the_global_rng_alone():
    torch.manual_seed(123)
    want = torch.rand(3)
    torch.manual_seed(123)
    _probe(240, num_envs=2, steps=5)
    torch.testing.assert_close(torch.rand(3), want)
