"""The Engine contract, written only against ``mimictools.engines.base.Engine``: every engine must pass it.

Engines come from ``conftest.ENGINES`` (one line per engine). Reference values come from our own FK
(``mimictools.character.kinematics``) and, for the body weight, from MuJoCo's compile of the MJCF (a number
about the character, not about the engine under test).
"""

from __future__ import annotations

import math

import mujoco
import torch
from engine_testlib import HUMANOID_INIT_POSE, pose_state, random_state, standing_init_state, step

from mimictools.character import kinematics
from mimictools.engines.base import SimState, set_state
from mimictools.math.rotations import exp_map_to_quat, quat_diff_angle, quat_to_exp_map

GRAVITY = 9.81


def _state_close(a: SimState, b: SimState, atol: float) -> None:
    for name, x, y in zip(
        ("root_pos", "root_rot", "root_vel", "root_ang_vel", "dof_pos", "dof_vel"), a.fields(), b.fields()
    ):
        x, y = x.double().cpu(), y.double().cpu()
        if name == "root_rot":
            err = quat_diff_angle(x, y).abs().max().item()
        else:
            err = (x - y).abs().max().item()
        assert err <= atol, f"{name}: max error {err:.3g} > {atol}"


def _put(eng, ids: torch.Tensor, state: SimState) -> SimState:
    """``set_state`` with what a task passes (float32 on the engine's device); returns that state as float64
    CPU (the reference: float32-rounded inputs)."""
    dev = eng.device
    set_state(eng, ids.to(dev), SimState(*(t.to(device=dev, dtype=torch.float32) for t in state.fields())))
    return SimState(*(t.float().double() for t in state.fields()))


def _targets(eng, dof: torch.Tensor) -> torch.Tensor:
    return dof.to(device=eng.device, dtype=torch.float32)


def test_shapes_dtypes_devices(engine_factory, character):
    n, nb, nd = 3, character.num_bodies, character.num_dofs
    eng = engine_factory(character, n)
    assert eng.num_envs == n and eng.character is character
    assert math.isclose(eng.control_dt, 1.0 / 30.0) and math.isclose(eng.sim_dt, 1.0 / 240.0)
    _put(eng, torch.arange(n), pose_state(HUMANOID_INIT_POSE, n))
    step(eng, eng.get_state().dof_pos)
    s = eng.get_state()
    shapes = [(n, 3), (n, 4), (n, 3), (n, 3), (n, nd), (n, nd)]
    for t, shape in zip(s.fields(), shapes):
        assert tuple(t.shape) == shape and t.dtype == torch.float32 and t.device == eng.device
    for t, shape in (
        (eng.body_pos(), (n, nb, 3)),
        (eng.body_rot(), (n, nb, 4)),
        (eng.contact_forces(), (n, nb, 3)),
    ):
        assert tuple(t.shape) == shape and t.dtype == torch.float32 and t.device == eng.device
        assert torch.isfinite(t).all()


def test_set_get_round_trip_with_velocities(engine_factory, character):
    n = 16
    eng = engine_factory(character, n)
    state = _put(eng, torch.arange(n), random_state(character, n, seed=1))
    # float32 outputs; hinge-triple exp map -> Euler -> exp map and J / J^-1 velocity maps are exact in float64
    _state_close(eng.get_state(), state, atol=2e-5)


def test_body_poses_after_set_state_match_our_fk(engine_factory, character):
    n = 16
    eng = engine_factory(character, n)
    state = _put(eng, torch.arange(n), random_state(character, n, seed=2))
    local_rot = kinematics.dof_to_local_rot(character, state.dof_pos)
    ref_pos, ref_rot = kinematics.forward_kinematics(character, state.root_pos, state.root_rot, local_rot)
    pos_err_m = (eng.body_pos().double().cpu() - ref_pos).abs().max().item()
    rot_err_rad = quat_diff_angle(eng.body_rot().double().cpu(), ref_rot).abs().max().item()
    assert pos_err_m < 1e-5, pos_err_m  # float32 output of ~2 m coordinates: ~1e-7 m rounding
    assert rot_err_rad < 1e-5, rot_err_rad


def test_body_poses_on_clip_frames_match_our_fk(engine_factory, character, shared_dir):
    from mimictools.motion import load_motion

    motion = load_motion(shared_dir / "mimickit/data/motions/humanoid/humanoid_spinkick.pkl")
    frames = torch.as_tensor(motion.frames[::4], dtype=torch.float32).double()  # what float32 inputs can say
    n = frames.shape[0]
    eng = engine_factory(character, n)
    z = torch.zeros(n, 3, dtype=torch.float64)
    root_rot = exp_map_to_quat(frames[:, 3:6])
    state = SimState(frames[:, 0:3], root_rot, z, z, frames[:, 6:], torch.zeros_like(frames[:, 6:]))
    state = _put(eng, torch.arange(n), state)
    frames = torch.cat([state.root_pos, quat_to_exp_map(state.root_rot), state.dof_pos], dim=-1)
    ref_pos, ref_rot = kinematics.frames_to_body_poses(character, frames)
    assert (eng.body_pos().double().cpu() - ref_pos).abs().max().item() < 1e-5
    assert quat_diff_angle(eng.body_rot().double().cpu(), ref_rot).abs().max().item() < 1e-5


