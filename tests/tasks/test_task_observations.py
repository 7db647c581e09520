"""DeepMimic observation functions: sizes, hand-checked values, frame invariances."""

from __future__ import annotations

import math

import pytest
import torch

from mimictools.tasks.observations import (
    ObsConfig,
    compute_char_obs,
    compute_deepmimic_obs,
    compute_phase_obs,
    compute_tar_obs,
    deepmimic_obs_size,
    motion_phase,
)

KEY_IDS = torch.tensor([2, 5, 8, 11, 14])


def _obs(cfg, sim, tars, phase=None):
    """Observation of ``sim`` with future reference states ``tars`` (list of TrackState)."""
    return compute_deepmimic_obs(
        cfg,
        sim.root_pos,
        sim.root_rot,
        sim.root_vel,
        sim.root_ang_vel,
        sim.joint_rot,
        sim.dof_vel,
        sim.body_pos[:, KEY_IDS],
        phase=phase,
        tar_root_pos=torch.stack([t.root_pos for t in tars], 1),
        tar_root_rot=torch.stack([t.root_rot for t in tars], 1),
        tar_joint_rot=torch.stack([t.joint_rot for t in tars], 1),
        tar_key_pos=torch.stack([t.body_pos[:, KEY_IDS] for t in tars], 1),
    )


def test_default_humanoid_config_is_464_wide(make_state):
    cfg = ObsConfig()
    assert deepmimic_obs_size(cfg, num_bodies=15, num_dofs=28, num_key_bodies=5) == 464
    sim = make_state(4, seed=1)
    tars = [make_state(4, seed=s) for s in (2, 3, 4)]
    obs = _obs(cfg, sim, tars)
    assert obs.shape == (4, 464)
    assert torch.isfinite(obs).all()


@pytest.mark.parametrize(
    "cfg",
    [
        ObsConfig(global_obs=False),
        ObsConfig(root_height_obs=False),
        ObsConfig(enable_phase_obs=True, num_phase_encoding=4),
        ObsConfig(enable_phase_obs=True, num_phase_encoding=0),
        ObsConfig(enable_tar_obs=False),
        ObsConfig(tar_obs_steps=(1,), global_obs=False, root_height_obs=False),
    ],
)
def test_obs_size_matches_formula(make_state, cfg):
    sim = make_state(3, seed=1)
    tars = [make_state(3, seed=10 + s) for s in range(len(cfg.tar_obs_steps))]
    phase = torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64)
    obs = _obs(cfg, sim, tars, phase=phase)
    assert obs.shape == (3, deepmimic_obs_size(cfg, 15, 28, 5))


def test_char_obs_hand_checked_values():
    # Identity root at height 0.9, velocities (1,2,3)/(4,5,6), one joint rotated 90 deg about z.
    root_pos = torch.tensor([[0.5, -0.5, 0.9]])
    root_rot = torch.tensor([[1.0, 0.0, 0.0, 0.0]])
    joint_rot = torch.tensor([[[math.cos(math.pi / 4), 0.0, 0.0, math.sin(math.pi / 4)]]])
    key_pos = torch.tensor([[[0.5, -0.5, 1.9]]])
    obs = compute_char_obs(
        root_pos,
        root_rot,
        torch.tensor([[1.0, 2.0, 3.0]]),
        torch.tensor([[4.0, 5.0, 6.0]]),
        joint_rot,
        torch.tensor([[7.0]]),
        key_pos,
        global_obs=True,
        root_height_obs=True,
    )
    expected = torch.tensor(
        [[0.9, 1, 0, 0, 0, 0, 1, 1, 2, 3, 4, 5, 6, 0, 1, 0, 0, 0, 1, 7, 0, 0, 1.0]]
    )  # height | tan x, norm z | v | w | joint: x->y, z->z | dof vel | key - root
    torch.testing.assert_close(obs, expected, atol=1e-6, rtol=0)


def test_char_obs_local_rotates_by_heading_only():
    # Root yawed by +90 deg: in the heading frame its rotation is the identity and a world +y
    # velocity becomes +x.
    s = math.sin(math.pi / 4)
    root_rot = torch.tensor([[s, 0.0, 0.0, s]])
    obs = compute_char_obs(
        torch.tensor([[0.0, 0.0, 1.0]]),
        root_rot,
        torch.tensor([[0.0, 2.0, 0.0]]),
        torch.zeros(1, 3),
        torch.zeros(1, 0, 4),
        torch.zeros(1, 0),
        torch.tensor([[[0.0, 1.0, 1.0]]]),
        global_obs=False,
        root_height_obs=False,
    )
    expected = torch.tensor([[1, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 0, 1, 0, 0.0]])
    torch.testing.assert_close(obs, expected, atol=1e-6, rtol=0)


