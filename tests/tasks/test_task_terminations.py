"""DeepMimic termination rules: flag precedence, contact and pose tests."""

from __future__ import annotations

import torch

from mimictools.math.rotations import axis_angle_to_quat
from mimictools.tasks.env_api import DoneFlag
from mimictools.tasks.terminations import compute_done, fall_contact, pose_fail


def test_done_flag_values_match_mimickit():
    assert [int(f) for f in (DoneFlag.NULL, DoneFlag.FAIL, DoneFlag.SUCC, DoneFlag.TIME)] == [0, 1, 2, 3]


def test_done_precedence():
    # env: 0 running, 1 time-out, 2 clamp clip ended (and time-out), 3 looping clip "ended",
    # 4 failed + time-out, 5 failed at t = 0 (ignored)
    time_s = torch.tensor([1.0, 10.0, 10.0, 5.0, 10.0, 0.0])
    done = compute_done(
        time_s=time_s,
        episode_length_s=10.0,
        motion_time_s=torch.tensor([1.0, 1.0, 3.0, 3.0, 1.0, 0.0]),
        motion_length_s=torch.full((6,), 2.0),
        clamp_clip=torch.tensor([True, True, True, False, True, True]),
        failed=torch.tensor([False, False, False, False, True, True]),
    )
    assert done.tolist() == [0, 3, 2, 0, 1, 0]
    assert done.dtype == torch.int32
    no_early = compute_done(
        time_s=time_s,
        episode_length_s=10.0,
        motion_time_s=torch.zeros(6),
        motion_length_s=torch.full((6,), 2.0),
        clamp_clip=torch.ones(6, dtype=torch.bool),
        failed=None,
    )
    assert no_early.tolist() == [0, 3, 3, 0, 3, 0]


def test_episode_of_ten_seconds_at_30hz_ends_at_step_300():
    dt = 1.0 / 30.0
    steps = torch.arange(1, 400, dtype=torch.int64)
    time_s = steps.to(torch.float64) * dt
    done = compute_done(
        time_s=time_s,
        episode_length_s=10.0,
        motion_time_s=time_s,
        motion_length_s=torch.full_like(time_s, 100.0),
        clamp_clip=torch.zeros_like(time_s, dtype=torch.bool),
    )
    assert int(steps[done == DoneFlag.TIME][0]) == 300


def test_fall_contact():
    n, nb = 4, 5
    forces = torch.zeros(n, nb, 3)
    body_pos = torch.zeros(n, nb, 3)
    body_pos[..., 2] = 0.1
    forces[0, 4, 2] = 50.0  # allowed body (foot) on the ground
    forces[1, 2, 2] = 50.0  # a hand on the ground
    forces[2, 2, 0] = -0.2  # tiny tangential force still counts (> 0.1 N)
    forces[3, 3, 2] = 0.05  # below threshold
    allowed = torch.tensor([4])
    assert fall_contact(forces, body_pos, allowed).tolist() == [False, True, True, False]
    # Height rule: the hand's origin is above 0.3 m -> ignored.
    body_pos[1, 2, 2] = 0.5
    assert fall_contact(forces, body_pos, allowed, ground_contact_height=0.3).tolist() == [
        False,
        False,
        True,
        False,
    ]
    assert fall_contact(forces, body_pos, allowed).tolist() == [False, True, True, False]
    # Empty contact_bodies: MimicKit switches the check off.
    assert not fall_contact(forces, body_pos, torch.zeros(0, dtype=torch.long)).any()


def test_pose_fail_world_and_relative():
    nb = 3
    ref = torch.zeros(2, nb, 3)
    ref[:, 1, 2] = 0.5
    ref[:, 2, 2] = 1.0
    ident = torch.tensor([[1.0, 0.0, 0.0, 0.0]] * 2)
    sim = ref.clone()
    sim[0] += torch.tensor([1.5, 0.0, 0.0])  # whole body translated 1.5 m
    sim[1, 2] += torch.tensor([0.0, 1.2, 0.0])  # one body off by 1.2 m
    kw = dict(dist_m=1.0)
    assert pose_fail(sim, ref, ident, ident, global_obs=True, track_root=True, **kw).tolist() == [True, True]
    assert pose_fail(sim, ref, ident, ident, global_obs=True, track_root=False, **kw).tolist() == [
        False,
        True,
    ]
    assert pose_fail(sim, ref, ident, ident, global_obs=False, track_root=False, **kw).tolist() == [
        False,
        True,
    ]


def test_pose_fail_local_uses_each_roots_frame():
    # The sim character is the reference rotated 90 deg about x at the root: relative to its own
    # root frame nothing is off, but world-aligned the head is off by ~1.4 m.
    ref = torch.tensor([[[0.0, 0.0, 1.0], [0.0, 0.0, 2.0]]])
    sim = torch.tensor([[[0.0, 0.0, 1.0], [0.0, -1.0, 1.0]]])
    q = axis_angle_to_quat(torch.tensor([1.0, 0.0, 0.0]), torch.tensor(torch.pi / 2)).unsqueeze(0)
    ident = torch.tensor([[1.0, 0.0, 0.0, 0.0]])
    assert not pose_fail(sim, ref, q, ident, dist_m=1.0, global_obs=False, track_root=False).item()
    assert pose_fail(sim, ref, q, ident, dist_m=1.0, global_obs=True, track_root=False).item()
