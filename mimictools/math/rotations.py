"""Rotation math on torch tensors.

Convention (stated once, used everywhere in mimictools): quaternions are **(w, x, y, z)**, unit
length, Hamilton product, active rotations: ``quat_rotate(q, v)`` rotates vector ``v`` by ``q``.
``quat_mul(a, b)`` applies ``b`` first, then ``a`` (as rotation matrices ``A @ B``).
An exponential map ``e`` (3,) is ``axis * angle`` (radians). World is Z-up.

Every function takes any leading batch dims (``...``) and works on CPU or CUDA, float32 or float64.
Adapters for engines with other conventions (Isaac Gym is xyzw) convert at their boundary with
``xyzw_to_wxyz`` / ``wxyz_to_xyzw``; nothing else in the library takes a ``w_last`` flag.
"""

from __future__ import annotations

import math
from typing import Dict, Tuple

import torch
from torch import Tensor

__all__ = [
    "axis_angle_to_quat",
    "calc_heading",
    "euler_xyz_to_quat",
    "exp_map_to_quat",
    "heading_quat",
    "heading_quat_inv",
    "matrix_to_quat",
    "normalize_angle",
    "quat_angle",
    "quat_conj",
    "quat_diff_angle",
    "quat_identity",
    "quat_mul",
    "quat_normalize",
    "quat_rotate",
    "quat_rotate_inv",
    "quat_slerp",
    "quat_to_axis_angle",
    "quat_to_euler_xyz",
    "quat_to_exp_map",
    "quat_to_matrix",
    "quat_to_tan_norm",
    "wxyz_to_xyzw",
    "xyzw_to_wxyz",
]

_SMALL = 1e-8


def quat_identity(shape: Tuple[int, ...] = (), dtype: torch.dtype = torch.float32, device=None) -> Tensor:
    """Identity quaternions. Shape ``(*shape, 4)``."""
    q = torch.zeros(*shape, 4, dtype=dtype, device=device)
    q[..., 0] = 1.0
    return q


def quat_normalize(q: Tensor) -> Tensor:
    """Unit-length quaternion. Shape (..., 4)."""
    return q / q.norm(dim=-1, keepdim=True).clamp_min(_SMALL)


def quat_conj(q: Tensor) -> Tensor:
    """Conjugate (= inverse for unit quaternions). Shape (..., 4)."""
    return torch.cat([q[..., :1], -q[..., 1:]], dim=-1)


# Hamilton product as four terms per component: component c = sum over t of a[t] * (sign * b[perm])[t, c],
# summed left to right (t = 0..3), which is the textbook expression's order of operations:
#   w = aw*bw - ax*bx - ay*by - az*bz        x = aw*bx + ax*bw + ay*bz - az*by
#   y = aw*by - ax*bz + ay*bw + az*bx        z = aw*bz + ax*by - ay*bx + az*bw
# (x - y == x + (-y) and a * (-b) == -(a * b) exactly in IEEE arithmetic, so the result is bitwise the textbook
# one; tests/math/test_rotations.py checks it.) 6 tensor ops instead of 29: this runs in every FK level,
# observation and reward of every control step, where each op is a GPU kernel.
_MUL_PERM = ((0, 1, 2, 3), (1, 0, 3, 2), (2, 3, 0, 1), (3, 2, 1, 0))  # [t][c]: index into b
_MUL_SIGN = ((1, 1, 1, 1), (-1, 1, -1, 1), (-1, 1, 1, -1), (-1, -1, 1, 1))  # [t][c]
_MUL_CONSTS: Dict[Tuple[str, torch.dtype], Tuple[Tensor, Tensor]] = {}


def _mul_consts(like: Tensor) -> Tuple[Tensor, Tensor]:
    """(perm (16,) long, sign (4, 4)) on ``like``'s device and dtype, made once per (device, dtype) (not inside
    a captured CUDA graph: the step's eager warm-up makes them first)."""
    key = (str(like.device), like.dtype)
    c = _MUL_CONSTS.get(key)
    if c is None:
        perm = torch.tensor([i for row in _MUL_PERM for i in row], dtype=torch.long, device=like.device)
        c = (perm, torch.tensor(_MUL_SIGN, dtype=like.dtype, device=like.device))
        _MUL_CONSTS[key] = c
    return c


