"""Batched forward kinematics and DoF conversions on torch tensors (CPU/CUDA, float32/float64).

Every function takes any leading batch dims ``...``; nothing loops over frames. Conventions:

- quaternions wxyz (``mimictools.math.rotations``); world Z-up, metres, radians;
- ``dof`` is MimicKit's motion DoF vector (``Character.num_dofs``): a hinge angle per 1-DoF joint, an
  exponential map of the joint rotation per 3-DoF (spherical) joint;
- ``local_rot`` (..., num_bodies, 4) is the *joint* rotation of each body (identity for the root and for
  welded bodies); the body's fixed MJCF orientation ``Character.local_quat`` is applied on top by
  ``forward_kinematics``: ``body_rot = parent_rot * local_quat * local_rot`` and
  ``body_pos = parent_pos + parent_rot * local_pos`` (MuJoCo's ``mj_kinematics`` for joints at the
  body origin);
- MuJoCo ``qpos``: ``[root_pos(3), root_quat(4), per joint: 1 hinge angle | 3 hinge angles | ball quat(4)]``;
  ``qvel``: ``[root_lin_vel world(3), root_ang_vel body frame(3), per joint 1 | 3 | 3]``.

Three hinges on one body compose as MuJoCo does: ``R = R(a1, q1) R(a2, q2) R(a3, q3)`` (axes in the body
frame). ``dof_to_qpos`` recovers ``q1..q3`` by rotating the joint rotation into the axes' frame and taking
the intrinsic x-y-z Euler angles (a sign flips ``q3`` for a left-handed axis triple). Of the two Euler
solutions it returns the one inside the joint limits (the principal one, middle angle in [-pi/2, pi/2],
when both or neither fit).

Per-(character, device, dtype) torch constants are cached (a ``Character`` is hashable by identity).
"""

from __future__ import annotations

import math
import weakref
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch
from torch import Tensor

from mimictools.character.model import Character
from mimictools.errors import CharacterError
from mimictools.math.rotations import (
    euler_xyz_to_quat,
    exp_map_to_quat,
    matrix_to_quat,
    normalize_angle,
    quat_conj,
    quat_mul,
    quat_rotate,
    quat_rotate_inv,
    quat_to_euler_xyz,
    quat_to_exp_map,
)

__all__ = [
    "dof_to_local_rot",
    "dof_to_qpos",
    "dof_vel_to_qvel",
    "forward_kinematics",
    "frames_to_body_poses",
    "geom_lowest_z",
    "local_rot_to_dof",
    "qpos_to_dof",
    "qvel_to_dof_vel",
]


# ---- cached constants ----------------------------------------------------------------------------------


