"""Action bounds from joint ranges, MimicKit's rule."""

from __future__ import annotations

import math

import numpy as np

from mimictools.tasks.actions import action_bounds


def test_bounds_of_each_joint_kind(tiny_char):
    low, high = action_bounds(tiny_char)
    # hinge triple: 1.2 * max |limit| = 1.2 * 2.0 on all three DoFs
    np.testing.assert_allclose(low[:3], -2.4, rtol=1e-6)
    np.testing.assert_allclose(high[:3], 2.4, rtol=1e-6)
    # hinge [0, 2]: centre 1, half-width 1.4 * 1
    np.testing.assert_allclose([low[3], high[3]], [1.0 - 1.4, 1.0 + 1.4], rtol=1e-6)
    # ball joint: MimicKit's engines report [-pi, pi] per DoF -> 1.2 pi
    np.testing.assert_allclose(low[4:], -1.2 * math.pi, rtol=1e-6)
    np.testing.assert_allclose(high[4:], 1.2 * math.pi, rtol=1e-6)
    assert low.dtype == np.float32 and low.shape == (7,)


def test_zero_center_action(tiny_char):
    low, high = action_bounds(tiny_char, zero_center_action=True)
    np.testing.assert_allclose([low[3], high[3]], [-2.8, 2.8], rtol=1e-6)
