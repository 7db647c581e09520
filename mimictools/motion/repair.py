"""Repairs of clips that cannot be trained on as they are (``mimic motion convert --fix-nonfinite``).

MimicKit's own ``humanoid_walk.pkl`` has a NaN neck in every frame; `MotionLib` refuses such clips. The repair
works per joint (a 3-DoF joint's exponential map is replaced as a whole, never one component of it):

- frames where the joint is non-finite, between or beside finite ones, get the joint's values interpolated
  linearly in time from the nearest finite frames (held constant before the first and after the last);
- a joint that is non-finite in every frame gets 0 (its zero pose: straight, as in the character's MJCF);
- the root position cannot be invented: a clip whose root position is never finite is refused.
"""

from __future__ import annotations

from typing import Any, List, Optional, Tuple

import numpy as np

from mimictools.errors import MotionFormatError
from mimictools.motion.checks import describe_nonfinite, format_frames, joint_columns
from mimictools.motion.motion import Motion

__all__ = ["fix_nonfinite"]


def fix_nonfinite(motion: Motion, char: Optional[Any] = None) -> Tuple[Motion, List[str]]:
    """``(repaired clip, one line per repaired joint)``; the clip itself when it is all finite (no lines).

    ``char`` names the joints in the lines (without it, columns are named ``col<i>``).
    """
    frames = np.array(motion.frames, dtype=np.float64)
    if np.isfinite(frames).all():
        return motion, []
    issues = {i["joint"]: i for i in describe_nonfinite(frames, char)}
    t = np.arange(frames.shape[0], dtype=np.float64)
    lines: List[str] = []
    for entry in joint_columns(char, frames.shape[1]):
        issue = issues.get(entry["name"])
        if issue is None:
            continue
        cols = entry["columns"]
        good = np.isfinite(frames[:, cols]).all(axis=1)
        bad_rows = np.nonzero(~good)[0]
        where = f"{entry['name']} (columns {format_frames(cols)}) {'/'.join(issue['kinds'])} at frames {format_frames(bad_rows.tolist())} ({bad_rows.size} of {len(t)})"
        if not good.any():
            if entry["name"] == "root_pos":
                raise MotionFormatError(
                    f"{motion.source or '<motion>'}: the root position is non-finite in every frame: nothing to repair it from"
                )
            frames[:, cols] = 0.0
            lines.append(f"{where}: set to 0 (the joint's zero pose; no finite frame to interpolate from)")
            continue
        for c in cols:
            frames[~good, c] = np.interp(t[~good], t[good], frames[good, c])
        lines.append(f"{where}: interpolated in time from the nearest finite frames")
    return motion.replace(frames=frames.astype(np.float32)), lines