def quat_mul(a: Tensor, b: Tensor) -> Tensor:
    """Hamilton product ``a * b`` (rotation ``b`` then ``a``). Shapes broadcast, (..., 4)."""
    dtype = torch.promote_types(a.dtype, b.dtype)
    a, b = a.to(dtype), b.to(dtype)
    perm, sign = _mul_consts(b)
    terms = a.unsqueeze(-1) * (b.index_select(-1, perm).unflatten(-1, (4, 4)) * sign)  # (..., t, c)
    return terms[..., 0, :] + terms[..., 1, :] + terms[..., 2, :] + terms[..., 3, :]


def quat_rotate(q: Tensor, v: Tensor) -> Tensor:
    """Rotate vectors ``v`` (..., 3) by unit quaternions ``q`` (..., 4)."""
    w = q[..., :1]
    u = q[..., 1:]
    t = 2.0 * torch.linalg.cross(u, v)
    return v + w * t + torch.linalg.cross(u, t)


def quat_rotate_inv(q: Tensor, v: Tensor) -> Tensor:
    """Rotate ``v`` by the inverse of ``q``. Shapes (..., 4), (..., 3)."""
    return quat_rotate(quat_conj(q), v)


def axis_angle_to_quat(axis: Tensor, angle: Tensor) -> Tensor:
    """Quaternion from a unit ``axis`` (..., 3) and ``angle`` (...) in radians."""
    half = 0.5 * angle.unsqueeze(-1)
    return torch.cat([torch.cos(half), axis * torch.sin(half)], dim=-1)


def quat_to_axis_angle(q: Tensor) -> Tuple[Tensor, Tensor]:
    """(axis (..., 3), angle (...)) with angle in [0, pi]; axis is +x for the identity."""
    q = quat_normalize(q)
    q = torch.where(q[..., :1] < 0, -q, q)
    v = q[..., 1:]
    s = v.norm(dim=-1)
    angle = 2.0 * torch.atan2(s, q[..., 0])
    default = torch.zeros_like(v)
    default[..., 0] = 1.0
    # v / |v| is a valid unit axis for any |v| > 0 (a 1e-8 cut-off here returned +x for rotations of up
    # to 2e-8 rad about other axes); only the exact identity has no axis
    tiny = torch.finfo(v.dtype).tiny
    axis = torch.where((s > tiny).unsqueeze(-1), v / s.clamp_min(tiny).unsqueeze(-1), default)
    return axis, angle


def exp_map_to_quat(e: Tensor) -> Tensor:
    """Exponential map (axis * angle, radians) (..., 3) -> unit quaternion (..., 4).

    Stable near 0 (series for sin(a/2)/a) and exact at any angle, including |e| >= pi.
    """
    angle = e.norm(dim=-1, keepdim=True)
    small = angle < 1e-4
    safe = torch.where(small, torch.ones_like(angle), angle)
    k = torch.where(small, 0.5 - angle * angle / 48.0, torch.sin(0.5 * safe) / safe)
    return torch.cat([torch.cos(0.5 * angle), e * k], dim=-1)


def quat_to_exp_map(q: Tensor) -> Tensor:
    """Unit quaternion (..., 4) -> exponential map (..., 3) with angle in [0, pi].

    q and -q give the same result (the shorter rotation is chosen).
    """
    q = quat_normalize(q)
    q = torch.where(q[..., :1] < 0, -q, q)
    v = q[..., 1:]
    s = v.norm(dim=-1, keepdim=True)
    w = q[..., :1]
    angle = 2.0 * torch.atan2(s, w)
    small = s < 1e-6
    k = torch.where(small, 2.0 / w.clamp_min(_SMALL), angle / s.clamp_min(_SMALL))
    return v * k


def quat_angle(q: Tensor) -> Tensor:
    """Rotation angle of ``q`` in [0, pi] (radians). Shape (...)."""
    q = quat_normalize(q)
    return 2.0 * torch.atan2(q[..., 1:].norm(dim=-1), q[..., 0].abs())


def quat_diff_angle(a: Tensor, b: Tensor) -> Tensor:
    """Angle (radians, [0, pi]) of the rotation taking ``a`` to ``b``; q and -q are equal."""
    return quat_angle(quat_mul(quat_conj(a), b))