def test_free_fall_holds_pose(engine_factory, character):
    """Gravity is uniform, so in free fall PD targets = the pose keep the pose; the root falls ballistically."""
    n = 2
    eng = engine_factory(character, n)
    frame = [0.0] * character.frame_width  # T-pose (no self-contact), a few joints bent
    frame[2] = 3.0
    frame[6:9] = [0.3, -0.2, 0.4]  # abdomen
    frame[6 + character.dof_names.index("right_elbow")] = 0.8
    frame[6 + character.dof_names.index("left_knee")] = 0.6
    start = _put(eng, torch.arange(n), pose_state(frame, n))
    targets = _targets(eng, start.dof_pos)
    steps = 15
    for _ in range(steps):
        step(eng, targets)
    s = eng.get_state()
    t = steps * eng.control_dt
    assert (s.dof_pos.double() - start.dof_pos).abs().max().item() < 1e-3
    assert s.dof_vel.abs().max().item() < 1e-2
    # semi-implicit integration is within g * dt * t of the closed form
    z_ref = 3.0 - 0.5 * GRAVITY * t * t
    assert abs(s.root_pos[0, 2].item() - z_ref) < GRAVITY * eng.sim_dt * t + 1e-3
    assert abs(s.root_vel[0, 2].item() + GRAVITY * t) < 1e-3
    assert eng.contact_forces().abs().max().item() == 0.0


def test_standing_pose_settles_on_the_ground(engine_factory, character):
    n = 2
    eng = engine_factory(character, n)
    start = _put(eng, torch.arange(n), standing_init_state(character, n))
    for _ in range(30):  # 1 s
        step(eng, _targets(eng, start.dof_pos))
    s = eng.get_state()
    assert (s.root_pos[:, 2].double().cpu() - start.root_pos[:, 2]).abs().max().item() < 0.02
    assert s.root_vel.abs().max().item() < 0.05
    cf = eng.contact_forces().double().cpu()
    feet = [
        character.body_index("right_foot"),
        character.body_index("left_foot"),
    ]  # both humanoids name them so
    weight_n = mujoco.MjModel.from_xml_path(character.source).body_subtreemass[1] * GRAVITY
    assert (cf[:, feet, 2] > 0.2 * weight_n).all(), cf[:, feet]
    total = cf.sum(dim=1)
    assert torch.allclose(total[:, 2], torch.full((n,), weight_n, dtype=torch.float64), rtol=0.02), total
    assert total[:, :2].abs().max().item() < 0.02 * weight_n
    others = [b for b in range(character.num_bodies) if b not in feet]
    assert cf[:, others].abs().max().item() == 0.0


def test_subset_reset_leaves_other_envs_alone(engine_factory, character):
    n = 4
    a = engine_factory(character, n)
    b = engine_factory(character, n)
    start = pose_state(HUMANOID_INIT_POSE, n)
    g = torch.Generator().manual_seed(3)
    targets = [
        _targets(
            a, start.dof_pos + 0.2 * torch.randn(n, character.num_dofs, generator=g, dtype=torch.float64)
        )
        for _ in range(10)
    ]
    for eng in (a, b):
        _put(eng, torch.arange(n), start)
        for t in targets[:5]:
            step(eng, t)
    before = a.get_state()
    reset = _put(a, torch.tensor([3, 1]), random_state(character, 2, seed=4))
    after = a.get_state()
    keep = torch.tensor([0, 2], device=a.device)
    for x, y in zip(before.index(keep).fields(), after.index(keep).fields()):
        assert torch.equal(x, y)
    _state_close(after.index(torch.tensor([3, 1], device=a.device)), reset, atol=2e-5)
    for eng in (a, b):
        for t in targets[5:]:
            step(eng, t)
    # the untouched envs evolve exactly as in an engine that saw no reset
    for x, y in zip(a.get_state().index(keep).fields(), b.get_state().index(keep).fields()):
        torch.testing.assert_close(x, y, rtol=0.0, atol=1e-6)
    torch.testing.assert_close(a.body_pos()[keep], b.body_pos()[keep], rtol=0.0, atol=1e-6)


def test_same_inputs_same_outputs(engine_factory, character):
    n = 3
    runs = []
    for _ in range(2):
        eng = engine_factory(character, n)
        _put(eng, torch.arange(n), random_state(character, n, seed=5, height=1.0))
        g = torch.Generator().manual_seed(6)
        for _ in range(20):
            step(eng, _targets(eng, 0.5 * torch.randn(n, character.num_dofs, generator=g)))
        runs.append((eng.get_state(), eng.body_pos(), eng.body_rot(), eng.contact_forces()))
    (s0, p0, r0, c0), (s1, p1, r1, c1) = runs
    for x, y in zip(list(s0.fields()) + [p0, r0, c0], list(s1.fields()) + [p1, r1, c1]):
        torch.testing.assert_close(x, y, rtol=0.0, atol=1e-6)
