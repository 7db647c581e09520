"""Batched FK and DoF conversions against MuJoCo (``mj_kinematics``, ``mj_integratePos``).

Tolerances: everything here is float64. Our FK and MuJoCo's do the same quaternion products in a
different order, so they agree to ~1e-14 m; 1e-10 (m, rad) leaves four orders of margin and still
catches any real mistake (a wrong axis, sign or order is off by >1e-3). Finite differences use a
central step h = 1e-6 s: truncation ~h^2 * |d^3q/dt^3| ~ 1e-11, rounding ~eps / h ~ 1e-10, so 1e-7.
"""

from __future__ import annotations

import math
from pathlib import Path

import mujoco
import numpy as np
import pytest
import torch

from mimictools.app.fkcheck import random_frames
from mimictools.character import kinematics as K
from mimictools.character.mjcf import load_character, load_character_from_string
from mimictools.errors import CharacterError
from mimictools.math.rotations import exp_map_to_quat, quat_conj, quat_diff_angle, quat_mul, quat_to_exp_map
from mimictools.paths import bundled_humanoid_xml

F64 = torch.float64
TOL = 1e-10

# A synthetic character exercising what the humanoid does not: rotated body frames, ball joints,
# permuted / left-handed / rotated orthonormal hinge triples, a welded body and a hinge on a tilted axis.
_S = math.sqrt(0.5)
ODD_XML = f"""<mujoco model="odd"><compiler angle="radian"/><worldbody>
  <body name="base" pos="0 0 1" quat="0.9 0.1 0.2 0.3"><freejoint/><geom size="0.1"/>
    <body name="ball" pos="0.1 0.2 0.3" euler="0.3 0.2 0.1"><joint name="b" type="ball"/><geom size="0.05"/>
      <body name="zxy" pos="0 0 -0.3"><joint name="z1" axis="0 0 1"/><joint name="z2" axis="1 0 0"/><joint name="z3" axis="0 1 0"/><geom size="0.05"/>
        <body name="welded" pos="0.1 0 0" quat="0 1 0 0"><geom size="0.03"/>
          <body name="tilt" pos="0 0.2 0"><joint name="tilt" axis="1 1 0"/><geom size="0.03"/></body></body></body></body>
    <body name="lefty" pos="-0.1 0 0" quat="0.7 0 0.7 0.1"><joint name="l1" axis="1 0 0"/><joint name="l2" axis="0 0 1"/><joint name="l3" axis="0 1 0"/><geom size="0.05"/>
      <body name="rot" pos="0 0 -0.4"><joint name="r1" axis="{_S} {_S} 0"/><joint name="r2" axis="-{_S} {_S} 0"/><joint name="r3" axis="0 0 1"/><geom size="0.05"/>
        <body name="ball2" pos="0 0.1 -0.2"><joint name="b2" type="ball"/><geom size="0.05"/></body></body></body>
  </body></worldbody></mujoco>"""


@pytest.fixture(scope="module")
def odd():
    return load_character_from_string(ODD_XML, source="odd.xml"), mujoco.MjModel.from_xml_string(ODD_XML)


@pytest.fixture(scope="module")
def humanoids(shared_dir: Path):
    d = shared_dir / "mimickit" / "data" / "assets" / "humanoid"
    paths = [d / "humanoid.xml", d / "humanoid_degrees_f3b3186.xml", bundled_humanoid_xml()]
    return [(load_character(p), mujoco.MjModel.from_xml_path(str(p))) for p in paths]


def mj_poses(m: mujoco.MjModel, qpos: np.ndarray):
    d = mujoco.MjData(m)
    pos = np.empty((len(qpos), m.nbody - 1, 3))
    rot = np.empty((len(qpos), m.nbody - 1, 4))
    for i, q in enumerate(qpos):
        d.qpos[:] = q
        d.xpos[:] = np.nan  # poisoned: every body must be written by mj_kinematics
        d.xquat[:] = np.nan
        mujoco.mj_kinematics(m, d)
        pos[i], rot[i] = d.xpos[1:], d.xquat[1:]
    return torch.from_numpy(pos), torch.from_numpy(rot)


