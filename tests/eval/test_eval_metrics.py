"""Evaluation metrics on synthetic states with values worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mimictools.character.mjcf import load_character
from mimictools.errors import MimicToolsError
from mimictools.eval.metrics import (
    EpisodeErrors,
    FrameErrors,
    compute_frame_errors,
    episode_outcome,
    joint_angle_channels,
    joint_angles_rad,
    summarize,
)
from mimictools.math.rotations import axis_angle_to_quat
from mimictools.paths import bundled_data_dir
from mimictools.tasks.tracking import TRACKING_ERROR_KEYS, TrackState


@pytest.fixture(scope="module")
def char():
    return load_character(bundled_data_dir() / "humanoid.xml")


def _state(char, n: int = 3, seed: int = 0) -> TrackState:
    """A random but valid-looking state (unit quaternions), Shape (n, ...)."""
    g = torch.Generator().manual_seed(seed)
    nb, nd = char.num_bodies, char.num_dofs

    def quat(*shape):
        q = torch.randn(*shape, 4, generator=g, dtype=torch.float64)
        return q / q.norm(dim=-1, keepdim=True)

    return TrackState(
        root_pos=torch.randn(n, 3, generator=g, dtype=torch.float64),
        root_rot=quat(n),
        root_vel=torch.randn(n, 3, generator=g, dtype=torch.float64),
        root_ang_vel=torch.randn(n, 3, generator=g, dtype=torch.float64),
        joint_rot=quat(n, nb - 1),
        dof_vel=torch.randn(n, nd, generator=g, dtype=torch.float64),
        body_pos=torch.randn(n, nb, 3, generator=g, dtype=torch.float64),
        body_rot=quat(n, nb),
    )


def _with(s: TrackState, **kw) -> TrackState:
    d = {k: getattr(s, k) for k in s.__dataclass_fields__}
    d.update(kw)
    return TrackState(**d)


def _err(errs: FrameErrors, key: str) -> np.ndarray:
    return errs.tracking[:, TRACKING_ERROR_KEYS.index(key)]


def test_perfect_tracking_is_zero(char):
    s = _state(char)
    e = compute_frame_errors(char, s, s)
    for arr in (e.tracking, e.body_pos_err_m, e.body_pos_err_local_m, e.joint_rot_err_rad):
        # quaternion angle of q vs q: acos/atan2 rounding only
        np.testing.assert_allclose(arr, 0.0, atol=1e-6)
    assert e.tracking.shape == (3, 7)
    assert e.body_pos_err_m.shape == (3, char.num_bodies)
    assert e.joint_rot_err_rad.shape == (3, len(char.joints))
    assert episode_outcome(e.body_pos_err_m.mean(axis=1), early_termination=False) == (True, "ok")


def test_whole_character_translation(char):
    """Every body and the root moved by (0.3, 0.4, 0): 0.5 m world error everywhere, 0 root-relative."""
    ref = _state(char)
    shift = torch.tensor([0.3, 0.4, 0.0], dtype=torch.float64)
    sim = _with(ref, root_pos=ref.root_pos + shift, body_pos=ref.body_pos + shift)
    e = compute_frame_errors(char, sim, ref)
    np.testing.assert_allclose(_err(e, "Root_Pos_Err"), 0.5, atol=1e-12)
    np.testing.assert_allclose(_err(e, "Body_Pos_Err"), 0.0, atol=1e-12)
    np.testing.assert_allclose(e.body_pos_err_m, 0.5, atol=1e-12)
    np.testing.assert_allclose(e.body_pos_err_local_m, 0.0, atol=1e-12)
    # 0.5 m is the threshold itself: not over it
    assert episode_outcome(e.body_pos_err_m.mean(axis=1), False, fail_dist_m=0.5) == (True, "ok")
    assert episode_outcome(e.body_pos_err_m.mean(axis=1), False, fail_dist_m=0.49) == (False, "body_pos_err")


def test_one_body_offset(char):
    """Body 5 raised by 0.3 m: world and root-relative error 0.3 there, Body_Pos_Err = 0.3 / num_bodies."""
    ref = _state(char)
    bp = ref.body_pos.clone()
    bp[:, 5, 2] += 0.3
    e = compute_frame_errors(char, _with(ref, body_pos=bp), ref)
    nb = char.num_bodies
    np.testing.assert_allclose(_err(e, "Body_Pos_Err"), 0.3 / nb, atol=1e-12)
    expected = np.zeros((3, nb))
    expected[:, 5] = 0.3
    np.testing.assert_allclose(e.body_pos_err_m, expected, atol=1e-12)
    np.testing.assert_allclose(e.body_pos_err_local_m, expected, atol=1e-12)
    np.testing.assert_allclose(_err(e, "Root_Pos_Err"), 0.0, atol=1e-12)


def test_velocity_errors(char):
    """Root velocity off by (0.3, 0, 0): mean over x, y, z = 0.1; one DoF off by 2.8 rad/s: 2.8 / nd."""
    ref = _state(char)
    dv = ref.dof_vel.clone()
    dv[:, 4] += 2.8
    sim = _with(
        ref,
        root_vel=ref.root_vel + torch.tensor([0.3, 0.0, 0.0], dtype=torch.float64),
        root_ang_vel=ref.root_ang_vel - torch.tensor([0.0, 0.0, 0.6], dtype=torch.float64),
        dof_vel=dv,
    )
    e = compute_frame_errors(char, sim, ref)
    np.testing.assert_allclose(_err(e, "Root_Vel_Err"), 0.1, atol=1e-12)
    np.testing.assert_allclose(_err(e, "Root_Ang_Vel_Err"), 0.2, atol=1e-12)
    np.testing.assert_allclose(_err(e, "Dof_Vel_Err"), 2.8 / char.num_dofs, atol=1e-12)


@pytest.mark.parametrize("angle", [1e-4, 0.5, math.pi / 6, math.pi - 1e-3])
def test_joint_rotation_error(char, angle):
    """Knee joint rotated by `angle` about its axis relative to the reference: that joint's error is the angle
    (near 0 and near pi too); the others are 0."""
    ref = _state(char)
    knee = [i for i, j in enumerate(char.joints) if j.name == "right_knee"][0]
    body = char.joints[knee].body
    dq = axis_angle_to_quat(
        torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64), torch.tensor(angle, dtype=torch.float64)
    )
    from mimictools.math.rotations import quat_mul

    jr = ref.joint_rot.clone()
    jr[:, body - 1] = quat_mul(jr[:, body - 1], dq.expand(3, 4))
    e = compute_frame_errors(char, _with(ref, joint_rot=jr), ref)
    expected = np.zeros((3, len(char.joints)))
    expected[:, knee] = angle
    # acos/atan2 near 0 and pi in float64: 1e-6 rad
    np.testing.assert_allclose(e.joint_rot_err_rad, expected, atol=1e-6)


def test_root_rotation_and_pose_error(char):
    """All world rotations turned by 90 deg about z: Root_Rot_Err = Pose_Err = pi/2."""
    ref = _state(char)
    from mimictools.math.rotations import quat_mul

    dq = axis_angle_to_quat(
        torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64), torch.tensor(math.pi / 2, dtype=torch.float64)
    )
    sim = _with(
        ref,
        root_rot=quat_mul(dq.expand(3, 4), ref.root_rot),
        body_rot=quat_mul(dq.expand(3, 15, 4), ref.body_rot),
    )
    e = compute_frame_errors(char, sim, ref)
    np.testing.assert_allclose(_err(e, "Root_Rot_Err"), math.pi / 2, atol=1e-9)
    np.testing.assert_allclose(_err(e, "Pose_Err"), math.pi / 2, atol=1e-9)


def test_episode_outcome_rules():
    ok = np.array([0.1, 0.2, 0.3])
    assert episode_outcome(ok, False) == (True, "ok")
    assert episode_outcome(ok, True) == (False, "early_termination")
    assert episode_outcome(np.array([0.1, 0.51, 0.2]), False) == (False, "body_pos_err")
    # early termination takes precedence over the distance rule
    assert episode_outcome(np.array([0.9]), True) == (False, "early_termination")


def _episode(
    nb: int, nj: int, glob_m: float, frames: int, ret_per_step: float, early: bool, clip: str = "a"
) -> EpisodeErrors:
    tracking = np.zeros((frames, 7))
    tracking[:, TRACKING_ERROR_KEYS.index("Body_Pos_Err")] = glob_m / 2
    return EpisodeErrors(
        clip=clip,
        start_time_s=0.0,
        early_termination=early,
        rewards=np.full(frames, ret_per_step),
        errors=FrameErrors(
            tracking=tracking,
            body_pos_err_m=np.full((frames, nb), glob_m),
            body_pos_err_local_m=np.full((frames, nb), glob_m / 2),
            joint_rot_err_rad=np.full((frames, nj), math.radians(10.0)),
        ),
        control_dt=1.0 / 30.0,
    )


def test_summarize_hand_values():
    """Episode A: 1 frame at 0.1 m, reward 1; episode B: 3 frames at 0.6 m (> 0.5: fails), reward 0.5/step;
    episode C: 2 frames at 0.2 m, early termination, reward 2/step.
    Frame-weighted world error = (0.1*1 + 0.6*3 + 0.2*2) / 6 = 0.38333 m; success 1/3."""
    bodies, joints = ["p", "q"], ["j"]
    eps = [
        _episode(2, 1, 0.1, 1, 1.0, False),
        _episode(2, 1, 0.6, 3, 0.5, False),
        _episode(2, 1, 0.2, 2, 2.0, True, clip="b"),
    ]
    m = summarize(eps, bodies, joints)
    assert m["episodes"] == 3 and m["frames"] == 6
    assert m["success_rate"] == pytest.approx(1 / 3)
    assert m["failures"] == {"early_termination": 1, "body_pos_err": 1, "tracking_err": 0}
    assert m["body_pos_err_mm"]["global"] == pytest.approx(1000 * 2.3 / 6)
    assert m["body_pos_err_mm"]["root_relative"] == pytest.approx(1000 * 2.3 / 12)
    assert m["tracking_errors"]["Body_Pos_Err"] == pytest.approx(2.3 / 12)
    assert m["per_body"]["q"]["pos_err_mm"] == pytest.approx(1000 * 2.3 / 6)
    assert m["per_joint"]["j"]["rot_err_deg"] == pytest.approx(10.0)
    # returns 1, 1.5, 4 -> mean 6.5/3; per step 6.5 / 6
    assert m["return"]["mean"] == pytest.approx(6.5 / 3)
    assert m["return"]["per_step"] == pytest.approx(6.5 / 6)
    assert m["episode_length"]["mean_steps"] == pytest.approx(2.0)
    assert [d["end"] for d in m["episode_details"]] == ["ok", "body_pos_err", "early_termination"]
    assert m["per_clip"]["a"]["success_rate"] == pytest.approx(0.5)
    assert m["per_clip"]["b"]["episodes"] == 1


def test_summarize_rejects_mismatched_names():
    with pytest.raises(MimicToolsError, match="body names"):
        summarize([_episode(2, 1, 0.1, 1, 1.0, False)], ["only_one"], ["j"])
    with pytest.raises(MimicToolsError, match="no episode"):
        summarize([], ["p"], ["j"])


def test_joint_angle_channels_match_mujoco(char):
    """Channel angles equal MuJoCo's hinge qpos for the same state (hinge triples: Euler decomposition)."""
    import mujoco

    from mimictools.engines.base import EngineSpec, SimState, set_state
    from mimictools.engines.mujoco import MuJoCoEngine

    names = [c[0] for c in joint_angle_channels(char)]
    assert {"right_knee", "right_hip_y", "left_elbow"} <= set(names)
    eng = MuJoCoEngine(char, EngineSpec(num_envs=1, num_threads=1))
    try:
        g = torch.Generator().manual_seed(3)
        dof = 0.4 * torch.randn(1, char.num_dofs, generator=g, dtype=torch.float64)
        root_rot = torch.tensor([[1.0, 0.0, 0.0, 0.0]], dtype=torch.float64)
        root_pos = torch.tensor([[0.0, 0.0, 1.0]], dtype=torch.float64)
        z3 = torch.zeros(1, 3, dtype=torch.float64)
        set_state(eng, None, SimState(root_pos, root_rot, z3, z3, dof, torch.zeros_like(dof)))
        from mimictools.character.kinematics import dof_to_qpos

        qpos = dof_to_qpos(char, root_pos, root_rot, dof).numpy()
        hinge = [n for n, src, _ in joint_angle_channels(char) if src == "qpos"]
        ours = joint_angles_rad(char, qpos, dof.numpy(), hinge)[0]
        m, d = eng.mj_model, eng.mj_data(0)
        theirs = [d.qpos[m.jnt_qposadr[mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_JOINT, n)]] for n in hinge]
        # float64 Euler decomposition vs MuJoCo's qpos written from the same decomposition: 1e-9
        np.testing.assert_allclose(ours, theirs, atol=1e-9)
        knee = char.joints[[j.name for j in char.joints].index("right_knee")]
        assert ours[hinge.index("right_knee")] == pytest.approx(float(dof[0, knee.dof_offset]))
    finally:
        eng.close()
    with pytest.raises(MimicToolsError, match="no joint angle named 'nope'"):
        joint_angles_rad(char, qpos, dof.numpy(), ["nope"])