class _Consts:
    """Index tables and per-joint constants for one (character, device, dtype)."""

    def __init__(self, char: Character, device: torch.device, dtype: torch.dtype):
        def t(x, dt=dtype) -> Tensor:
            return torch.as_tensor(np.asarray(x), dtype=dt, device=device)

        def idx(x) -> Tensor:
            return torch.as_tensor(np.asarray(x, dtype=np.int64).reshape(-1), dtype=torch.long, device=device)

        nb = char.num_bodies
        self.num_bodies = nb
        self.num_dofs = char.num_dofs
        hinge = [j for j in char.joints if j.kind == "hinge"]
        sph = [j for j in char.joints if j.kind == "spherical"]
        triple = [j for j in sph if not j.is_ball]
        ball = [j for j in sph if j.is_ball]
        self.num_hinge, self.num_sph = len(hinge), len(sph)
        self.ident = t([[1.0, 0.0, 0.0, 0.0]])  # (1, 4): the root's joint rotation, expanded (no op per call)

        # dof -> local_rot: gather hinge angles / exp maps, build quats, assemble by a body permutation
        self.hinge_dof = idx([j.dof_offset for j in hinge])
        self.hinge_axis = t([j.axes[0] for j in hinge]).reshape(-1, 3)
        self.sph_dof = idx([[j.dof_offset + k for k in range(3)] for j in sph])
        src = np.zeros(nb, dtype=np.int64)  # 0 = identity slot
        for k, j in enumerate(hinge):
            src[j.body] = 1 + k
        for k, j in enumerate(sph):
            src[j.body] = 1 + len(hinge) + k
        self.rot_src = idx(src)
        self.hinge_body = idx([j.body for j in hinge])
        self.sph_body = idx([j.body for j in sph])
        # local_rot -> dof: cat([hinge angles, sph exp maps (flattened)]) permuted to dof order
        order = [j.dof_offset for j in hinge] + [j.dof_offset + k for j in sph for k in range(3)]
        self.dof_src = idx(np.argsort(np.asarray(order, dtype=np.int64))) if order else idx([])

        # forward kinematics by depth level; level 0 = root
        depth = np.zeros(nb, dtype=np.int64)
        for b in range(1, nb):
            depth[b] = depth[char.parents[b]] + 1
        self.levels: List[Tuple[Tensor, Tensor, Tensor, Optional[Tensor]]] = []
        pos_in_level = np.zeros(nb, dtype=np.int64)
        cat_order: List[int] = [0]
        for d in range(1, int(depth.max()) + 1 if nb > 1 else 1):
            bodies = np.nonzero(depth == d)[0]
            for k, body in enumerate(bodies):
                pos_in_level[body] = k
            parent_local = [int(pos_in_level[char.parents[int(body)]]) for body in bodies]
            lq = char.local_quat[bodies]
            ident = np.allclose(lq, [1.0, 0.0, 0.0, 0.0], atol=0.0, rtol=0.0)
            self.levels.append(
                (idx(bodies), idx(parent_local), t(char.local_pos[bodies]), None if ident else t(lq))
            )
            cat_order.extend(int(b) for b in bodies)
        self.fk_src = idx(np.argsort(np.asarray(cat_order)))

        # qpos layout
        self.triple_dof = idx([[j.dof_offset + k for k in range(3)] for j in triple])
        self.ball_dof = idx([[j.dof_offset + k for k in range(3)] for j in ball])
        qa, sign = [], []
        for j in triple:
            a = np.array(j.axes, dtype=np.float64)
            s = 1.0 if np.linalg.det(a) > 0 else -1.0
            m = np.stack([a[0], a[1], s * a[2]], axis=1)  # columns: the (right-handed) axes frame
            qa.append(matrix_to_quat(torch.as_tensor(m, dtype=torch.float64)).numpy())
            sign.append([1.0, 1.0, s])
        self.triple_qa = t(qa).reshape(-1, 4)
        self.triple_sign = t(sign).reshape(-1, 3)
        self.triple_axes = t([j.axes for j in triple]).reshape(-1, 3, 3)
        self.triple_low = t([j.range_low for j in triple]).reshape(-1, 3)
        self.triple_high = t([j.range_high for j in triple]).reshape(-1, 3)
        qpos_cols: List[int] = []  # qpos column of each entry of cat([root 7, hinges, triples*3, balls*4])
        hinge_q: List[int] = []
        triple_q: List[int] = []
        ball_q: List[int] = []
        col = 7
        for j in char.joints:
            n = j.qpos_count
            if j.kind == "hinge":
                hinge_q.append(col)
            elif j.is_ball:
                ball_q.extend(range(col, col + 4))
            else:
                triple_q.extend(range(col, col + 3))
            col += n
        qpos_cols = list(range(7)) + hinge_q + triple_q + ball_q
        self.num_qpos = col
        self.qpos_src = idx(np.argsort(np.asarray(qpos_cols)))
        self.hinge_qpos = idx(hinge_q)
        self.triple_qpos = idx(triple_q)
        self.ball_qpos = idx(ball_q)
        # qvel layout = [root 6, dof_vel layout] (a hinge triple and a ball both have 3 velocity entries)
        self.triple_dof_flat = idx([j.dof_offset + k for j in triple for k in range(3)])


_CACHE: weakref.WeakKeyDictionary[Character, Dict[Tuple[str, torch.dtype], _Consts]] = (
    weakref.WeakKeyDictionary()
)