def check_fk_parity(char, m, frames: np.ndarray):
    f = torch.from_numpy(frames)
    body_pos, body_rot = K.frames_to_body_poses(char, f)
    qpos = K.dof_to_qpos(char, f[:, :3], exp_map_to_quat(f[:, 3:6]), f[:, 6:])
    ref_pos, ref_rot = mj_poses(m, qpos.numpy())
    assert torch.isfinite(ref_pos).all()
    assert float((body_pos - ref_pos).abs().max()) < TOL
    assert float(quat_diff_angle(body_rot, ref_rot).max()) < TOL


def test_fk_matches_mujoco_random_poses_humanoids(humanoids):
    for char, m in humanoids:
        # near_pi: a quarter of the exp maps within 1e-3 rad of pi
        check_fk_parity(char, m, random_frames(char, 500, seed=1, near_pi=0.25))


def test_fk_matches_mujoco_odd_character(odd):
    char, m = odd
    assert [j.kind for j in char.joints] == [
        "spherical",
        "spherical",
        "hinge",
        "spherical",
        "spherical",
        "spherical",
    ]
    frames = random_frames(char, 500, seed=2)
    check_fk_parity(char, m, frames)
    # exp maps longer than pi (the same rotations as their wrap) and hinge angles beyond pi
    frames[:, 6:] *= 2.5
    check_fk_parity(char, m, frames)


def test_fk_matches_mujoco_on_real_clips(humanoids, shared_dir):
    from mimictools.motion import load_motion

    clips = [
        "humanoid_backflip.pkl",
        "humanoid_cartwheel.pkl",
        "humanoid_getup_facedown.pkl",
        "long/humanoid_long_zombie.pkl",
    ]
    for name in clips:
        frames = load_motion(shared_dir / "mimickit/data/motions/humanoid" / name).frames.astype(np.float64)
        for char, m in humanoids:
            check_fk_parity(char, m, frames)


def test_body_poses_are_the_root_for_body_zero(humanoids):
    char, _ = humanoids[0]
    f = torch.from_numpy(random_frames(char, 10))
    pos, rot = K.frames_to_body_poses(char, f)
    assert torch.equal(pos[:, 0], f[:, :3])
    assert torch.equal(rot[:, 0], exp_map_to_quat(f[:, 3:6]))


# ---- round trips ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["humanoid", "odd"])
def test_dof_local_rot_and_qpos_round_trips(which, humanoids, odd):
    char, _ = humanoids[0] if which == "humanoid" else odd
    f = torch.from_numpy(random_frames(char, 2000, seed=3, near_pi=0.3))
    dof = f[:, 6:]
    lr = K.dof_to_local_rot(char, dof)
    assert lr.shape == (2000, char.num_bodies, 4)
    dof2 = K.local_rot_to_dof(char, lr)
    assert float(quat_diff_angle(K.dof_to_local_rot(char, dof2), lr).max()) < TOL
    # exp maps with angle < pi - 1e-3 and hinge angles in (-pi, pi] come back exactly
    for j in char.joints:
        sl = slice(j.dof_offset, j.dof_offset + j.dof_count)
        keep = dof[:, sl].norm(dim=-1) < math.pi - 1e-3
        assert torch.allclose(dof2[keep][:, sl], dof[keep][:, sl], atol=1e-9), j.name
    root_rot = exp_map_to_quat(f[:, 3:6])
    qpos = K.dof_to_qpos(char, f[:, :3], root_rot, dof)
    assert qpos.shape == (2000, char.num_qpos)
    rp, rr, dof3 = K.qpos_to_dof(char, qpos)
    assert torch.equal(rp, f[:, :3]) and float(quat_diff_angle(rr, root_rot).max()) < TOL
    assert float(quat_diff_angle(K.dof_to_local_rot(char, dof3), lr).max()) < TOL
    qpos2 = K.dof_to_qpos(char, rp, rr, dof3)
    d = torch.remainder(qpos2 - qpos + math.pi, 2 * math.pi) - math.pi
    ball_cols = _ball_qpos_cols(char)
    hinge = [c for c in range(7, char.num_qpos) if c not in ball_cols]
    assert float(d[:, hinge].abs().max()) < 1e-9


def _ball_qpos_cols(char):
    cols, col = [], 7
    for j in char.joints:
        if j.is_ball:
            cols.extend(range(col, col + 4))
        col += j.qpos_count
    return cols


