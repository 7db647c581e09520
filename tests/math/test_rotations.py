"""Properties of mimictools.math.rotations: round trips, group axioms, near 0 and near pi.

Quaternions are compared with ``assert_same_rotation`` (q and -q are the same rotation), never
elementwise. Tolerances: float64 throughout; 1e-9 leaves room for the ~1e-15 rounding of each op
compounded over a few ops, and for the ill-conditioning of exp maps within 1e-6 of pi (atan2 keeps it
small, but the axis of a rotation by ~pi is only determined to ~eps / sin(angle / 2)).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from mimictools.math import rotations as R

F64 = torch.float64
TOL = 1e-9


def assert_same_rotation(q1: torch.Tensor, q2: torch.Tensor, tol: float = TOL) -> None:
    """q1 and q2 (..., 4) represent the same rotations: |<q1, q2>| = 1, i.e. q2 = +-q1."""
    q1 = q1 / q1.norm(dim=-1, keepdim=True)
    q2 = q2 / q2.norm(dim=-1, keepdim=True)
    # chord distance to the nearer of +-q2: |q1 - q2| = 2 sin(phi / 2) with phi the 4-D angle between
    # them, and the rotation angle is 2 phi (acos of the dot product would lose half the digits near 1)
    chord = torch.minimum((q1 - q2).norm(dim=-1), (q1 + q2).norm(dim=-1))
    angle = 4.0 * torch.asin((0.5 * chord).clamp(max=1.0))
    assert float(angle.max()) < tol, f"rotations differ by up to {float(angle.max())} rad"


def test_assert_same_rotation_helper_knows_sign_and_detects_differences():
    q = R.exp_map_to_quat(torch.tensor([[0.3, -0.2, 0.5]], dtype=F64))
    assert_same_rotation(q, -q)
    with pytest.raises(AssertionError):
        assert_same_rotation(q, R.exp_map_to_quat(torch.tensor([[0.3, -0.2, 0.5 + 1e-6]], dtype=F64)))


# ---- strategies ---------------------------------------------------------------------------------------------

finite = st.floats(-1.0, 1.0, allow_nan=False, allow_infinity=False)
vec3 = arrays(np.float64, (3,), elements=finite)


@st.composite
def unit_axes(draw):
    v = draw(arrays(np.float64, (3,), elements=st.floats(-1.0, 1.0)))
    n = np.linalg.norm(v)
    if n < 1e-3:
        v, n = np.array([0.0, 0.0, 1.0]), 1.0
    return v / n


@st.composite
def angles(draw):
    """Angles in [0, pi], biased to the interesting ends: ~0, tiny, ~pi and exactly pi."""
    kind = draw(st.sampled_from(["any", "zero", "tiny", "near_pi", "pi"]))
    if kind == "zero":
        return 0.0
    if kind == "tiny":
        return draw(st.floats(1e-12, 1e-4))
    if kind == "near_pi":
        return math.pi - draw(st.floats(0.0, 1e-6))
    if kind == "pi":
        return math.pi
    return draw(st.floats(0.0, math.pi))


@st.composite
def exp_maps(draw):
    return draw(unit_axes()) * draw(angles())


@st.composite
def quats(draw):
    return R.exp_map_to_quat(torch.tensor(draw(exp_maps()), dtype=F64))


def t(x) -> torch.Tensor:
    return torch.as_tensor(np.asarray(x), dtype=F64)


# ---- exp map / axis-angle -------------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(exp_maps())
def test_exp_map_round_trip(e):
    q = R.exp_map_to_quat(t(e))
    assert abs(float(q.norm()) - 1.0) < 1e-12
    e2 = R.quat_to_exp_map(q)
    assert_same_rotation(R.exp_map_to_quat(e2), q)
    angle = float(np.linalg.norm(e))
    if angle < math.pi - 1e-6:  # away from pi the exp map itself is unique
        assert torch.allclose(e2, t(e), atol=1e-9)


@settings(max_examples=200, deadline=None)
@given(quats())
def test_quat_to_exp_map_ignores_sign_and_angle_in_0_pi(q):
    e1, e2 = R.quat_to_exp_map(q), R.quat_to_exp_map(-q)
    assert float(e1.norm()) <= math.pi + 1e-12
    assert_same_rotation(R.exp_map_to_quat(e1), R.exp_map_to_quat(e2))


def test_exp_map_beyond_pi_is_the_same_rotation_as_its_wrap():
    axis = t([0.0, 0.6, 0.8])
    for angle in (math.pi + 0.3, 2 * math.pi - 1e-3, 3.5 * math.pi):
        q = R.exp_map_to_quat(axis * angle)
        wrapped = math.remainder(angle, 2 * math.pi)
        assert_same_rotation(q, R.exp_map_to_quat(axis * wrapped))


def test_exp_map_series_branch_is_continuous():
    # the small-angle series (|e| < 1e-4) and the exact formula agree at the switch
    axis = t([1.0, 2.0, -2.0]) / 3.0
    below = R.exp_map_to_quat(axis * (1e-4 * (1 - 1e-9)))
    above = R.exp_map_to_quat(axis * (1e-4 * (1 + 1e-9)))
    assert torch.allclose(below, above, atol=1e-12)


@settings(max_examples=200, deadline=None)
@given(unit_axes(), angles())
def test_axis_angle_round_trip(axis, angle):
    q = R.axis_angle_to_quat(t(axis), t(angle))
    a2, ang2 = R.quat_to_axis_angle(q)
    assert_same_rotation(R.axis_angle_to_quat(a2, ang2), q)
    assert 0.0 <= float(ang2) <= math.pi + 1e-12
    assert abs(float(R.quat_angle(q)) - min(angle, 2 * math.pi - angle)) < 1e-7


# ---- group axioms ------------------------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(quats(), quats(), quats())
def test_quat_mul_is_associative(a, b, c):
    assert_same_rotation(R.quat_mul(R.quat_mul(a, b), c), R.quat_mul(a, R.quat_mul(b, c)))


@settings(max_examples=200, deadline=None)
@given(quats())
def test_identity_and_inverse(q):
    ident = R.quat_identity(dtype=F64)
    assert_same_rotation(R.quat_mul(q, ident), q)
    assert_same_rotation(R.quat_mul(ident, q), q)
    assert_same_rotation(R.quat_mul(q, R.quat_conj(q)), ident)
    assert_same_rotation(R.quat_mul(R.quat_conj(q), q), ident)


@settings(max_examples=200, deadline=None)
@given(quats(), quats(), vec3)
def test_rotation_composes_like_matrices(a, b, v):
    v = t(v)
    lhs = R.quat_rotate(R.quat_mul(a, b), v)
    rhs = R.quat_rotate(a, R.quat_rotate(b, v))
    assert torch.allclose(lhs, rhs, atol=1e-12)
    assert torch.allclose(
        R.quat_to_matrix(R.quat_mul(a, b)), R.quat_to_matrix(a) @ R.quat_to_matrix(b), atol=1e-12
    )
    assert torch.allclose(R.quat_rotate_inv(a, R.quat_rotate(a, v)), v, atol=1e-12)
    assert abs(float(R.quat_rotate(a, v).norm() - v.norm())) < 1e-12


def test_quat_mul_order_applies_b_first():
    qx = R.axis_angle_to_quat(t([1.0, 0.0, 0.0]), t(math.pi / 2))
    qz = R.axis_angle_to_quat(t([0.0, 0.0, 1.0]), t(math.pi / 2))
    # z first maps x -> y, then x-rotation maps y -> z
    assert torch.allclose(
        R.quat_rotate(R.quat_mul(qx, qz), t([1.0, 0.0, 0.0])), t([0.0, 0.0, 1.0]), atol=1e-15
    )


# ---- matrices and Euler angles -------------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(quats())
def test_matrix_round_trip_and_orthonormal(q):
    m = R.quat_to_matrix(q)
    assert torch.allclose(m @ m.transpose(-1, -2), torch.eye(3, dtype=F64), atol=1e-12)
    assert abs(float(torch.linalg.det(m)) - 1.0) < 1e-12
    q2 = R.matrix_to_quat(m)
    assert float(q2[0]) >= 0.0
    assert_same_rotation(q2, q)


@st.composite
def euler_triples(draw):
    """Intrinsic xyz angles; the middle one sometimes at or within 1e-9 of the +-pi/2 lock."""
    a = draw(st.floats(-math.pi, math.pi))
    c = draw(st.floats(-math.pi, math.pi))
    kind = draw(st.sampled_from(["any", "lock", "near_lock", "zero"]))
    sign = draw(st.sampled_from([-1.0, 1.0]))
    if kind == "lock":
        b = sign * math.pi / 2
    elif kind == "near_lock":
        b = sign * (math.pi / 2 - draw(st.floats(0.0, 1e-6)))
    elif kind == "zero":
        b = 0.0
    else:
        b = draw(st.floats(-math.pi / 2, math.pi / 2))
    return np.array([a, b, c])


@settings(max_examples=400, deadline=None)
@given(euler_triples())
def test_euler_round_trip_including_gimbal_lock(e):
    q = R.euler_xyz_to_quat(t(e))
    e2 = R.quat_to_euler_xyz(q)
    assert_same_rotation(R.euler_xyz_to_quat(e2), q, tol=1e-12)
    assert -math.pi / 2 - 1e-12 <= float(e2[1]) <= math.pi / 2 + 1e-12
    assert all(-math.pi - 1e-12 <= float(x) <= math.pi + 1e-12 for x in (e2[0], e2[2]))
    if abs(abs(e[1]) - math.pi / 2) > 1e-3:  # away from the lock the angles are unique
        d = torch.remainder(e2 - t(e) + math.pi, 2 * math.pi) - math.pi
        assert float(d.abs().max()) < 1e-9


def test_euler_matches_matrix_product():
    e = t([0.3, -0.7, 1.9])
    rx = R.quat_to_matrix(R.axis_angle_to_quat(t([1.0, 0.0, 0.0]), e[0]))
    ry = R.quat_to_matrix(R.axis_angle_to_quat(t([0.0, 1.0, 0.0]), e[1]))
    rz = R.quat_to_matrix(R.axis_angle_to_quat(t([0.0, 0.0, 1.0]), e[2]))
    assert torch.allclose(R.quat_to_matrix(R.euler_xyz_to_quat(e)), rx @ ry @ rz, atol=1e-14)


def test_euler_lock_puts_everything_in_the_first_angle():
    for b in (math.pi / 2, -math.pi / 2):
        e = R.quat_to_euler_xyz(R.euler_xyz_to_quat(t([0.3, b, 0.2])))
        assert abs(float(e[2])) < 1e-12
        assert abs(float(e[0]) - (0.5 if b > 0 else 0.1)) < 1e-9


def test_euler_float32_near_lock_is_accurate():
    # regression: the matrix-based extraction lost ~1e-3 rad (float32) near the lock
    e = torch.tensor(
        [[0.4, math.pi / 2 - 1e-3, -1.1], [2.0, -(math.pi / 2 - 2e-4), 0.7]], dtype=torch.float32
    )
    q = R.euler_xyz_to_quat(e)
    back = R.euler_xyz_to_quat(R.quat_to_euler_xyz(q))
    assert float(R.quat_diff_angle(q.double(), back.double()).max()) < 2e-6


# ---- slerp, angles, heading, misc ---------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(quats(), quats(), st.floats(0.0, 1.0))
def test_slerp_endpoints_and_constant_speed(a, b, s):
    assert_same_rotation(R.quat_slerp(a, b, t(0.0)), a)
    assert_same_rotation(R.quat_slerp(a, b, t(1.0)), b)
    total = float(R.quat_diff_angle(a, b))
    mid = R.quat_slerp(a, b, t(s))
    assert abs(float(R.quat_diff_angle(a, mid)) - s * total) < 1e-6
    assert_same_rotation(R.quat_slerp(a, -b, t(s)), mid, tol=1e-6)  # shorter arc regardless of sign


@settings(max_examples=200, deadline=None)
@given(quats(), quats())
def test_diff_angle_symmetric_and_sign_blind(a, b):
    d = float(R.quat_diff_angle(a, b))
    assert abs(d - float(R.quat_diff_angle(b, a))) < 1e-9
    assert abs(d - float(R.quat_diff_angle(a, -b))) < 1e-12
    assert 0.0 <= d <= math.pi + 1e-12


@settings(max_examples=200, deadline=None)
@given(st.floats(-math.pi, math.pi), quats())
def test_heading_of_yaw_and_heading_removal(yaw, q):
    qz = R.axis_angle_to_quat(t([0.0, 0.0, 1.0]), t(yaw))
    assert abs(float(R.normalize_angle(R.calc_heading(qz) - yaw))) < 1e-9
    local = R.quat_mul(R.heading_quat_inv(q), q)
    if float(R.quat_to_matrix(q)[..., :2, 0].norm()) > 1e-6:  # heading defined
        assert abs(float(R.calc_heading(local))) < 1e-9
    assert_same_rotation(R.quat_mul(R.heading_quat(q), local), q)


def test_tan_norm_and_layout_conversions():
    q = R.exp_map_to_quat(t([[0.2, -1.0, 0.4]]))
    tn = R.quat_to_tan_norm(q)
    m = R.quat_to_matrix(q)
    assert torch.allclose(tn, torch.cat([m[..., :, 0], m[..., :, 2]], dim=-1), atol=1e-14)
    assert torch.equal(R.xyzw_to_wxyz(R.wxyz_to_xyzw(q)), q)
    assert torch.equal(R.wxyz_to_xyzw(q)[..., 3], q[..., 0])


def test_normalize_angle_range():
    x = t(np.linspace(-20, 20, 1001))
    y = R.normalize_angle(x)
    assert float(y.min()) >= -math.pi and float(y.max()) < math.pi
    assert torch.allclose(torch.sin(y), torch.sin(x), atol=1e-12) and torch.allclose(
        torch.cos(y), torch.cos(x), atol=1e-12
    )


def test_batched_leading_dims_and_float32():
    e = torch.randn(2, 5, 3, generator=torch.Generator().manual_seed(0))
    q = R.exp_map_to_quat(e)
    assert q.shape == (2, 5, 4) and q.dtype == torch.float32
    assert R.quat_to_euler_xyz(q).shape == (2, 5, 3)
    assert R.quat_to_matrix(q).shape == (2, 5, 3, 3)
    assert R.quat_slerp(q, q.flip(0), torch.full((2, 5), 0.5)).shape == (2, 5, 4)


def _textbook_quat_mul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The Hamilton product written out per component (quat_mul's form before issue 18's op count work)."""
    aw, ax, ay, az = a.unbind(-1)
    bw, bx, by, bz = b.unbind(-1)
    return torch.stack(
        [
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ],
        dim=-1,
    )


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_quat_mul_is_bitwise_the_textbook_product(dtype):
    # quat_mul sums sign-folded terms in the textbook order: the same IEEE operations, so equal bit for bit
    # (not just close), broadcasting, non-unit and non-finite inputs included
    g = torch.Generator().manual_seed(3)
    a = torch.randn(257, 5, 4, generator=g, dtype=dtype) * 3.0
    b = torch.randn(257, 1, 4, generator=g, dtype=dtype)
    a[0, 0] = torch.tensor([float("nan"), 0.0, -0.0, float("inf")], dtype=dtype)
    b[1, 0] = torch.tensor([-0.0, float("-inf"), 1.0, 0.0], dtype=dtype)
    for x, y in ((a, b), (b, a), (a[:, 0], b[:, 0]), (a[:, :1], b[0, 0])):
        got, want = R.quat_mul(x, y), _textbook_quat_mul(x, y)
        assert got.shape == want.shape and got.dtype == want.dtype
        assert torch.equal(got.isnan(), want.isnan())
        fin = ~want.isnan()
        assert torch.equal(got[fin], want[fin])
        assert torch.equal(torch.signbit(got[fin]), torch.signbit(want[fin]))