def quat_slerp(q0: Tensor, q1: Tensor, t: Tensor) -> Tensor:
    """Spherical interpolation along the shorter arc. q0, q1 (..., 4); t (...) or (..., 1) in [0, 1]."""
    if t.dim() == q0.dim() - 1:
        t = t.unsqueeze(-1)
    dot = (q0 * q1).sum(dim=-1, keepdim=True)
    q1 = torch.where(dot < 0, -q1, q1)
    dot = dot.abs().clamp(max=1.0)
    theta = torch.acos(dot)
    sin_theta = torch.sin(theta)
    near = sin_theta < 1e-5
    safe_sin = torch.where(near, torch.ones_like(sin_theta), sin_theta)
    w0 = torch.where(near, 1.0 - t, torch.sin((1.0 - t) * theta) / safe_sin)
    w1 = torch.where(near, t, torch.sin(t * theta) / safe_sin)
    return quat_normalize(w0 * q0 + w1 * q1)


def quat_to_matrix(q: Tensor) -> Tensor:
    """Unit quaternion (..., 4) -> rotation matrix (..., 3, 3)."""
    w, x, y, z = quat_normalize(q).unbind(-1)
    return torch.stack(
        [
            1 - 2 * (y * y + z * z),
            2 * (x * y - w * z),
            2 * (x * z + w * y),
            2 * (x * y + w * z),
            1 - 2 * (x * x + z * z),
            2 * (y * z - w * x),
            2 * (x * z - w * y),
            2 * (y * z + w * x),
            1 - 2 * (x * x + y * y),
        ],
        dim=-1,
    ).reshape(q.shape[:-1] + (3, 3))


def matrix_to_quat(m: Tensor) -> Tensor:
    """Rotation matrix (..., 3, 3) -> unit quaternion (..., 4) with w >= 0 (Shepperd's method)."""
    m00, m11, m22 = m[..., 0, 0], m[..., 1, 1], m[..., 2, 2]
    cands = torch.stack(
        [
            torch.stack(
                [
                    1 + m00 + m11 + m22,
                    m[..., 2, 1] - m[..., 1, 2],
                    m[..., 0, 2] - m[..., 2, 0],
                    m[..., 1, 0] - m[..., 0, 1],
                ],
                -1,
            ),
            torch.stack(
                [
                    m[..., 2, 1] - m[..., 1, 2],
                    1 + m00 - m11 - m22,
                    m[..., 0, 1] + m[..., 1, 0],
                    m[..., 0, 2] + m[..., 2, 0],
                ],
                -1,
            ),
            torch.stack(
                [
                    m[..., 0, 2] - m[..., 2, 0],
                    m[..., 0, 1] + m[..., 1, 0],
                    1 - m00 + m11 - m22,
                    m[..., 1, 2] + m[..., 2, 1],
                ],
                -1,
            ),
            torch.stack(
                [
                    m[..., 1, 0] - m[..., 0, 1],
                    m[..., 0, 2] + m[..., 2, 0],
                    m[..., 1, 2] + m[..., 2, 1],
                    1 - m00 - m11 + m22,
                ],
                -1,
            ),
        ],
        dim=-2,
    )  # (..., 4, 4): row i is 4*q*q_i for the pivot i
    diag = torch.stack(
        [1 + m00 + m11 + m22, 1 + m00 - m11 - m22, 1 - m00 + m11 - m22, 1 - m00 - m11 + m22], -1
    )
    best = diag.argmax(dim=-1, keepdim=True)
    q = torch.gather(cands, -2, best.unsqueeze(-1).expand(best.shape[:-1] + (1, 4))).squeeze(-2)
    q = quat_normalize(q)
    return torch.where(q[..., :1] < 0, -q, q)


def euler_xyz_to_quat(angles: Tensor) -> Tensor:
    """Intrinsic x-y-z angles (..., 3) -> quaternion: ``Rx(a) @ Ry(b) @ Rz(c)``.

    This is what MuJoCo computes for three hinges on one body with axes x, y, z in that order.
    """
    half = 0.5 * angles
    c, s = torch.cos(half), torch.sin(half)
    zero = torch.zeros_like(c[..., 0])
    qx = torch.stack([c[..., 0], s[..., 0], zero, zero], dim=-1)
    qy = torch.stack([c[..., 1], zero, s[..., 1], zero], dim=-1)
    qz = torch.stack([c[..., 2], zero, zero, s[..., 2]], dim=-1)
    return quat_mul(quat_mul(qx, qy), qz)