def test_hinge_triple_angles_are_mujocos_euler_angles_within_limits(humanoids):
    """qpos angles inside the limits survive qpos -> dof -> qpos, also with |middle angle| > pi/2 (hip_y)."""
    char, m = humanoids[0]
    rng = np.random.default_rng(4)
    qpos = np.zeros((3000, m.nq))
    qpos[:, 3] = 1.0
    lo, hi = m.jnt_range[1:, 0], m.jnt_range[1:, 1]
    qpos[:, 7:] = rng.uniform(lo + 1e-3, hi - 1e-3, (3000, m.nq - 7))
    hip_y = [m.joint("right_hip_y").qposadr[0], m.joint("left_hip_y").qposadr[0]]
    qpos[:1000, hip_y] = rng.uniform(-2.4, -1.6, (1000, 2))  # beyond -90 degrees
    q = torch.from_numpy(qpos)
    back = K.dof_to_qpos(char, *K.qpos_to_dof(char, q))
    assert float((back - q).abs().max()) < 1e-9


def test_velocity_conversions_match_mujoco_finite_differences(humanoids, odd):
    for char, m in [humanoids[0], odd]:
        rng = np.random.default_rng(5)
        f = torch.from_numpy(random_frames(char, 40, seed=5, near_pi=0.0))
        root_rot = exp_map_to_quat(f[:, 3:6])
        qpos = K.dof_to_qpos(char, f[:, :3], root_rot, f[:, 6:]).numpy()
        qvel = rng.normal(size=(40, m.nv))
        h = 1e-6
        qp, qm = qpos.copy(), qpos.copy()
        for i in range(40):
            mujoco.mj_integratePos(m, qp[i], qvel[i], h)
            mujoco.mj_integratePos(m, qm[i], qvel[i], -h)
        rpp, rrp, dp = K.qpos_to_dof(char, torch.from_numpy(qp))
        rpm, rrm, dm = K.qpos_to_dof(char, torch.from_numpy(qm))
        root_vel, root_ang_vel, dof_vel = K.qvel_to_dof_vel(
            char, torch.from_numpy(qpos), torch.from_numpy(qvel)
        )
        assert torch.allclose(root_vel, (rpp - rpm) / (2 * h), atol=1e-7)
        # world angular velocity: R(t+h) R(t-h)^T = exp(2h w)
        assert torch.allclose(
            root_ang_vel, quat_to_exp_map(quat_mul(rrp, quat_conj(rrm))) / (2 * h), atol=1e-7
        )
        # joint angular velocity in the child frame: R(t-h)^T R(t+h) = exp(2h w_child)
        lrp, lrm = K.dof_to_local_rot(char, dp), K.dof_to_local_rot(char, dm)
        w_child = quat_to_exp_map(quat_mul(quat_conj(lrm), lrp)) / (2 * h)
        for j in char.joints:
            sl = slice(j.dof_offset, j.dof_offset + j.dof_count)
            fd = (dp[:, sl] - dm[:, sl]) / (2 * h) if j.kind == "hinge" else w_child[:, j.body]
            assert torch.allclose(dof_vel[:, sl], fd, atol=1e-7), j.name
        # and back
        qvel2 = K.dof_vel_to_qvel(char, root_rot, f[:, 6:], root_vel, root_ang_vel, dof_vel)
        assert torch.allclose(qvel2, torch.from_numpy(qvel), atol=1e-9)