def _consts(char: Character, like: Tensor) -> _Consts:
    per_char = _CACHE.get(char)
    if per_char is None:
        per_char = {}
        _CACHE[char] = per_char
    key = (str(like.device), like.dtype)
    c = per_char.get(key)
    if c is None:
        if not like.is_floating_point():
            raise CharacterError(f"kinematics needs a floating-point tensor, got {like.dtype}")
        c = _Consts(char, like.device, like.dtype)
        per_char[key] = c
    return c


def _check_width(char: Character, x: Tensor, n: int, what: str) -> None:
    if x.dim() < 1 or x.shape[-1] != n:
        raise CharacterError(
            f"{what} has shape {tuple(x.shape)}; character {char.name!r} ({char.source}) needs {n} columns in the last dim"
        )


# ---- DoF <-> joint rotations -----------------------------------------------------------------------------


def dof_to_local_rot(char: Character, dof: Tensor) -> Tensor:
    """Joint rotation per body from motion DoFs. dof (..., num_dofs) -> (..., num_bodies, 4)."""
    _check_width(char, dof, char.num_dofs, "dof")
    c = _consts(char, dof)
    lead = dof.shape[:-1]
    parts = [c.ident.expand(lead + (1, 4))]
    if c.num_hinge:
        half = 0.5 * dof.index_select(-1, c.hinge_dof).unsqueeze(-1)  # (..., nh, 1)
        parts.append(torch.cat([torch.cos(half), torch.sin(half) * c.hinge_axis], dim=-1))
    if c.num_sph:
        e = dof.index_select(-1, c.sph_dof.reshape(-1)).reshape(lead + (c.num_sph, 3))
        parts.append(exp_map_to_quat(e))
    return torch.cat(parts, dim=-2).index_select(-2, c.rot_src)


def local_rot_to_dof(char: Character, local_rot: Tensor) -> Tensor:
    """Inverse of ``dof_to_local_rot``. (..., num_bodies, 4) -> (..., num_dofs).

    Hinges take the twist angle about their axis (in (-pi, pi]); spherical joints the exponential map
    (angle in [0, pi]). Entries for the root and welded bodies are ignored.
    """
    if local_rot.dim() < 2 or local_rot.shape[-2:] != (char.num_bodies, 4):
        raise CharacterError(
            f"local_rot has shape {tuple(local_rot.shape)}; character {char.name!r} needs (..., {char.num_bodies}, 4)"
        )
    c = _consts(char, local_rot)
    lead = local_rot.shape[:-2]
    parts = []
    if c.num_hinge:
        q = local_rot.index_select(-2, c.hinge_body)  # (..., nh, 4)
        twist = (q[..., 1:] * c.hinge_axis).sum(-1)
        parts.append(_wrap_pi(2.0 * torch.atan2(twist, q[..., 0])))
    if c.num_sph:
        q = local_rot.index_select(-2, c.sph_body)
        parts.append(quat_to_exp_map(q).reshape(lead + (3 * c.num_sph,)))
    if not parts:
        return local_rot.new_zeros(lead + (0,))
    return torch.cat(parts, dim=-1).index_select(-1, c.dof_src)


def _wrap_pi(angle: Tensor) -> Tensor:
    """Wrap to (-pi, pi] (a twist from 2*atan2 lies in (-2pi, 2pi])."""
    return torch.where(
        angle > math.pi, angle - 2.0 * math.pi, torch.where(angle <= -math.pi, angle + 2.0 * math.pi, angle)
    )


# ---- forward kinematics -----------------------------------------------------------------------------------


