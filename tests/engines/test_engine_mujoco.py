"""MuJoCo CPU engine specifics: PD control, torque clamp, ball joints, threads, integrator choice."""

from __future__ import annotations

from pathlib import Path

import mujoco
import numpy as np
import pytest
import torch
from engine_testlib import HUMANOID_INIT_POSE, pose_state, random_state, step

from mimictools.character import kinematics
from mimictools.character.mjcf import load_character
from mimictools.engines.base import EngineSpec, SimState, set_state
from mimictools.engines.mujoco import MuJoCoEngine, mujoco_body_poses
from mimictools.errors import EngineError
from mimictools.math.rotations import exp_map_to_quat, quat_diff_angle


def _tpose_in_air(char, n: int, height: float = 10.0) -> SimState:
    frame = [0.0] * char.frame_width
    frame[2] = height
    return pose_state(frame, n)


def test_pd_drives_one_hinge_to_its_target(humanoid):
    eng = MuJoCoEngine(humanoid, EngineSpec(num_envs=1))
    start = _tpose_in_air(humanoid, 1)
    set_state(eng, None, start)
    elbow = humanoid.dof_names.index("right_elbow")
    targets = start.dof_pos.float().clone()
    targets[0, elbow] = 1.2
    for _ in range(30):  # 1 s of free fall (10 m up: no ground contact yet)
        step(eng, targets)
    s = eng.get_state()
    assert abs(s.dof_pos[0, elbow].item() - 1.2) < 1e-3
    others = [i for i in range(humanoid.num_dofs) if i != elbow]
    assert s.dof_pos[0, others].abs().max().item() < 0.02  # the reaction torque only nudges the rest
    eng.close()


def test_pd_torque_formula_and_clamp(humanoid):
    """MjData.actuator_force (what MuJoCo applies) = clip(kp (target - q) - kd qdot, +-actuatorfrcrange)."""
    eng = MuJoCoEngine(humanoid, EngineSpec(num_envs=1))
    sim = eng.sim_model
    m = eng.mj_model
    set_state(eng, None, _tpose_in_air(humanoid, 1, height=30.0))
    elbow = humanoid.dof_names.index("right_elbow")
    act = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_ACTUATOR, "pd_right_elbow")
    jnt = m.actuator_trnid[act, 0]
    limit = sim.effort_limit[act]
    assert limit == 70.0 and sim.kp[act] == 300.0 and sim.kd[act] == 30.0

    def check(d: mujoco.MjData) -> float:
        q, qd = d.qpos[m.jnt_qposadr[jnt]], d.qvel[m.jnt_dofadr[jnt]]
        raw = float(sim.kp[act] * (d.ctrl[act] - q) - sim.kd[act] * qd)
        assert np.all(np.abs(d.actuator_force) <= sim.effort_limit + 1e-9)
        assert d.actuator_force[act] == pytest.approx(np.clip(raw, -limit, limit), rel=1e-9, abs=1e-9)
        return raw

    targets = torch.zeros(1, humanoid.num_dofs)
    targets[0, elbow] = 2.0  # kp * 2 rad = 600 N m >> 70 N m, from rest
    eng.set_targets(targets)
    d = eng.mj_data(0)  # the state the next physics step starts from, with this ctrl
    assert check(d) == pytest.approx(600.0) and d.actuator_force[act] == pytest.approx(limit)
    for _ in range(60):  # 2 s of free fall from 30 m: no ground yet
        step(eng, targets)
        check(eng.mj_data(0))
    q = float(eng.mj_data(0).qpos[m.jnt_qposadr[jnt]])
    assert abs(q - 2.0) < 1e-3
    targets[0, elbow] = q + 0.01  # small error: the unclamped PD torque
    eng.set_targets(targets)
    assert 0.0 < abs(check(eng.mj_data(0))) < limit
    eng.close()