def test_episode_outcome_tracking_rule():
    """A policy that stays up but does not follow the clip fails on the mean Body_Pos_Err (7.5 cm by default)."""
    ok = np.array([0.1, 0.2])
    assert episode_outcome(ok, False, tracking_err_m=0.075) == (True, "ok")  # at the bound: not over it
    assert episode_outcome(ok, False, tracking_err_m=0.0751) == (False, "tracking_err")
    assert episode_outcome(ok, False, tracking_err_m=0.2, success_max_err_m=0.25) == (True, "ok")
    # the other rules take precedence
    assert episode_outcome(np.array([0.6]), False, tracking_err_m=0.2) == (False, "body_pos_err")
    assert episode_outcome(ok, True, tracking_err_m=0.2) == (False, "early_termination")


def test_summarize_counts_episodes_that_did_not_track():
    """Body_Pos_Err = world error / 2 in `_episode`: 0.1 m world -> 0.05 (tracked), 0.3 m -> 0.15 (did not)."""
    m = summarize([_episode(2, 1, 0.1, 4, 1.0, False), _episode(2, 1, 0.3, 4, 1.0, False)], ["p", "q"], ["j"])
    assert m["success_rate"] == 0.5
    assert m["failures"] == {"early_termination": 0, "body_pos_err": 0, "tracking_err": 1}
    assert m["success_max_err_m"] == 0.075
