"""Unitree / LAFAN1 robot CSV: one row per frame, no header, the fps not in the file.

Columns: 0-2 base position xyz (m); 3-6 base quaternion **x, y, z, w** (scalar last); 7.. one angle (rad)
per MJCF joint in the MJCF's joint order (the G1: left leg 6, right leg 6, waist 3, left arm 7, right
arm 7). Used by Unitree's LAFAN1 retargeting set (30 fps) and experientialtech/g1-moves (60 fps).
Written the same way (``%.9g``, comma separated), atomically.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np

from mimictools.errors import MotionFormatError
from mimictools.motion.formats.robot_frames import (
    check_robot_arrays,
    motion_from_robot,
    robot_from_motion,
    wxyz_to_xyzw,
    xyzw_to_wxyz,
)
from mimictools.motion.motion import Motion

__all__ = ["missing_fps_message", "read_robot_csv", "write_robot_csv"]

VARIANT = "robot-csv"


def missing_fps_message(source: str) -> str:
    """The one-line error for a robot CSV read without a frame rate."""
    return (
        f"{source}: a robot CSV does not store its frame rate; pass --fps (30 for Unitree's LAFAN1 set, "
        "60 for g1-moves), or convert it once: mimic motion convert clip.csv --fps 30 -o clip.pkl"
    )


def read_robot_csv(path: Union[str, Path], fps: Optional[float], char: Optional[Any] = None) -> Motion:
    """Read a robot CSV. ``fps`` is required (the file has none): MotionFormatError says so when None."""
    source = str(path)
    if fps is None:
        raise MotionFormatError(missing_fps_message(source))
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise MotionFormatError(f"{source}: cannot read ({exc})") from None
    rows = [ln for ln in text.splitlines() if ln.strip()]
    if not rows:
        raise MotionFormatError(f"{source}: empty CSV (0 rows)")
    widths = {len(r.split(",")) for r in rows}
    if len(widths) != 1:
        first_bad = next(i for i, r in enumerate(rows) if len(r.split(",")) != len(rows[0].split(",")))
        raise MotionFormatError(
            f"{source}: row {first_bad} has {len(rows[first_bad].split(','))} columns, row 0 has "
            f"{len(rows[0].split(','))}"
        )
    try:
        data = np.loadtxt(io.StringIO("\n".join(rows)), delimiter=",", dtype=np.float64, ndmin=2)
    except ValueError as exc:
        raise MotionFormatError(
            f"{source}: not a numeric CSV without header ({str(exc).splitlines()[0]}); expected base xyz, "
            "quaternion xyzw, then one angle per joint"
        ) from None
    if data.shape[1] < 8:
        raise MotionFormatError(
            f"{source}: has {data.shape[1]} columns; a robot CSV has 7 root columns (xyz + quaternion xyzw) "
            "and at least one joint"
        )
    root_pos, root_quat, joint_pos = data[:, 0:3], xyzw_to_wxyz(data[:, 3:7]), data[:, 7:]
    check_robot_arrays(root_pos, root_quat, joint_pos, source, "x, y, z, w", char)
    return motion_from_robot(
        root_pos,
        root_quat,
        joint_pos,
        fps,
        source,
        VARIANT,
        char=char,
        details=(
            f"{data.shape[0]} rows x {data.shape[1]} columns",
            "quaternion x, y, z, w",
            f"fps {fps:g} (given)",
        ),
    )


def write_robot_csv(motion: Motion, path: Union[str, Path], char: Optional[Any] = None) -> None:
    """Write ``motion`` as a robot CSV (no header, quaternion xyzw), atomically. The fps is not stored."""
    from mimictools.io_util import atomic_write_text

    root_pos, root_quat, joint_pos = robot_from_motion(motion, char)
    table = np.concatenate([root_pos, wxyz_to_xyzw(root_quat), joint_pos], axis=1)
    buf = io.StringIO()
    np.savetxt(buf, table, delimiter=",", fmt="%.9g")
    try:
        atomic_write_text(path, buf.getvalue())
    except OSError as exc:
        raise MotionFormatError(f"{path}: cannot write ({exc.strerror or exc})") from None
