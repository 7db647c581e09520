"""MimicKit's tracking errors: zero on perfect tracking, hand-checked values, key order."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from mimictools.math.rotations import axis_angle_to_quat, quat_mul
from mimictools.tasks.tracking import (
    TRACKING_ERROR_KEYS,
    body_pos_err_m,
    compute_tracking_error,
    tracking_error_tensor,
)


def test_keys_match_mimickit_log_columns():
    assert TRACKING_ERROR_KEYS == (
        "Root_Pos_Err",
        "Root_Rot_Err",
        "Body_Pos_Err",
        "Pose_Err",
        "Dof_Vel_Err",
        "Root_Vel_Err",
        "Root_Ang_Vel_Err",
    )


def test_zero_on_perfect_tracking(make_state):
    s = make_state(3, seed=1)
    errs = tracking_error_tensor(s, s)
    assert errs.shape == (3, 7)
    torch.testing.assert_close(errs, torch.zeros_like(errs), atol=1e-7, rtol=0)


def test_hand_checked_values(make_state):
    ref = make_state(1, seed=2)
    shift = torch.tensor([[0.3, 0.4, 0.0]], dtype=torch.float64)
    q = axis_angle_to_quat(
        torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64), torch.tensor(0.2, dtype=torch.float64)
    )
    body_rot = ref.body_rot.clone()
    body_rot[:, 3] = quat_mul(body_rot[:, 3], q)  # one of 15 bodies rotated by 0.2 rad
    body_pos = ref.body_pos + shift
    body_pos[:, 7] += torch.tensor([0.0, 0.0, 0.15], dtype=torch.float64)  # one body 15 cm off
    sim = dataclasses.replace(
        ref,
        root_pos=ref.root_pos + shift,
        root_rot=quat_mul(ref.root_rot, q),
        body_pos=body_pos,
        body_rot=body_rot,
        dof_vel=ref.dof_vel + 0.5,
        root_vel=ref.root_vel + torch.tensor([[0.3, -0.3, 0.6]], dtype=torch.float64),
        root_ang_vel=ref.root_ang_vel - 1.5,
    )
    e = {k: v.item() for k, v in compute_tracking_error(sim, ref).items()}
    assert e["Root_Pos_Err"] == pytest.approx(0.5)
    assert e["Root_Rot_Err"] == pytest.approx(0.2)
    assert e["Body_Pos_Err"] == pytest.approx(0.15 / 15)
    assert e["Pose_Err"] == pytest.approx(0.2 / 15)
    assert e["Dof_Vel_Err"] == pytest.approx(0.5)
    assert e["Root_Vel_Err"] == pytest.approx(0.4)
    assert e["Root_Ang_Vel_Err"] == pytest.approx(1.5)


def test_rotation_error_near_pi_uses_shortest_arc(make_state):
    ref = make_state(1, seed=3)
    for angle in (math.pi - 1e-3, math.pi):
        q = axis_angle_to_quat(
            torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64), torch.tensor(angle, dtype=torch.float64)
        )
        sim = dataclasses.replace(ref, root_rot=quat_mul(ref.root_rot, q))
        assert compute_tracking_error(sim, ref)["Root_Rot_Err"].item() == pytest.approx(angle, abs=1e-6)


def test_body_pos_err_global_vs_root_relative():
    ref = torch.zeros(1, 3, 3)
    ref[:, 1, 2] = 1.0
    sim = ref + torch.tensor([0.0, 0.2, 0.0])
    torch.testing.assert_close(body_pos_err_m(sim, ref, root_relative=False), torch.full((1, 3), 0.2))
    torch.testing.assert_close(body_pos_err_m(sim, ref, root_relative=True), torch.zeros(1, 3))