def quat_to_euler_xyz(q: Tensor) -> Tensor:
    """Quaternion (..., 4) -> intrinsic x-y-z angles (..., 3), inverse of ``euler_xyz_to_quat``.

    Middle angle in [-pi/2, pi/2]; the others in (-pi, pi]. At the singularity (|b| = pi/2) the
    rotation only fixes a + c (b = pi/2) or a - c (b = -pi/2); all of it goes into a (c = 0).

    Works on the quaternion's half angles (no rotation matrix): for q = qx(a) qy(b) qz(c),
    w + y = k+ cos((a+c)/2), x + z = k+ sin((a+c)/2), w - y = k- cos((a-c)/2), x - z = k- sin((a-c)/2)
    with k+ = cos(b/2) + sin(b/2) >= 0 and k- = cos(b/2) - sin(b/2) >= 0. Each angle pair is then an
    atan2, so the rotation rebuilt from the result is accurate to rounding everywhere, including
    near the lock (where a matrix-based extraction loses ~eps / cos(b)).
    """
    w, x, y, z = quat_normalize(q).unbind(-1)
    sp, cp = x + z, w + y
    sm, cm = x - z, w - y
    kp = torch.sqrt(sp * sp + cp * cp)
    km = torch.sqrt(sm * sm + cm * cm)
    b = 2.0 * torch.atan2(kp, km) - 0.5 * math.pi
    half_sum = torch.atan2(sp, cp)  # (a + c) / 2
    half_diff = torch.atan2(sm, cm)  # (a - c) / 2
    tiny = 4.0 * torch.finfo(q.dtype).eps
    half_diff = torch.where(km < tiny, half_sum, half_diff)  # b = +pi/2: c = 0, a = a + c
    half_sum = torch.where(kp < tiny, half_diff, half_sum)  # b = -pi/2: c = 0, a = a - c
    a = _wrap_pi(half_sum + half_diff)
    c = _wrap_pi(half_sum - half_diff)
    return torch.stack([a, b, c], dim=-1)


def _wrap_pi(x: Tensor) -> Tensor:
    """Wrap angles in (-2pi, 2pi] to (-pi, pi]."""
    two_pi = 2.0 * math.pi
    return torch.where(x > math.pi, x - two_pi, torch.where(x <= -math.pi, x + two_pi, x))


def quat_to_tan_norm(q: Tensor) -> Tensor:
    """MimicKit's 6-D rotation encoding: rotated x axis (tangent) then rotated z axis (normal). (..., 6)."""
    ref_tan = torch.zeros(q.shape[:-1] + (3,), dtype=q.dtype, device=q.device)
    ref_norm = ref_tan.clone()
    ref_tan[..., 0] = 1.0
    ref_norm[..., 2] = 1.0
    return torch.cat([quat_rotate(q, ref_tan), quat_rotate(q, ref_norm)], dim=-1)


def calc_heading(q: Tensor) -> Tensor:
    """Heading (yaw, radians): angle of the rotated x axis projected on the ground plane. (...)."""
    ref = torch.zeros(q.shape[:-1] + (3,), dtype=q.dtype, device=q.device)
    ref[..., 0] = 1.0
    d = quat_rotate(q, ref)
    return torch.atan2(d[..., 1], d[..., 0])


def heading_quat(q: Tensor) -> Tensor:
    """Rotation about +z by the heading of ``q``. (..., 4)."""
    h = calc_heading(q)
    axis = torch.zeros(q.shape[:-1] + (3,), dtype=q.dtype, device=q.device)
    axis[..., 2] = 1.0
    return axis_angle_to_quat(axis, h)


def heading_quat_inv(q: Tensor) -> Tensor:
    """Inverse of ``heading_quat``: maps world vectors into the heading-aligned frame. (..., 4)."""
    return quat_conj(heading_quat(q))


def normalize_angle(x: Tensor) -> Tensor:
    """Wrap angles to [-pi, pi)."""
    return torch.remainder(x + math.pi, 2.0 * math.pi) - math.pi


def wxyz_to_xyzw(q: Tensor) -> Tensor:
    """Reorder (w, x, y, z) -> (x, y, z, w) for engines with scalar-last quaternions (Isaac Gym)."""
    return torch.cat([q[..., 1:], q[..., :1]], dim=-1)


def xyzw_to_wxyz(q: Tensor) -> Tensor:
    """Reorder (x, y, z, w) -> (w, x, y, z)."""
    return torch.cat([q[..., 3:], q[..., :3]], dim=-1)
