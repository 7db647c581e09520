"""GMR (General Motion Retargeting) robot clip ``.pkl``: a pickled dict, read through the restricted
unpickler (`safe_pickle`), like every pickle here.

Keys: ``fps`` (int), ``root_pos`` (N, 3) m, ``root_rot`` (N, 4) quaternion **x, y, z, w**, ``dof_pos``
(N, num_joints) rad in the MJCF's joint order, optionally ``local_body_pos`` (N, num_bodies, 3) and
``link_body_list`` (body names, may be None). Written with the same keys (``local_body_pos`` and
``link_body_list`` as None), pickle protocol 4, atomically.
"""

from __future__ import annotations

import pickle
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

__all__ = ["GMR_KEYS", "is_gmr_dict", "motion_from_gmr", "write_gmr_pkl"]

GMR_KEYS = ("fps", "root_pos", "root_rot", "dof_pos")
VARIANT = "gmr-pkl"


def is_gmr_dict(obj: Any) -> bool:
    """True for an unpickled GMR clip (a dict with root_pos and dof_pos and no MimicKit 'frames')."""
    return isinstance(obj, dict) and "root_pos" in obj and "dof_pos" in obj and "frames" not in obj


def _array(obj: dict, key: str, source: str) -> np.ndarray:
    try:
        return np.asarray(obj[key], dtype=np.float64)
    except (TypeError, ValueError):
        raise MotionFormatError(f"{source}: GMR key {key!r} is not a numeric array") from None


def motion_from_gmr(obj: dict, source: str, char: Optional[Any] = None) -> Motion:
    """Validated Motion from an unpickled GMR dict."""
    missing = [k for k in GMR_KEYS if k not in obj]
    if missing:
        raise MotionFormatError(
            f"{source}: GMR clip lacks {', '.join(missing)} (has: {', '.join(sorted(map(str, obj)))})"
        )
    root_pos = _array(obj, "root_pos", source)
    root_rot = _array(obj, "root_rot", source)
    dof_pos = _array(obj, "dof_pos", source)
    if root_rot.ndim != 2 or root_rot.shape[-1] != 4:
        raise MotionFormatError(
            f"{source}: GMR root_rot has shape {root_rot.shape}, expected (N, 4) x, y, z, w"
        )
    root_quat = xyzw_to_wxyz(root_rot)
    check_robot_arrays(root_pos, root_quat, dof_pos, source, "x, y, z, w", char)
    details = [f"fps: {type(obj['fps']).__name__}", "quaternion x, y, z, w"]
    links = obj.get("link_body_list")
    if links is not None:
        details.append(f"{len(links)} link bodies")
    return motion_from_robot(
        root_pos, root_quat, dof_pos, obj["fps"], source, VARIANT, char=char, details=tuple(details)
    )


def write_gmr_pkl(motion: Motion, path: Union[str, Path], char: Optional[Any] = None) -> None:
    """Write ``motion`` as a GMR clip dict (float64 arrays, ``fps`` int when integral), atomically."""
    from mimictools.motion.formats.mimickit_pkl import PICKLE_PROTOCOL, atomic_write_bytes

    root_pos, root_quat, dof_pos = robot_from_motion(motion, char)
    fps = float(motion.fps)
    payload = {
        "fps": int(fps) if fps.is_integer() else fps,
        "root_pos": root_pos,
        "root_rot": wxyz_to_xyzw(root_quat),
        "dof_pos": dof_pos,
        "local_body_pos": None,
        "link_body_list": None,
    }
    atomic_write_bytes(Path(path), pickle.dumps(payload, protocol=PICKLE_PROTOCOL))