def test_passive_springs_removed_gains_kept(humanoid):
    eng = MuJoCoEngine(humanoid, EngineSpec(num_envs=1))
    m = eng.mj_model
    assert np.all(m.jnt_stiffness == 0.0) and np.all(m.dof_damping == 0.0)
    ref = mujoco.MjModel.from_xml_path(humanoid.source)
    np.testing.assert_array_equal(m.dof_armature, ref.dof_armature)
    assert m.opt.integrator == mujoco.mjtIntegrator.mjINT_IMPLICITFAST
    assert m.opt.timestep == pytest.approx(1.0 / 240.0)
    # one PD actuator per hinge, gains from the MJCF stiffness/damping, clamp from actuatorfrcrange
    assert m.nu == humanoid.num_dofs
    for a in range(m.nu):
        jnt = m.actuator_trnid[a, 0]
        assert m.actuator_gainprm[a, 0] == pytest.approx(ref.jnt_stiffness[jnt])
        assert m.actuator_biasprm[a, 2] == pytest.approx(-ref.dof_damping[ref.jnt_dofadr[jnt]])
        np.testing.assert_allclose(m.actuator_forcerange[a], ref.jnt_actfrcrange[jnt])
    eng.close()


def test_euler_blows_up_where_implicitfast_holds(humanoid):
    """Why implicitfast: with explicit Euler at 240 Hz the PD damping of light bodies is unstable."""
    results = {}
    for integrator in ("implicitfast", "euler"):
        eng = MuJoCoEngine(humanoid, EngineSpec(num_envs=1), integrator=integrator)
        start = pose_state(HUMANOID_INIT_POSE, 1)
        set_state(eng, None, start)
        for _ in range(30):
            step(eng, start.dof_pos.float())
        s = eng.get_state()
        results[integrator] = (
            s.root_pos[0, 2].item(),
            (s.dof_pos.double() - start.dof_pos).abs().max().item(),
        )
        eng.close()
    assert results["implicitfast"][0] > 0.85 and results["implicitfast"][1] < 0.05
    assert results["euler"][0] < 0.6 or results["euler"][1] > 0.3, results


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_results_do_not_depend_on_thread_count(humanoid, threads):
    n = 5
    runs = []
    for t in (1, threads):
        eng = MuJoCoEngine(humanoid, EngineSpec(num_envs=n, num_threads=t))
        set_state(eng, None, random_state(humanoid, n, seed=7, height=1.0))
        g = torch.Generator().manual_seed(8)
        for _ in range(10):
            step(eng, 0.5 * torch.randn(n, humanoid.num_dofs, generator=g))
        runs.append((eng.get_state(), eng.contact_forces(), eng.num_threads))
        eng.close()
    (s0, c0, _), (s1, c1, nt) = runs
    assert nt == min(threads, n)
    for x, y in zip(list(s0.fields()) + [c0], list(s1.fields()) + [c1]):
        assert torch.equal(x, y)


def test_contact_forces_are_a_substep_average(humanoid):
    """Standing still for a control step: the averaged ground force equals the weight, not substeps x weight."""
    eng = MuJoCoEngine(humanoid, EngineSpec(num_envs=1, sim_freq=480.0))
    assert eng.substeps == 16
    start = pose_state(HUMANOID_INIT_POSE, 1)
    set_state(eng, None, start)
    for _ in range(30):
        step(eng, start.dof_pos.float())
    weight_n = float(mujoco.MjModel.from_xml_path(humanoid.source).body_subtreemass[1] * 9.81)
    assert eng.contact_forces()[0, :, 2].sum().item() == pytest.approx(weight_n, rel=0.02)
    set_state(eng, None, start)
    assert eng.contact_forces().abs().max().item() == 0.0
    eng.close()


def test_no_ground_means_no_contact_sensors(humanoid):
    eng = MuJoCoEngine(humanoid, EngineSpec(num_envs=2, ground=False))
    assert eng.mj_model.nsensor == 0 and eng.sim_model.ground_geom == -1
    set_state(eng, None, pose_state(HUMANOID_INIT_POSE, 2))
    step(eng, torch.zeros(2, humanoid.num_dofs))
    assert eng.contact_forces().abs().max().item() == 0.0
    eng.close()


