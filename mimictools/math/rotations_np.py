"""Rotation math on numpy float64 arrays, for hot paths where torch's per-call dispatch costs more
than the arithmetic (the CPU engine's per-step DoF <-> qpos conversions, file conversions).

Same conventions as `mimictools.math.rotations` (quaternions (w, x, y, z), exp map = axis * angle with
angle in [0, pi]); parity with the torch versions is tested (tests/math/test_rotations_np.py).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "EPS",
    "conjugation_matrix",
    "cross",
    "euler_xyz_to_quat",
    "exp_map_to_quat",
    "quat_conj",
    "quat_mul",
    "quat_normalize",
    "quat_rotate",
    "quat_to_euler_xyz",
    "quat_to_exp_map",
    "wrap_pi",
]

EPS = float(np.finfo(np.float64).eps)


def quat_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    aw, ax, ay, az = a[..., 0], a[..., 1], a[..., 2], a[..., 3]
    bw, bx, by, bz = b[..., 0], b[..., 1], b[..., 2], b[..., 3]
    return np.stack(
        (
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ),
        axis=-1,
    )


def quat_conj(q: np.ndarray) -> np.ndarray:
    return q * np.array([1.0, -1.0, -1.0, -1.0])


def cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a x b over the last axis (np.cross is ~10x slower on small arrays)."""
    ax, ay, az = a[..., 0], a[..., 1], a[..., 2]
    bx, by, bz = b[..., 0], b[..., 1], b[..., 2]
    return np.stack((ay * bz - az * by, az * bx - ax * bz, ax * by - ay * bx), axis=-1)


def quat_rotate(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Rotate v (..., 3) by unit q (..., 4)."""
    u = q[..., 1:]
    t = 2.0 * cross(u, v)
    return v + q[..., :1] * t + cross(u, t)


def quat_normalize(q: np.ndarray) -> np.ndarray:
    return q / np.maximum(np.linalg.norm(q, axis=-1, keepdims=True), 1e-8)


def exp_map_to_quat(e: np.ndarray) -> np.ndarray:
    angle = np.linalg.norm(e, axis=-1, keepdims=True)
    small = angle < 1e-4
    safe = np.where(small, 1.0, angle)
    k = np.where(small, 0.5 - angle * angle / 48.0, np.sin(0.5 * safe) / safe)
    return np.concatenate([np.cos(0.5 * angle), e * k], axis=-1)


def quat_to_exp_map(q: np.ndarray) -> np.ndarray:
    q = quat_normalize(q)
    q = np.where(q[..., :1] < 0, -q, q)
    v = q[..., 1:]
    s = np.linalg.norm(v, axis=-1, keepdims=True)
    w = q[..., :1]
    angle = 2.0 * np.arctan2(s, w)
    k = np.where(s < 1e-6, 2.0 / np.maximum(w, 1e-8), angle / np.maximum(s, 1e-8))
    return v * k


def wrap_pi(x: np.ndarray) -> np.ndarray:
    two_pi = 2.0 * np.pi
    return np.where(x > np.pi, x - two_pi, np.where(x <= -np.pi, x + two_pi, x))


def euler_xyz_to_quat(angles: np.ndarray) -> np.ndarray:
    """qx(a) qy(b) qz(c), the product written out."""
    half = 0.5 * angles
    c, s = np.cos(half), np.sin(half)
    ca, cb, cc = c[..., 0], c[..., 1], c[..., 2]
    sa, sb, sc = s[..., 0], s[..., 1], s[..., 2]
    return np.stack(
        (
            ca * cb * cc - sa * sb * sc,
            sa * cb * cc + ca * sb * sc,
            ca * sb * cc - sa * cb * sc,
            ca * cb * sc + sa * sb * cc,
        ),
        axis=-1,
    )


def conjugation_matrix(q: np.ndarray) -> np.ndarray:
    """M (..., 4, 4) with M @ x = q * x * conj(q) for quaternions x (conjugation is linear in x)."""
    w, x, y, z = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    left = np.stack(
        [
            np.stack([w, -x, -y, -z], -1),
            np.stack([x, w, -z, y], -1),
            np.stack([y, z, w, -x], -1),
            np.stack([z, -y, x, w], -1),
        ],
        axis=-2,
    )  # q * x
    right_conj = np.stack(
        [
            np.stack([w, x, y, z], -1),
            np.stack([-x, w, -z, y], -1),
            np.stack([-y, z, w, -x], -1),
            np.stack([-z, -y, x, w], -1),
        ],
        axis=-2,
    )  # x * conj(q)
    return left @ right_conj


def quat_to_euler_xyz(q: np.ndarray) -> np.ndarray:
    q = quat_normalize(q)
    w, x, y, z = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    sp, cp, sm, cm = x + z, w + y, x - z, w - y
    kp = np.sqrt(sp * sp + cp * cp)
    km = np.sqrt(sm * sm + cm * cm)
    b = 2.0 * np.arctan2(kp, km) - 0.5 * np.pi
    half_sum = np.arctan2(sp, cp)
    half_diff = np.arctan2(sm, cm)
    tiny = 4.0 * EPS
    half_diff = np.where(km < tiny, half_sum, half_diff)
    half_sum = np.where(kp < tiny, half_diff, half_sum)
    return np.stack([wrap_pi(half_sum + half_diff), b, wrap_pi(half_sum - half_diff)], axis=-1)