def test_spherical_dof_vel_is_mujocos_relative_body_angular_velocity(humanoids):
    """Cross-check with MuJoCo's own body velocities (mj_objectVelocity): child minus parent, child frame."""
    char, m = humanoids[2]
    d = mujoco.MjData(m)
    rng = np.random.default_rng(6)
    f = torch.from_numpy(random_frames(char, 5, seed=6))
    qpos = K.dof_to_qpos(char, f[:, :3], exp_map_to_quat(f[:, 3:6]), f[:, 6:]).numpy()
    for i in range(5):
        d.qpos[:] = qpos[i]
        d.qvel[:] = rng.normal(size=m.nv)
        mujoco.mj_forward(m, d)
        _, _, dof_vel = K.qvel_to_dof_vel(char, torch.from_numpy(qpos[i]), torch.from_numpy(d.qvel.copy()))
        for j in char.joints:
            if j.kind != "spherical":
                continue
            # world-frame angular velocities (flg_local=1 would use the body's inertial frame)
            w = np.zeros(6)
            wp = np.zeros(6)
            mujoco.mj_objectVelocity(m, d, mujoco.mjtObj.mjOBJ_BODY, j.body + 1, w, 0)
            mujoco.mj_objectVelocity(m, d, mujoco.mjtObj.mjOBJ_BODY, char.parents[j.body] + 1, wp, 0)
            expected = d.xmat[j.body + 1].reshape(3, 3).T @ (w[:3] - wp[:3])
            np.testing.assert_allclose(dof_vel[j.dof_offset : j.dof_offset + 3].numpy(), expected, atol=1e-10)


# ---- shapes, dtypes, caching, errors ----------------------------------------------------------------------------------


def test_leading_dims_float32_and_cache(humanoids):
    char, _ = humanoids[0]
    f64 = torch.from_numpy(random_frames(char, 24, seed=7)).reshape(2, 3, 4, char.frame_width)
    pos64, rot64 = K.frames_to_body_poses(char, f64)
    assert pos64.shape == (2, 3, 4, char.num_bodies, 3) and rot64.shape == (2, 3, 4, char.num_bodies, 4)
    pos32, rot32 = K.frames_to_body_poses(char, f64.float())
    assert pos32.dtype == torch.float32
    assert float((pos32.double() - pos64).abs().max()) < 1e-5  # float32: ~1e-7 relative over ~2 m
    qpos = K.dof_to_qpos(char, f64[..., :3], exp_map_to_quat(f64[..., 3:6]), f64[..., 6:])
    assert qpos.shape == (2, 3, 4, char.num_qpos)
    # broadcasting: one root for many poses
    pos_b, _ = K.forward_kinematics(
        char,
        torch.zeros(3, dtype=F64),
        torch.tensor([1.0, 0, 0, 0], dtype=F64),
        K.dof_to_local_rot(char, f64[..., 6:]),
    )
    assert pos_b.shape == (2, 3, 4, char.num_bodies, 3)
    assert K._consts(char, f64) is K._consts(char, f64)
    assert K._consts(char, f64) is not K._consts(char, f64.float())


def test_autograd_flows_through_fk(humanoids):
    char, _ = humanoids[0]
    f = torch.from_numpy(random_frames(char, 4, seed=8)).requires_grad_(True)
    pos, _ = K.frames_to_body_poses(char, f)
    pos[..., 2].sum().backward()
    assert f.grad is not None and torch.isfinite(f.grad).all() and float(f.grad.abs().sum()) > 0


def test_wrong_widths_raise(humanoids):
    char, _ = humanoids[0]
    with pytest.raises(CharacterError, match="needs 34 columns"):
        K.frames_to_body_poses(char, torch.zeros(5, 33))
    with pytest.raises(CharacterError, match="needs 28 columns"):
        K.dof_to_local_rot(char, torch.zeros(5, 27))
    with pytest.raises(CharacterError, match="needs 35 columns"):
        K.qpos_to_dof(char, torch.zeros(5, 34))
    with pytest.raises(CharacterError, match="floating-point"):
        K.dof_to_local_rot(char, torch.zeros(5, 28, dtype=torch.long))


# ---- geoms --------------------------------------------------------------------------------------------------------


def test_geom_lowest_z_matches_mujoco_geom_frames(humanoids, odd):
    for char, m in [humanoids[0], humanoids[2]]:
        d = mujoco.MjData(m)
        f = torch.from_numpy(random_frames(char, 20, seed=9))
        pos, rot = K.frames_to_body_poses(char, f)
        low = K.geom_lowest_z(char, pos, rot)
        qpos = K.dof_to_qpos(char, f[:, :3], exp_map_to_quat(f[:, 3:6]), f[:, 6:]).numpy()
        for i in range(20):
            d.qpos[:] = qpos[i]
            mujoco.mj_kinematics(m, d)
            for g in range(m.ngeom):
                expected = _lowest_z_brute(
                    m.geom_type[g], m.geom_size[g], d.geom_xpos[g], d.geom_xmat[g].reshape(3, 3)
                )
                assert abs(float(low[i, g]) - expected) < 1e-3, (
                    char.geoms[g].name,
                    float(low[i, g]),
                    expected,
                )