def forward_kinematics(
    char: Character, root_pos: Tensor, root_rot: Tensor, local_rot: Tensor
) -> Tuple[Tensor, Tensor]:
    """World body poses. root_pos (..., 3), root_rot (..., 4) wxyz, local_rot (..., num_bodies, 4).

    Returns ``(body_pos (..., num_bodies, 3) metres, body_rot (..., num_bodies, 4) wxyz)``; body 0 is the
    root (``root_pos``, ``root_rot``; the root's MJCF pos/quat are only its initial pose).
    """
    if local_rot.dim() < 2 or local_rot.shape[-2:] != (char.num_bodies, 4):
        raise CharacterError(
            f"local_rot has shape {tuple(local_rot.shape)}; character {char.name!r} needs (..., {char.num_bodies}, 4)"
        )
    c = _consts(char, local_rot)
    lead = torch.broadcast_shapes(root_pos.shape[:-1], root_rot.shape[:-1], local_rot.shape[:-2])
    pos = root_pos.expand(lead + (3,)).unsqueeze(-2)
    rot = root_rot.expand(lead + (4,)).unsqueeze(-2)
    local_rot = local_rot.expand(lead + local_rot.shape[-2:])
    all_pos, all_rot = [pos], [rot]
    for bodies, parent_local, lpos, lquat in c.levels:
        ppos = pos.index_select(-2, parent_local)
        prot = rot.index_select(-2, parent_local)
        jrot = local_rot.index_select(-2, bodies)
        if lquat is not None:
            jrot = quat_mul(lquat, jrot)
        pos = ppos + quat_rotate(prot, lpos.expand_as(ppos))
        rot = quat_mul(prot, jrot)
        all_pos.append(pos)
        all_rot.append(rot)
    if len(all_pos) == 1:
        return all_pos[0], all_rot[0]
    body_pos = torch.cat(all_pos, dim=-2).index_select(-2, c.fk_src)
    body_rot = torch.cat(all_rot, dim=-2).index_select(-2, c.fk_src)
    return body_pos, body_rot


def frames_to_body_poses(char: Character, frames: Tensor) -> Tuple[Tensor, Tensor]:
    """MimicKit motion frames (..., 6 + num_dofs) -> (body_pos (..., nb, 3), body_rot (..., nb, 4))."""
    _check_width(char, frames, char.frame_width, "frames")
    root_rot = exp_map_to_quat(frames[..., 3:6])
    local_rot = dof_to_local_rot(char, frames[..., 6:])
    return forward_kinematics(char, frames[..., 0:3], root_rot, local_rot)


# ---- MuJoCo qpos / qvel ---------------------------------------------------------------------------------


def _triple_euler(c: _Consts, q: Tensor) -> Tensor:
    """Hinge angles (..., nt, 3) of joint rotations q (..., nt, 4), limit-aware branch choice."""
    qa = c.triple_qa
    # the joint rotation seen in the axes' frame: Rx(a) Ry(b) Rz(c), with c = sign * q3
    qe = quat_mul(quat_mul(quat_conj(qa), q), qa)
    raw = quat_to_euler_xyz(qe)
    # the other Euler solution of the same rotation: (a + pi, pi - b, c + pi)
    alt = torch.stack([raw[..., 0] + math.pi, math.pi - raw[..., 1], raw[..., 2] + math.pi], dim=-1)
    e = _wrap_pi(raw * c.triple_sign)
    alt = _wrap_pi(normalize_angle(alt) * c.triple_sign)

    def violation(x: Tensor) -> Tensor:
        lo = torch.clamp(c.triple_low - x, min=0.0)
        hi = torch.clamp(x - c.triple_high, min=0.0)
        return (lo + hi).sum(-1, keepdim=True)

    use_alt = violation(alt) < violation(e) - 1e-9
    return torch.where(use_alt, alt, e)


def _triple_quat(c: _Consts, angles: Tensor) -> Tensor:
    """Joint rotations (..., nt, 4) from hinge angles (..., nt, 3): R(a1,q1) R(a2,q2) R(a3,q3)."""
    qe = euler_xyz_to_quat(angles * c.triple_sign)
    return quat_mul(quat_mul(c.triple_qa, qe), quat_conj(c.triple_qa))


