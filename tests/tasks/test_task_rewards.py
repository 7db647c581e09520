"""DeepMimic reward: perfect tracking, hand-checked terms, monotonicity, weight expansion."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from mimictools.errors import ConfigError
from mimictools.math.rotations import axis_angle_to_quat, quat_mul
from mimictools.tasks.rewards import (
    RewardWeights,
    compute_deepmimic_reward,
    deepmimic_reward_terms,
    dof_err_weights,
    joint_err_weights,
)

KEY_IDS = torch.tensor([2, 5, 8, 11, 14])
JOINT_W = torch.tensor(
    [1.0, 0.6, 0.6, 0.4, 0.0, 0.6, 0.4, 0.0, 1.0, 0.6, 0.4, 1.0, 0.6, 0.4], dtype=torch.float64
)
DOF_W = torch.ones(28, dtype=torch.float64)
W = RewardWeights()


def _reward(sim, ref, track_root=True, track_root_h=True, weights=W):
    return compute_deepmimic_reward(
        sim,
        ref,
        key_body_ids=KEY_IDS,
        joint_w=JOINT_W,
        dof_w=DOF_W,
        weights=weights,
        track_root=track_root,
        track_root_h=track_root_h,
    )


def _terms(sim, ref, track_root=True):
    return deepmimic_reward_terms(
        sim,
        ref,
        key_body_ids=KEY_IDS,
        joint_w=JOINT_W,
        dof_w=DOF_W,
        weights=W,
        track_root=track_root,
        track_root_h=True,
    )


@pytest.mark.parametrize("track_root", [True, False])
def test_perfect_tracking_gives_sum_of_weights(make_state, track_root):
    s = make_state(5, seed=3)
    r = _reward(s, s, track_root=track_root)
    assert W.max_reward == pytest.approx(1.0)
    torch.testing.assert_close(r, torch.ones(5, dtype=torch.float64), atol=1e-12, rtol=0)


def test_same_rotation_as_minus_q_is_perfect(make_state):
    s = make_state(3, seed=4)
    flipped = dataclasses.replace(s, joint_rot=-s.joint_rot, root_rot=-s.root_rot)
    torch.testing.assert_close(_reward(flipped, s), torch.ones(3, dtype=torch.float64), atol=1e-9, rtol=0)


def test_pose_term_hand_checked(make_state):
    ref = make_state(1, seed=5)
    a = 0.3  # rotate the torso (weight 1.0) and the head (weight 0.6) by 0.3 rad
    dq = axis_angle_to_quat(
        torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64), torch.tensor(a, dtype=torch.float64)
    )
    jr = ref.joint_rot.clone()
    jr[:, 0] = quat_mul(jr[:, 0], dq)
    jr[:, 1] = quat_mul(dq, jr[:, 1])
    sim = dataclasses.replace(ref, joint_rot=jr)
    expected_pose = math.exp(-0.25 * (1.0 + 0.6) * a * a)
    terms = _terms(sim, ref)
    assert terms["pose"].item() == pytest.approx(expected_pose, abs=1e-9)
    assert _reward(sim, ref).item() == pytest.approx(1.0 - 0.5 * (1.0 - expected_pose), abs=1e-9)


def test_vel_term_uses_dof_weights(make_state):
    ref = make_state(1, seed=6)
    dv = ref.dof_vel.clone()
    dv[:, 0] += 2.0
    sim = dataclasses.replace(ref, dof_vel=dv)
    assert _terms(sim, ref)["vel"].item() == pytest.approx(math.exp(-0.01 * 4.0), abs=1e-12)


def test_root_terms_hand_checked(make_state):
    ref = make_state(1, seed=7)
    shift = torch.tensor([[0.1, 0.0, 0.2]], dtype=torch.float64)
    yaw = axis_angle_to_quat(
        torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64), torch.tensor(0.5, dtype=torch.float64)
    )
    sim = dataclasses.replace(
        ref,
        root_pos=ref.root_pos + shift,
        body_pos=ref.body_pos + shift,  # whole body shifted: key positions relative to root unchanged
        root_rot=quat_mul(ref.root_rot, yaw),
        root_vel=ref.root_vel + torch.tensor([[0.0, 1.0, 0.0]], dtype=torch.float64),
        root_ang_vel=ref.root_ang_vel + torch.tensor([[0.0, 0.0, 2.0]], dtype=torch.float64),
    )
    terms = _terms(sim, ref)
    assert terms["root_pose"].item() == pytest.approx(math.exp(-5.0 * (0.05 + 0.1 * 0.25)), abs=1e-9)
    assert terms["root_vel"].item() == pytest.approx(math.exp(-1.0 * (1.0 + 0.1 * 4.0)), abs=1e-9)
    assert terms["key_pos"].item() == pytest.approx(1.0, abs=1e-12)
    # Without root tracking the x/y offset is ignored, the height is not.
    terms_local = _terms(dataclasses.replace(sim, root_rot=ref.root_rot), ref, track_root=False)
    assert terms_local["root_pose"].item() == pytest.approx(math.exp(-5.0 * 0.04), abs=1e-9)


def test_key_term_is_relative_to_root(make_state):
    ref = make_state(1, seed=8)
    bp = ref.body_pos.clone()
    bp[:, 5] += torch.tensor([0.0, 0.1, 0.0], dtype=torch.float64)  # right hand off by 10 cm
    sim = dataclasses.replace(ref, body_pos=bp)
    assert _terms(sim, ref)["key_pos"].item() == pytest.approx(math.exp(-10.0 * 0.01), abs=1e-12)


def test_no_key_bodies_gives_full_key_term(make_state):
    ref = make_state(2, seed=9)
    sim = make_state(2, seed=10)
    terms = deepmimic_reward_terms(
        sim,
        ref,
        key_body_ids=torch.zeros(0, dtype=torch.long),
        joint_w=JOINT_W,
        dof_w=DOF_W,
        weights=W,
        track_root=True,
        track_root_h=True,
    )
    torch.testing.assert_close(terms["key_pos"], torch.ones(2, dtype=torch.float64))


@pytest.mark.parametrize("track_root", [True, False])
def test_reward_decreases_with_error(make_state, track_root):
    ref = make_state(1, seed=11)
    other = make_state(1, seed=12)
    prev = None
    for t in (0.0, 0.05, 0.2, 0.5, 1.0):

        def blend(a, b, t=t):
            return (1 - t) * a + t * b

        sim = dataclasses.replace(
            ref,
            root_pos=blend(ref.root_pos, other.root_pos),
            root_vel=blend(ref.root_vel, other.root_vel),
            dof_vel=blend(ref.dof_vel, other.dof_vel),
            body_pos=blend(ref.body_pos, other.body_pos),
        )
        r = _reward(sim, ref, track_root=track_root).item()
        assert 0.0 < r <= 1.0 + 1e-12
        if prev is not None:
            assert r < prev
        prev = r


def test_local_reward_is_invariant_to_rotating_the_scene(make_state, rotate_scene):
    sim, ref = make_state(4, seed=13), make_state(4, seed=14)
    base = _reward(sim, ref, track_root=False)
    rot = _reward(rotate_scene(sim, 1.3, (2.0, 5.0)), rotate_scene(ref, 1.3, (2.0, 5.0)), track_root=False)
    torch.testing.assert_close(rot, base, atol=1e-10, rtol=0)


def test_weights_from_default_env_config():
    from mimictools.config.schema import EnvConfig

    assert RewardWeights.from_env_config(EnvConfig()) == RewardWeights()


def test_joint_and_dof_weights(tiny_char):
    jw = joint_err_weights(tiny_char, [1.0, 0.5, 0.0, 0.25])
    torch.testing.assert_close(
        dof_err_weights(tiny_char, jw), torch.tensor([1.0, 1.0, 1.0, 0.5, 0.25, 0.25, 0.25])
    )
    torch.testing.assert_close(joint_err_weights(tiny_char, None), torch.ones(4))
    with pytest.raises(ConfigError, match="4 non-root bodies.*a, b, c, d"):
        joint_err_weights(tiny_char, [1.0, 1.0])
    with pytest.raises(ConfigError, match=">= 0"):
        joint_err_weights(tiny_char, [1.0, -1.0, 0.0, 0.0])
