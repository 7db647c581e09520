"""Resample a clip to another frame rate: positions lerped, rotations slerped (via ``MotionLib``)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from mimictools.errors import MotionFormatError
from mimictools.io_util import check_cells
from mimictools.motion.motion import LOOP_CLAMP, Motion


def resample_motion(motion: Motion, fps: float, char: Any) -> Motion:
    """``motion`` sampled at ``fps`` over the same duration: ``floor(length * fps) + 1`` frames at
    ``i / fps`` seconds. Spherical joints and the root rotation are slerped (``char`` says which
    columns are exponential maps). NaN columns stay NaN."""
    import torch

    from mimictools.math.rotations import quat_to_exp_map
    from mimictools.motion.library import MotionLib

    if not (math.isfinite(fps) and fps > 0):
        raise MotionFormatError(f"resample: fps must be a finite number > 0, got {fps}")
    if float(fps) == float(motion.fps):
        return motion
    clamp = motion.replace(loop_mode=LOOP_CLAMP)  # sample inside [0, length], no wrap offsets
    lib = MotionLib([clamp], char=char, allow_nonfinite=True, dtype=torch.float64)
    count = int(math.floor(motion.length_s * fps + 1e-6)) + 1
    # interpolation holds ~8 float64 copies of the output (times, slerp operands): a tighter ceiling
    check_cells(
        count * 8, motion.frame_width, f"resample to {fps:g} fps", "8 x frames x columns", MotionFormatError
    )
    times = torch.arange(count, dtype=torch.float64) / float(fps)
    ids = torch.zeros(count, dtype=torch.long)
    f = lib.calc_motion_frame(ids, times)
    frames = torch.cat([f.root_pos, quat_to_exp_map(f.root_rot), f.dof_pos], dim=-1).numpy()
    return motion.replace(
        fps=float(fps),
        frames=np.ascontiguousarray(frames, dtype=np.float32),
        details=motion.details + (f"resampled from {motion.fps:g} fps",),
    )