def test_bad_inputs_raise(humanoid):
    with pytest.raises(EngineError, match="integer multiple"):
        MuJoCoEngine(humanoid, EngineSpec(num_envs=1, sim_freq=100.0))
    with pytest.raises(EngineError, match="control_mode"):
        MuJoCoEngine(humanoid, EngineSpec(num_envs=1, control_mode="torque"))
    eng = MuJoCoEngine(humanoid, EngineSpec(num_envs=2))
    with pytest.raises(EngineError, match="dof_targets"):
        step(eng, torch.zeros(3, humanoid.num_dofs))
    with pytest.raises(EngineError, match="NaN"):
        step(eng, torch.full((2, humanoid.num_dofs), float("nan")))
    with pytest.raises(EngineError, match="env_ids"):
        set_state(eng, torch.tensor([2]), pose_state(HUMANOID_INIT_POSE, 1))
    with pytest.raises(EngineError, match="root_pos"):
        set_state(eng, torch.tensor([0, 1]), pose_state(HUMANOID_INIT_POSE, 1))
    eng.close()
    with pytest.raises(EngineError, match="closed"):
        eng.get_state()


def test_mujoco_body_poses_match_fk_on_a_clip(humanoid, shared_dir):
    from mimictools.motion import load_motion

    frames = torch.as_tensor(
        load_motion(shared_dir / "mimickit/data/motions/humanoid/humanoid_run.pkl").frames,
        dtype=torch.float64,
    )
    pos, rot = mujoco_body_poses(
        humanoid, frames[:, 0:3], exp_map_to_quat(frames[:, 3:6]), frames[:, 6:], chunk=8
    )
    ref_pos, ref_rot = kinematics.frames_to_body_poses(humanoid, frames)
    assert (pos - ref_pos).abs().max().item() < 1e-9  # float64 end to end
    assert quat_diff_angle(rot, ref_rot).abs().max().item() < 1e-7


BALL_XML = """
<mujoco model="ball_arm">
  <compiler angle="radian"/>
  <worldbody>
    <body name="base" pos="0 0 1">
      <freejoint name="root"/>
      <geom name="base" type="sphere" size="0.1" density="1000"/>
      <body name="arm" pos="0 0 -0.15">
        <joint name="shoulder" type="ball" range="0 2.5" actuatorfrcrange="-20 20" stiffness="50" damping="5" armature="0.01"/>
        <geom name="arm" type="capsule" fromto="0 0 0 0 0 -0.3" size="0.04" density="1000"/>
        <body name="forearm" pos="0 0 -0.35">
          <joint name="elbow" type="hinge" axis="0 1 0" range="-2 2" actuatorfrcrange="-10 10" stiffness="30" damping="3" armature="0.01"/>
          <geom name="forearm" type="capsule" fromto="0 0 0 0 0 -0.25" size="0.03" density="1000"/>
        </body>
      </body>
    </body>
  </worldbody>
</mujoco>
"""


@pytest.fixture()
def ball_char(tmp_path: Path):
    path = tmp_path / "ball_arm.xml"
    path.write_text(BALL_XML)
    return load_character(path)


def test_ball_joint_round_trip_fk_and_pd(ball_char):
    assert [j.kind for j in ball_char.joints] == ["spherical", "hinge"] and ball_char.joints[0].is_ball
    eng = MuJoCoEngine(ball_char, EngineSpec(num_envs=3))
    assert eng.mj_model.nu == 4  # 3 exp-map component actuators for the ball + 1 hinge
    state = random_state(ball_char, 3, seed=9, height=20.0)
    set_state(eng, None, state)
    s = eng.get_state()
    for x, y in zip(s.fields(), state.fields()):
        if x.shape[-1] == 4:
            assert quat_diff_angle(x.double(), y).abs().max().item() < 1e-5
        else:
            assert (x.double() - y).abs().max().item() < 2e-5
    ref_pos, _ = kinematics.forward_kinematics(
        ball_char, state.root_pos, state.root_rot, kinematics.dof_to_local_rot(ball_char, state.dof_pos)
    )
    assert (eng.body_pos().double() - ref_pos).abs().max().item() < 1e-5

    # PD on the ball joint: exp-map target reached in free fall
    set_state(eng, None, pose_state([0.0, 0.0, 20.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0], 3))
    target = torch.tensor([[0.4, -0.3, 0.5, 0.7]]).repeat(3, 1)
    for _ in range(45):
        step(eng, target)
    reached = eng.get_state().dof_pos
    assert (reached - target).abs().max().item() < 2e-3, reached
    eng.close()


def test_missing_mjcf_file_is_an_engine_error(humanoid, tmp_path):
    from dataclasses import replace

    ghost = replace(humanoid, source=str(tmp_path / "nope.xml"))
    with pytest.raises(EngineError, match="not a file"):
        MuJoCoEngine(ghost, EngineSpec(num_envs=1))


