"""`fix_nonfinite` (mimic motion convert --fix-nonfinite): interpolation, zero pose, refusal, report lines."""

from __future__ import annotations

import numpy as np
import pytest

from mimictools.errors import MotionFormatError
from mimictools.motion.motion import Motion
from mimictools.motion.repair import fix_nonfinite


def _clip(frames) -> Motion:
    return Motion(fps=30.0, loop_mode=0, frames=np.asarray(frames, dtype=np.float32), source="c.pkl")


def test_gaps_are_interpolated_per_joint_and_reported():
    f = np.zeros((5, 8), dtype=np.float32)  # no character: columns 6, 7 are their own joints
    f[:, 6] = [0.0, np.nan, np.nan, 3.0, 4.0]  # linear: 1, 2
    f[:, 7] = [np.inf, 1.0, 1.0, 1.0, 5.0]  # before the first finite frame: held at 1
    m, lines = fix_nonfinite(_clip(f))
    np.testing.assert_allclose(m.frames[:, 6], [0, 1, 2, 3, 4])
    np.testing.assert_allclose(m.frames[:, 7], [1, 1, 1, 1, 5])
    assert len(lines) == 2
    assert lines[0].startswith("col6 (columns 6) NaN at frames 1-2 (2 of 5): interpolated")
    assert "inf at frames 0 (1 of 5)" in lines[1]


def test_a_joint_never_finite_gets_its_zero_pose_and_finite_clips_pass_unchanged():
    f = np.ones((3, 7), dtype=np.float32)
    f[:, 6] = np.nan
    m, lines = fix_nonfinite(_clip(f))
    assert np.isfinite(m.frames).all() and (m.frames[:, 6] == 0).all() and (m.frames[:, :6] == 1).all()
    assert "set to 0" in lines[0]
    same, none = fix_nonfinite(m)
    assert same is m and none == []


def test_root_position_never_finite_is_refused():
    f = np.zeros((3, 7), dtype=np.float32)
    f[:, 0] = np.nan
    with pytest.raises(MotionFormatError, match="root position is non-finite in every frame"):
        fix_nonfinite(_clip(f))