def dof_to_qpos(char: Character, root_pos: Tensor, root_rot: Tensor, dof: Tensor) -> Tensor:
    """MuJoCo qpos (..., num_qpos) from root_pos (..., 3), root_rot (..., 4) wxyz and dof (..., num_dofs)."""
    _check_width(char, dof, char.num_dofs, "dof")
    c = _consts(char, dof)
    lead = torch.broadcast_shapes(root_pos.shape[:-1], root_rot.shape[:-1], dof.shape[:-1])
    dof = dof.expand(lead + dof.shape[-1:])
    parts = [root_pos.expand(lead + (3,)), root_rot.expand(lead + (4,))]
    if c.num_hinge:
        parts.append(dof.index_select(-1, c.hinge_dof))
    if c.triple_dof.numel():
        e = dof.index_select(-1, c.triple_dof.reshape(-1)).reshape(lead + (-1, 3))
        parts.append(_triple_euler(c, exp_map_to_quat(e)).flatten(-2))
    if c.ball_dof.numel():
        e = dof.index_select(-1, c.ball_dof.reshape(-1)).reshape(lead + (-1, 3))
        parts.append(exp_map_to_quat(e).flatten(-2))
    return torch.cat(parts, dim=-1).index_select(-1, c.qpos_src)


def qpos_to_dof(char: Character, qpos: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
    """Inverse of ``dof_to_qpos``: qpos (..., num_qpos) -> (root_pos (..., 3), root_rot (..., 4), dof (..., num_dofs))."""
    _check_width(char, qpos, char.num_qpos, "qpos")
    c = _consts(char, qpos)
    lead = qpos.shape[:-1]
    dof = qpos.new_zeros(lead + (c.num_dofs,))
    if c.num_hinge:
        dof = dof.index_copy(-1, c.hinge_dof, qpos.index_select(-1, c.hinge_qpos))
    if c.triple_dof.numel():
        ang = qpos.index_select(-1, c.triple_qpos).reshape(lead + (-1, 3))
        e = quat_to_exp_map(_triple_quat(c, ang))
        dof = dof.index_copy(-1, c.triple_dof.reshape(-1), e.flatten(-2))
    if c.ball_dof.numel():
        q = qpos.index_select(-1, c.ball_qpos).reshape(lead + (-1, 4))
        dof = dof.index_copy(-1, c.ball_dof.reshape(-1), quat_to_exp_map(q).flatten(-2))
    root_rot = qpos[..., 3:7]
    root_rot = root_rot / root_rot.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    return qpos[..., 0:3], root_rot, dof


def _triple_jacobian(c: _Consts, angles: Tensor) -> Tensor:
    """J (..., nt, 3, 3) with child-frame angular velocity = J @ hinge rates.

    For R = R1 R2 R3: omega_child = (R2 R3)^T a1 dq1 + R3^T a2 dq2 + a3 dq3.
    """
    axes = c.triple_axes  # (nt, 3, 3) rows = axes
    h2 = 0.5 * angles[..., 1:2]
    h3 = 0.5 * angles[..., 2:3]
    q2 = torch.cat([torch.cos(h2), torch.sin(h2) * axes[:, 1]], dim=-1)
    q3 = torch.cat([torch.cos(h3), torch.sin(h3) * axes[:, 2]], dim=-1)
    a1 = axes[:, 0].expand(angles.shape)
    a2 = axes[:, 1].expand(angles.shape)
    col1 = quat_rotate_inv(quat_mul(q2, q3), a1)
    col2 = quat_rotate_inv(q3, a2)
    col3 = axes[:, 2].expand(angles.shape)
    return torch.stack([col1, col2, col3], dim=-1)


def _solve3(m: Tensor, v: Tensor) -> Tensor:
    """Solve m x = v for batched 3x3 m (..., 3, 3), v (..., 3); the determinant is clamped away from 0."""
    a, b, cc = m[..., 0, :], m[..., 1, :], m[..., 2, :]
    r0 = torch.linalg.cross(b, cc)
    r1 = torch.linalg.cross(cc, a)
    r2 = torch.linalg.cross(a, b)
    det = (a * r0).sum(-1, keepdim=True)
    eps = 1e-9 if m.dtype == torch.float64 else 1e-6
    det = torch.where(det.abs() < eps, torch.where(det < 0, -eps, eps) * torch.ones_like(det), det)
    # inverse = [r0 r1 r2] (columns) / det
    x = r0 * v[..., 0:1] + r1 * v[..., 1:2] + r2 * v[..., 2:3]
    return x / det


GIMBAL_LOCK_DET = 0.1
"""Hinge-triple rates are exact where ``|det J| >= GIMBAL_LOCK_DET`` (``det J = cos(middle angle)`` for
orthogonal axes: more than ~5.7 deg from gimbal lock); closer, damped least squares (`solve_triple_rates`)."""
GIMBAL_LOCK_DAMPING = 0.1
"""Damping (rad/s per rad/s) of the least-squares hinge-triple rates at gimbal lock itself (``det J = 0``)."""


def solve_triple_rates(m: Tensor, v: Tensor) -> Tensor:
    """Hinge rates ``dq`` (..., 3) of a hinge triple with Jacobian ``m`` (..., 3, 3) for the angular velocity
    ``v`` (..., 3): ``m dq = v`` where ``|det m| >= GIMBAL_LOCK_DET``, else variable-damping least squares
    (Nakamura & Hanafusa 1986) ``dq = m^T (m m^T + lam^2 I)^-1 v`` with ``lam^2 = GIMBAL_LOCK_DAMPING^2 (1 -
    (det / GIMBAL_LOCK_DET)^2)``, which is the exact solution at the threshold (continuous) and bounds the rates
    at gimbal lock, where ``m`` is singular: the exact rates of a reference angular velocity there are
    thousands of rad/s on two hinges that nearly cancel, whose joint armature then holds kilojoules
    (docs/performance.md, "Stable PD": MimicKit's humanoid blew up at 120 Hz in the first step after such a
    reset). The component of ``v`` along the locked direction is dropped there; the others stay exact."""
    a, b, cc = m[..., 0, :], m[..., 1, :], m[..., 2, :]
    det = (a * torch.linalg.cross(b, cc)).sum(-1, keepdim=True)
    exact = _solve3(m, v)
    lam2 = GIMBAL_LOCK_DAMPING**2 * torch.clamp_min(1.0 - torch.square(det / GIMBAL_LOCK_DET), 0.0)
    mt = m.transpose(-1, -2)
    eye = torch.eye(3, dtype=m.dtype, device=m.device)
    damped = (mt @ _solve3(m @ mt + lam2.unsqueeze(-1) * eye, v).unsqueeze(-1)).squeeze(-1)
    return torch.where(det.abs() >= GIMBAL_LOCK_DET, exact, damped)


def qvel_to_dof_vel(char: Character, qpos: Tensor, qvel: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
    """MuJoCo qvel -> (root_vel world (..., 3), root_ang_vel world (..., 3), dof_vel (..., num_dofs)).

    Spherical DoF velocity = the joint's angular velocity in the child body frame (rad/s).
    """
    _check_width(char, qpos, char.num_qpos, "qpos")
    _check_width(char, qvel, 6 + char.num_dofs, "qvel")
    c = _consts(char, qvel)
    root_rot = qpos[..., 3:7]
    root_rot = root_rot / root_rot.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    root_ang_vel = quat_rotate(root_rot, qvel[..., 3:6])
    dof_vel = qvel[..., 6:]
    if c.triple_dof.numel():
        lead = torch.broadcast_shapes(qpos.shape[:-1], qvel.shape[:-1])
        ang = qpos.index_select(-1, c.triple_qpos).reshape(qpos.shape[:-1] + (-1, 3))
        rates = dof_vel.index_select(-1, c.triple_dof_flat).reshape(qvel.shape[:-1] + (-1, 3))
        omega = (_triple_jacobian(c, ang) @ rates.unsqueeze(-1)).squeeze(-1)
        dof_vel = dof_vel.expand(lead + dof_vel.shape[-1:]).index_copy(
            -1, c.triple_dof_flat, omega.flatten(-2)
        )
    return qvel[..., 0:3], root_ang_vel, dof_vel


def dof_vel_to_qvel(
    char: Character,
    root_rot: Tensor,
    dof_pos: Tensor,
    root_vel: Tensor,
    root_ang_vel: Tensor,
    dof_vel: Tensor,
) -> Tensor:
    """MuJoCo qvel (..., 6 + num_dofs) from world root velocities, DoF positions and DoF velocities.

    Hinge-triple rates solve ``J(q) dq = omega`` (q the hinge angles ``dof_to_qpos`` chooses), exactly except
    within ~5.7 deg of gimbal lock (middle angle +-pi/2), where J is singular and `solve_triple_rates` bounds
    them (damped least squares): there ``qvel_to_dof_vel`` does not give ``omega`` back exactly.
    """
    _check_width(char, dof_pos, char.num_dofs, "dof_pos")
    _check_width(char, dof_vel, char.num_dofs, "dof_vel")
    c = _consts(char, dof_vel)
    lead = torch.broadcast_shapes(
        root_rot.shape[:-1],
        dof_pos.shape[:-1],
        root_vel.shape[:-1],
        root_ang_vel.shape[:-1],
        dof_vel.shape[:-1],
    )
    local_ang = quat_rotate_inv(root_rot, root_ang_vel).expand(lead + (3,))
    dv = dof_vel.expand(lead + dof_vel.shape[-1:])
    if c.triple_dof.numel():
        e = dof_pos.index_select(-1, c.triple_dof.reshape(-1)).reshape(dof_pos.shape[:-1] + (-1, 3))
        ang = _triple_euler(c, exp_map_to_quat(e))
        omega = dv.index_select(-1, c.triple_dof_flat).reshape(lead + (-1, 3))
        rates = solve_triple_rates(_triple_jacobian(c, ang).expand(lead + omega.shape[-2:] + (3,)), omega)
        dv = dv.index_copy(-1, c.triple_dof_flat, rates.flatten(-2))
    return torch.cat([root_vel.expand(lead + (3,)), local_ang, dv], dim=-1)


# ---- geometry -------------------------------------------------------------------------------------------


def geom_lowest_z(char: Character, body_pos: Tensor, body_rot: Tensor) -> Tensor:
    """Lowest world z (m) of each geom, Shape (..., num_geoms), for ground checks.

    Exact for sphere, capsule, box, cylinder and ellipsoid; +inf for other types (mesh, plane, ...).
    body_pos (..., num_bodies, 3), body_rot (..., num_bodies, 4).
    """
    geoms = char.geoms
    lead = body_pos.shape[:-2]
    if not geoms:
        return body_pos.new_zeros(lead + (0,))
    dev, dt = body_pos.device, body_pos.dtype
    bodies = torch.tensor([g.body for g in geoms], device=dev)
    gpos = torch.as_tensor(np.stack([g.pos for g in geoms]), dtype=dt, device=dev)
    gquat = torch.as_tensor(np.stack([g.quat for g in geoms]), dtype=dt, device=dev)
    size = torch.as_tensor(
        np.stack([np.pad(g.size[:3], (0, 3 - min(3, g.size.size))) for g in geoms]), dtype=dt, device=dev
    )
    bp = body_pos.index_select(-2, bodies)
    br = body_rot.index_select(-2, bodies)
    centre = bp + quat_rotate(br, gpos.expand(bp.shape))
    wq = quat_mul(br, gquat.expand(br.shape))
    # row 2 of the geom's world rotation matrix: world-z components of its local x, y, z axes
    w, x, y, z = wq.unbind(-1)
    r20 = 2.0 * (x * z - w * y)
    r21 = 2.0 * (y * z + w * x)
    r22 = 1.0 - 2.0 * (x * x + y * y)
    r2 = torch.stack([r20, r21, r22], dim=-1)
    cz = centre[..., 2]
    s0, s1 = size[:, 0], size[:, 1]
    low = torch.full_like(cz, math.inf)
    types = [g.type for g in geoms]

    def mask(name: str) -> Tensor:
        return torch.tensor([tp == name for tp in types], device=dev)

    low = torch.where(mask("sphere"), cz - s0, low)
    low = torch.where(mask("capsule"), cz - s1 * r22.abs() - s0, low)
    low = torch.where(mask("box"), cz - (r2.abs() * size).sum(-1), low)
    cyl = cz - s1 * r22.abs() - s0 * torch.sqrt(torch.clamp(1.0 - r22 * r22, min=0.0))
    low = torch.where(mask("cylinder"), cyl, low)
    ell = cz - torch.sqrt(((r2 * size) ** 2).sum(-1))
    low = torch.where(mask("ellipsoid"), ell, low)
    return low