@pytest.mark.parametrize("which", ["humanoid", "ball"])
def test_numpy_dof_map_matches_kinematics(humanoid, ball_char, which):
    """The engine's numpy conversions are kinematics' formulas: same results to rounding, incl. hard cases."""
    from mimictools.engines.mujoco import _DofMap

    char = humanoid if which == "humanoid" else ball_char
    n = 256
    state = random_state(char, n, seed=10)
    dof = state.dof_pos.clone()
    g = torch.Generator().manual_seed(11)
    # hard cases for spherical joints: near 0, near pi, beyond pi, gimbal lock of hinge triples
    for j in char.joints:
        if j.kind == "spherical":
            sl = slice(j.dof_offset, j.dof_offset + 3)
            dof[0:8, sl] = 1e-9 * torch.randn(8, 3, generator=g, dtype=torch.float64)
            axis = torch.nn.functional.normalize(torch.randn(16, 3, generator=g, dtype=torch.float64), dim=-1)
            dof[8:24, sl] = axis * torch.linspace(3.0, 3.3, 16, dtype=torch.float64)[:, None]
            y = torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64)
            dof[24:32, sl] = (torch.pi / 2 + 1e-7 * torch.randn(8, 1, generator=g, dtype=torch.float64)) * y
    dm = _DofMap(char)
    args = [
        t.numpy()
        for t in (state.root_pos, state.root_rot, state.root_vel, state.root_ang_vel, dof, state.dof_vel)
    ]
    qpos, qvel = dm.to_qpos_qvel(*args)
    ref_qpos = kinematics.dof_to_qpos(char, state.root_pos, state.root_rot, dof)
    ref_qvel = kinematics.dof_vel_to_qvel(
        char, state.root_rot, dof, state.root_vel, state.root_ang_vel, state.dof_vel
    )
    np.testing.assert_allclose(qpos, ref_qpos.numpy(), rtol=0, atol=1e-12)
    # at gimbal lock (rows 24-31) J is singular (cond ~1e9): rounding is amplified to ~1e-8 relative there
    np.testing.assert_allclose(qvel[:24], ref_qvel[:24].numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(qvel[32:], ref_qvel[32:].numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(qvel[24:32], ref_qvel[24:32].numpy(), rtol=1e-6, atol=1e-6)
    back = dm.from_qpos_qvel(qpos, qvel)
    ref_dof = kinematics.qpos_to_dof(char, torch.from_numpy(qpos))
    ref_vel = kinematics.qvel_to_dof_vel(char, torch.from_numpy(qpos), torch.from_numpy(qvel))
    for ours, ref in zip(back, list(ref_dof[:2]) + list(ref_vel[:2]) + [ref_dof[2], ref_vel[2]]):
        np.testing.assert_allclose(ours, ref.numpy(), rtol=1e-12, atol=1e-12)


def test_body_poses_after_subset_reset_match_mj_kinematics(humanoid):
    """``body_pos``/``body_rot`` recompute only the envs whose state changed (a subset reset, then a step);
    every env's poses equal a fresh ``mj_kinematics`` of its own qpos, bit for bit."""
    n = 6
    eng = MuJoCoEngine(humanoid, EngineSpec(num_envs=n, num_threads=1))
    set_state(eng, None, random_state(humanoid, n, seed=3))
    step(eng, torch.zeros(n, humanoid.num_dofs))
    eng.body_pos()  # all envs fresh
    ids = torch.tensor([1, 4])
    set_state(eng, ids, random_state(humanoid, 2, seed=4))
    got_pos, got_rot = eng.body_pos().double().numpy(), eng.body_rot().double().numpy()
    m, sim = eng.mj_model, eng.sim_model
    for _ in range(2):
        for i in range(n):
            d = eng.mj_data(i)
            mujoco.mj_kinematics(m, d)
            np.testing.assert_array_equal(got_pos[i], d.xpos[sim.body_ids].astype(np.float32))
            np.testing.assert_array_equal(got_rot[i], d.xquat[sim.body_ids].astype(np.float32))
        step(eng, torch.zeros(n, humanoid.num_dofs))
        got_pos, got_rot = eng.body_pos().double().numpy(), eng.body_rot().double().numpy()
    eng.close()
