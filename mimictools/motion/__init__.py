"""Motion clips: file formats, the ``Motion`` record and ``MotionLib`` (batched torch sampling).

``Motion``, ``load_motion``, ``save_motion`` and ``load_motion_set`` need only numpy; ``MotionLib`` and
``MotionFrame`` (torch) are imported on first use.
"""

from __future__ import annotations

from typing import Any

from mimictools.motion.io import load_motion, load_motion_set, save_motion
from mimictools.motion.motion import LOOP_CLAMP, LOOP_WRAP, Motion, MotionNote

__all__ = [
    "LOOP_CLAMP",
    "LOOP_WRAP",
    "Motion",
    "MotionFrame",
    "MotionLib",
    "MotionNote",
    "load_motion",
    "load_motion_set",
    "save_motion",
]


def __getattr__(name: str) -> Any:
    if name in ("MotionLib", "MotionFrame"):
        from mimictools.motion import library

        return getattr(library, name)
    raise AttributeError(f"module 'mimictools.motion' has no attribute {name!r}")
