"""The physics stability probe that `mimic train` runs before training (`mimictools.app.stability`)."""

from __future__ import annotations

import pytest
import torch

from mimictools.app.run import resolve_run
from mimictools.app.stability import SPEED_LIMIT_RAD_S, probe_stability

pytest.importorskip("mujoco")


def _probe(sim_freq: int, **kw):
    cfg, spec = resolve_run(overrides=[f"engine.sim_freq={sim_freq}"])  # the bundled demo
    return probe_stability(cfg.env, cfg.engine, spec.motion_file, spec.char_file, **kw)


def test_bundled_humanoid_is_stable_at_240_hz_and_blows_up_at_60():
    """Measured 2026-11-24: ~28 rad/s at 240 Hz, ~71 at 120 Hz, ~3e7 at 60 Hz (explicit PD, too coarse a step)."""
    fine = _probe(240)
    assert fine.stable and 1.0 < fine.max_speed_rad_s < SPEED_LIMIT_RAD_S  # it moved, within human speeds
    assert "stable at 240 Hz" in fine.message()
    coarse = _probe(60)
    assert not coarse.stable and coarse.max_speed_rad_s > 10 * SPEED_LIMIT_RAD_S
    assert "UNSTABLE at 60 Hz" in coarse.message() and "engine.sim_freq=240" in coarse.message()


def test_probe_leaves_the_global_rng_alone():
    torch.manual_seed(123)
    want = torch.rand(3)
    torch.manual_seed(123)
    _probe(240, num_envs=2, steps=5)
    torch.testing.assert_close(torch.rand(3), want)
