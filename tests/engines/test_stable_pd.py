"""Stable (implicit) PD in the MuJoCo model recipe (`mimictools.engines.mjcf_build`, ``EngineSpec.implicit_pd``)
and MuJoCo's instability resets counted by the CPU engine (``MuJoCoEngine.unstable_steps``)."""

from __future__ import annotations

import mujoco
import numpy as np
import pytest
import torch
from engine_testlib import HUMANOID_INIT_POSE, pose_state, step

from mimictools.engines.base import EngineSpec, set_state
from mimictools.engines.mjcf_build import build_sim_model
from mimictools.engines.mujoco import MuJoCoEngine


@pytest.mark.parametrize("hz", [120.0, 240.0])
def test_implicit_pd_adds_kp_dt_damping_to_the_actuators(humanoid, hz):
    explicit = build_sim_model(humanoid, EngineSpec(num_envs=1, sim_freq=hz, implicit_pd=False))
    implicit = build_sim_model(humanoid, EngineSpec(num_envs=1, sim_freq=hz, implicit_pd=True))
    np.testing.assert_array_equal(explicit.kd_implicit, 0.0)
    np.testing.assert_allclose(implicit.kd_implicit, implicit.kp / hz)
    np.testing.assert_array_equal(implicit.kd, explicit.kd)  # the joint's own gain is unchanged
    np.testing.assert_allclose(-explicit.model.actuator_biasprm[:, 2], explicit.kd)
    np.testing.assert_allclose(-implicit.model.actuator_biasprm[:, 2], implicit.kd + implicit.kp / hz)
    # MuJoCo's force is kp (ctrl - q) - (kd + kp dt) qdot, clamped
    m = implicit.model
    d = mujoco.MjData(m)
    rng = np.random.default_rng(0)
    d.qpos[7:] = rng.uniform(-0.3, 0.3, m.nq - 7)
    d.qvel[6:] = rng.uniform(-2.0, 2.0, m.nv - 6)
    d.ctrl[:] = rng.uniform(-0.3, 0.3, m.nu)
    mujoco.mj_forward(m, d)
    q = d.qpos[m.jnt_qposadr[m.actuator_trnid[:, 0]]]
    qd = d.qvel[m.jnt_dofadr[m.actuator_trnid[:, 0]]]
    want = implicit.kp * (d.ctrl - q) - (implicit.kd + implicit.kp / hz) * qd
    want = np.clip(want, -implicit.effort_limit, implicit.effort_limit)
    np.testing.assert_allclose(d.actuator_force, want, rtol=1e-9, atol=1e-9)


def _hold_pose(humanoid, hz: float, implicit: bool, steps: int = 30):
    eng = MuJoCoEngine(humanoid, EngineSpec(num_envs=1, sim_freq=hz, implicit_pd=implicit, num_threads=1))
    start = pose_state(HUMANOID_INIT_POSE, 1)
    set_state(eng, None, start)
    for _ in range(steps):
        step(eng, start.dof_pos.float())
    s = eng.get_state()
    out = (s.root_pos[0, 2].item(), (s.dof_pos.double() - start.dof_pos).abs().max().item())
    eng.close()
    return out


def test_implicit_pd_tracks_a_standing_pose_like_explicit_pd_at_240_hz(humanoid):
    """Same tracking behaviour where both are stable: holding the init pose for 1 s."""
    height_e, err_e = _hold_pose(humanoid, 240.0, False)
    height_i, err_i = _hold_pose(humanoid, 240.0, True)
    assert height_i > 0.85 and err_i < 0.05
    assert abs(height_i - height_e) < 0.02 and abs(err_i - err_e) < 0.02


def test_cpu_engine_counts_mujoco_instability_resets(humanoid):
    """Random 1-rad PD targets at 60 Hz with explicit PD: MuJoCo's 'Nan, Inf or huge value in QACC' resets."""
    eng = MuJoCoEngine(humanoid, EngineSpec(num_envs=4, sim_freq=60, control_freq=30, num_threads=1))
    assert eng.unstable_steps() == 0
    g = torch.Generator().manual_seed(0)
    for _ in range(30):
        step(eng, torch.randn(4, humanoid.num_dofs, generator=g))
    n = eng.unstable_steps(reset=True)
    assert n > 0
    assert eng.unstable_steps() == 0  # cleared
    eng.close()


def test_no_resets_counted_on_stable_physics(humanoid):
    eng = MuJoCoEngine(humanoid, EngineSpec(num_envs=1, num_threads=1))
    start = pose_state(HUMANOID_INIT_POSE, 1)
    set_state(eng, None, start)
    for _ in range(30):
        step(eng, start.dof_pos.float())
    assert eng.unstable_steps() == 0
    eng.close()
