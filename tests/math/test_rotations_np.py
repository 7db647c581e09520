"""numpy rotations (hot-path copies) agree with the torch reference implementations."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mimictools.math import rotations as rt
from mimictools.math import rotations_np as rn


@pytest.fixture
def rng():
    return np.random.default_rng(7)


def _quats(rng, n=500):
    q = rng.normal(size=(n, 4))
    q[:10] = [1.0, 1e-9, 0.0, 0.0]  # near identity
    q[10:20] = [1e-9, 0.0, 0.0, 1.0]  # near pi
    return q / np.linalg.norm(q, axis=-1, keepdims=True)


def test_products_and_rotation_match_torch(rng):
    a, b = _quats(rng), _quats(rng)[::-1].copy()
    v = rng.normal(size=(500, 3))
    np.testing.assert_allclose(
        rn.quat_mul(a, b), rt.quat_mul(torch.from_numpy(a), torch.from_numpy(b)).numpy(), atol=1e-12
    )
    np.testing.assert_allclose(
        rn.quat_rotate(a, v), rt.quat_rotate(torch.from_numpy(a), torch.from_numpy(v)).numpy(), atol=1e-12
    )
    np.testing.assert_allclose(rn.cross(v, v[::-1]), np.cross(v, v[::-1]), atol=1e-12)


def test_exp_map_round_trip_and_parity(rng):
    q = _quats(rng)
    e = rn.quat_to_exp_map(q)
    np.testing.assert_allclose(e, rt.quat_to_exp_map(torch.from_numpy(q)).numpy(), atol=1e-9)
    back = rn.exp_map_to_quat(e)
    # q and -q are the same rotation
    assert np.all(np.abs(np.abs(np.sum(back * q, axis=-1)) - 1.0) < 1e-9)


def test_euler_round_trip(rng):
    ang = rng.uniform(-1, 1, size=(500, 3)) * np.array([3.0, 1.5, 3.0])
    np.testing.assert_allclose(rn.quat_to_euler_xyz(rn.euler_xyz_to_quat(ang)), ang, atol=1e-9)
    np.testing.assert_allclose(
        rn.euler_xyz_to_quat(ang), rt.euler_xyz_to_quat(torch.from_numpy(ang)).numpy(), atol=1e-12
    )


def test_conjugation_matrix_is_q_x_qinv(rng):
    q, x = _quats(rng, 50), _quats(rng, 50)
    lhs = (rn.conjugation_matrix(q) @ x[..., None])[..., 0]
    np.testing.assert_allclose(lhs, rn.quat_mul(rn.quat_mul(q, x), rn.quat_conj(q)), atol=1e-12)