def _lowest_z_brute(gtype, size, centre, mat):
    """Lowest z by dense sampling of the surface (1e-3 m accurate: this checks the closed forms)."""
    u = np.linspace(0, 2 * np.pi, 181)
    v = np.linspace(0, np.pi, 91)
    uu, vv = np.meshgrid(u, v)
    sphere = np.stack([np.cos(uu) * np.sin(vv), np.sin(uu) * np.sin(vv), np.cos(vv)], -1).reshape(-1, 3)
    if gtype == mujoco.mjtGeom.mjGEOM_SPHERE:
        pts = sphere * size[0]
    elif gtype == mujoco.mjtGeom.mjGEOM_CAPSULE:
        pts = np.concatenate([sphere * size[0] + [0, 0, size[1]], sphere * size[0] - [0, 0, size[1]]])
    elif gtype == mujoco.mjtGeom.mjGEOM_ELLIPSOID:
        pts = sphere * size
    elif gtype == mujoco.mjtGeom.mjGEOM_BOX:
        pts = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)]) * size
    else:
        raise AssertionError(gtype)
    return float((pts @ mat.T + centre)[:, 2].min())


def _hip_jacobians(middle: torch.Tensor) -> torch.Tensor:
    """Jacobians of an x-y-z hinge triple with middle angles ``middle`` (n,) and outer angles 0.3, -0.4."""
    from types import SimpleNamespace

    c = SimpleNamespace(triple_axes=torch.eye(3, dtype=torch.float64)[None])
    angles = torch.stack([torch.full_like(middle, 0.3), middle, torch.full_like(middle, -0.4)], -1)[:, None]
    return K._triple_jacobian(c, angles)[:, 0]


def test_triple_rates_are_exact_away_from_gimbal_lock_and_bounded_at_it():
    """``J dq = omega`` exactly where |det J| = |cos(middle)| >= GIMBAL_LOCK_DET; closer to the lock the rates
    stay bounded (the exact ones grow like 1/cos: ~1,200 rad/s for 10 rad/s at 0.5 deg from it, which blew up
    MimicKit's humanoid at 120 Hz), continuous across the threshold, and the angular velocity is kept outside
    the locked direction."""
    omega = torch.tensor([[4.0, -6.0, 7.0]], dtype=torch.float64)  # rad/s, |omega| = 10
    far = torch.tensor([0.0, 1.0, -1.2, 1.4, -1.47], dtype=torch.float64)  # |cos| >= 0.1
    m = _hip_jacobians(far)
    rates = K.solve_triple_rates(m, omega.expand(len(far), 3))
    torch.testing.assert_close((m @ rates[..., None])[..., 0], omega.expand(len(far), 3), rtol=0, atol=1e-12)

    near = torch.tensor([math.pi / 2, math.pi / 2 - 1e-3, -math.pi / 2 + 0.01, math.pi / 2 + 0.05])
    m = _hip_jacobians(near.double())
    rates = K.solve_triple_rates(m, omega.expand(len(near), 3))
    exact = torch.linalg.solve(m[1:], omega.expand(len(near) - 1, 3)[..., None])[..., 0]
    assert exact.abs().max() > 1000  # what the reset used to set
    assert rates.abs().max() < 10 * omega.norm() / (2 * K.GIMBAL_LOCK_DAMPING)  # bounded
    back = (m @ rates[..., None])[..., 0]
    u = torch.linalg.svd(m).U[..., :, 2]  # the locked direction (smallest singular value)
    residual = back - omega
    along = (residual * u).sum(-1, keepdim=True) * u
    assert (residual - along).norm(dim=-1).max() < 0.05 * omega.norm()  # only the locked component is lost

    edge = torch.acos(torch.tensor([K.GIMBAL_LOCK_DET * (1 + 1e-9), K.GIMBAL_LOCK_DET * (1 - 1e-9)])).double()
    r = K.solve_triple_rates(_hip_jacobians(edge), omega.expand(2, 3))
    torch.testing.assert_close(r[0], r[1], rtol=1e-6, atol=1e-6)  # continuous at the threshold