def test_tar_obs_hand_checked_global():
    ref_root_pos = torch.tensor([[1.0, 2.0, 0.8]])
    tar_root_pos = torch.tensor([[[1.5, 2.0, 0.9]]])
    tar_root_rot = torch.tensor([[[1.0, 0.0, 0.0, 0.0]]])
    tar_key = torch.tensor([[[[1.5, 2.0, 1.9]]]])
    for height_obs, head in ((True, [0.5, 0.0, 0.9]), (False, [0.5, 0.0])):
        out = compute_tar_obs(
            ref_root_pos,
            torch.tensor([[1.0, 0.0, 0.0, 0.0]]),
            tar_root_pos,
            tar_root_rot,
            torch.zeros(1, 1, 0, 4),
            tar_key,
            global_obs=True,
            root_height_obs=height_obs,
        )
        expected = torch.tensor([[head + [1, 0, 0, 0, 0, 1, 0, 0, 1.0]]])
        torch.testing.assert_close(out, expected, atol=1e-6, rtol=0)


def test_local_obs_is_invariant_to_rotating_the_scene_about_z(make_state, rotate_scene):
    cfg = ObsConfig(global_obs=False, enable_phase_obs=True)
    sim = make_state(6, seed=1)
    tars = [make_state(6, seed=s) for s in (2, 3, 4)]
    phase = torch.rand(6, dtype=torch.float64)
    base = _obs(cfg, sim, tars, phase)
    for angle in (1e-4, 0.7, -2.0, math.pi - 1e-4, math.pi):
        rot = _obs(
            cfg,
            rotate_scene(sim, angle, (3.0, -1.0)),
            [rotate_scene(t, angle, (3.0, -1.0)) for t in tars],
            phase,
        )
        torch.testing.assert_close(rot, base, atol=1e-9, rtol=0)


def test_global_obs_changes_when_the_scene_rotates(make_state, rotate_scene):
    cfg = ObsConfig(global_obs=True)
    sim = make_state(2, seed=1)
    tars = [make_state(2, seed=s) for s in (2, 3, 4)]
    base = _obs(cfg, sim, tars)
    rot = _obs(cfg, rotate_scene(sim, 0.7), [rotate_scene(t, 0.7) for t in tars])
    assert (rot - base).abs().max() > 0.1
    # ...but not its rotation-free parts: root height, joint rotations, DoF velocities.
    torch.testing.assert_close(rot[:, :1], base[:, :1])
    torch.testing.assert_close(rot[:, 13 : 13 + 84 + 28], base[:, 13 : 13 + 84 + 28])


def test_local_first_target_root_xy_is_zero(make_state):
    cfg = ObsConfig(global_obs=False)
    sim = make_state(3, seed=1)
    tars = [make_state(3, seed=s) for s in (2, 3, 4)]
    obs = _obs(cfg, sim, tars)
    first_tar = obs[:, 140:143]
    torch.testing.assert_close(first_tar[:, :2], torch.zeros(3, 2, dtype=obs.dtype))
    torch.testing.assert_close(first_tar[:, 2], tars[0].root_pos[:, 2])


def test_phase_obs_values():
    out = compute_phase_obs(torch.tensor([0.25]), 2)
    # phase, sin(2pi*0.25), sin(4pi*0.25), cos(2pi*0.25), cos(4pi*0.25)
    torch.testing.assert_close(out, torch.tensor([[0.25, 1.0, 0.0, 0.0, -1.0]]), atol=1e-6, rtol=0)
    assert compute_phase_obs(torch.tensor([0.3]), 0).shape == (1, 1)


def test_motion_phase_wraps_only_looping_clips():
    t = torch.tensor([0.5, 2.5, 2.5, -0.1])
    length = torch.tensor([2.0, 2.0, 2.0, 2.0])
    wrap = torch.tensor([False, True, False, False])
    torch.testing.assert_close(motion_phase(t, length, wrap), torch.tensor([0.25, 0.25, 1.0, 0.0]))


def test_missing_targets_is_an_error(make_state):
    sim = make_state(1)
    with pytest.raises(ValueError, match="target"):
        compute_deepmimic_obs(
            ObsConfig(),
            sim.root_pos,
            sim.root_rot,
            sim.root_vel,
            sim.root_ang_vel,
            sim.joint_rot,
            sim.dof_vel,
            sim.body_pos[:, KEY_IDS],
        )


@pytest.mark.parametrize("shape", [(), (5,), (7, 14), (3, 2, 15)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_tan_norm_is_bitwise_quat_to_tan_norm(shape, dtype):
    """The observations' one-rotate tan-norm gives exactly MimicKit's two-rotate values (hot path)."""
    from mimictools.math.rotations import quat_to_tan_norm
    from mimictools.tasks.observations import tan_norm

    g = torch.Generator().manual_seed(0)
    q = torch.randn(shape + (4,), generator=g, dtype=dtype)
    q = q / q.norm(dim=-1, keepdim=True)
    if q.dim() > 1:  # also an exact identity and a negated quaternion
        q[0] = torch.tensor([1.0, 0.0, 0.0, 0.0], dtype=dtype)
        q[-1] = -q[-1]
    assert torch.equal(tan_norm(q), quat_to_tan_norm(q))
