"""DeepMimic ``humanoid3d`` motion ``.txt`` (JSON) -> MimicKit humanoid frames.

A DeepMimic row has 44 numbers (Y up, quaternions w,x,y,z)::

    [dt, root pos(3), root quat(4), chest(4), neck(4), right_hip(4), right_knee(1), right_ankle(4),
     right_shoulder(4), right_elbow(1), left_hip(4), left_knee(1), left_ankle(4), left_shoulder(4),
     left_elbow(1)]

Mapping to MimicKit's ``humanoid.xml`` (Z up; 34 columns), confirmed numerically against MimicKit's own
converted clips (spinkick, run, dance_a, dance_b, getup_faceup, zombie_walk agree to < 1e-4):

- root position ``(x, y, z)_MimicKit = (x, -z, y)_DeepMimic``;
- every rotation is conjugated by that axis change, ``q' = a q a^-1`` with ``a`` = +90 deg about x;
- the shoulders then get MimicKit's T-pose offset, post-multiplied: ``q' a_x(+90 deg)`` on the right,
  ``q' a_x(-90 deg)`` on the left;
- knees and ``left_elbow`` are negated, ``right_elbow`` is kept;
- spherical joints become exponential maps (angle in [0, pi]).

Non-unit quaternions are normalised first (DeepMimic's files have some, up to |norm - 1| = 0.42);
each joint's worst case is reported with ``warnings.warn`` and in ``Motion.notes``.
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from typing import Any, List, Optional, Tuple, Union

import numpy as np

from mimictools.errors import MotionFormatError, NotSupportedError
from mimictools.io_util import check_cells, read_input_text, short_repr
from mimictools.math.rotations_np import quat_mul, quat_to_exp_map
from mimictools.motion.motion import LOOP_CLAMP, LOOP_WRAP, Motion, MotionNote, validate_motion_fields

DEEPMIMIC_ROW_WIDTH = 44
MIMICKIT_HUMANOID_WIDTH = 34

# DeepMimic row: joint name -> (first column, 4 = quaternion / 1 = revolute angle).
DEEPMIMIC_JOINTS = (
    ("root", 4, 4),
    ("chest", 8, 4),
    ("neck", 12, 4),
    ("right_hip", 16, 4),
    ("right_knee", 20, 1),
    ("right_ankle", 21, 4),
    ("right_shoulder", 25, 4),
    ("right_elbow", 29, 1),
    ("left_hip", 30, 4),
    ("left_knee", 34, 1),
    ("left_ankle", 35, 4),
    ("left_shoulder", 39, 4),
    ("left_elbow", 43, 1),
)

# MimicKit column <- DeepMimic joint. Spherical: post-rotation about x in degrees (0 = none).
# Revolute: sign applied to the angle.
_SPHERICAL_MAP = (
    (3, "root", 0.0),
    (6, "chest", 0.0),
    (9, "neck", 0.0),
    (12, "right_shoulder", 90.0),
    (16, "left_shoulder", -90.0),
    (20, "right_hip", 0.0),
    (24, "right_ankle", 0.0),
    (27, "left_hip", 0.0),
    (31, "left_ankle", 0.0),
)
_REVOLUTE_MAP = (
    (15, "right_elbow", 1.0),
    (19, "left_elbow", -1.0),
    (23, "right_knee", -1.0),
    (30, "left_knee", -1.0),
)
_LOOP_VALUES = {"wrap": LOOP_WRAP, "none": LOOP_CLAMP, "clamp": LOOP_CLAMP}

NON_UNIT_TOL = 1e-2
"""|norm - 1| above which a quaternion is reported as non-unit (it is always normalised)."""


def _x_rot_quat(deg: float) -> np.ndarray:
    h = math.radians(deg) * 0.5
    return np.array([math.cos(h), math.sin(h), 0.0, 0.0])


_AXIS_CHANGE = _x_rot_quat(90.0)  # Y-up -> Z-up: (x, y, z) -> (x, -z, y)
_AXIS_CHANGE_INV = _AXIS_CHANGE * np.array([1.0, -1.0, -1.0, -1.0])


def deepmimic_rows_to_frames(rows: np.ndarray) -> np.ndarray:
    """DeepMimic rows (N, 44) with *unit* quaternions -> MimicKit humanoid frames (N, 34), float64."""
    n = rows.shape[0]
    out = np.zeros((n, MIMICKIT_HUMANOID_WIDTH), dtype=np.float64)
    out[:, 0] = rows[:, 1]
    out[:, 1] = -rows[:, 3]
    out[:, 2] = rows[:, 2]
    cols = {name: (c, w) for name, c, w in DEEPMIMIC_JOINTS}
    for mk_col, dm_name, post_deg in _SPHERICAL_MAP:
        c, _ = cols[dm_name]
        q = quat_mul(quat_mul(_AXIS_CHANGE, rows[:, c : c + 4]), _AXIS_CHANGE_INV)
        if post_deg:
            q = quat_mul(q, _x_rot_quat(post_deg))
        out[:, mk_col : mk_col + 3] = quat_to_exp_map(q)
    for mk_col, dm_name, sign in _REVOLUTE_MAP:
        c, _ = cols[dm_name]
        out[:, mk_col] = sign * rows[:, c]
    return out


def _fps_from_dt(rows: np.ndarray, source: str) -> Tuple[float, List[MotionNote], float]:
    """(fps, notes, median dt in s) from the rows' dt column."""
    notes = []  # type: List[MotionNote]
    if rows.shape[0] < 2:
        return 30.0, [MotionNote("single_frame", f"{source}: one frame only; fps set to 30")], 1.0 / 30.0
    dts = rows[:-1, 0]  # the last row's dt is 0 (or, in dance_b, a repeat of the step): not a step
    bad = np.nonzero(~np.isfinite(dts) | (dts <= 0))[0]
    if bad.size:
        raise MotionFormatError(
            f"{source}: frame {int(bad[0])} has dt = {float(dts[bad[0]])!r}; every row but the last needs dt > 0 (seconds to the next frame)"
        )
    dt = float(np.median(dts))
    fps = 1.0 / dt
    if abs(fps - round(fps)) < 0.05:
        fps = float(round(fps))  # 0.016666 -> 60.002 -> 60, as MimicKit's own conversions store it
    irregular = np.nonzero(np.abs(dts - dt) > 0.01 * dt)[0]
    if irregular.size:
        frames = ", ".join(f"{int(i)} ({dts[i]:.6f} s)" for i in irregular[:5])
        more = f" and {irregular.size - 5} more" if irregular.size > 5 else ""
        notes.append(
            MotionNote(
                "irregular_dt",
                f"{source}: dt differs from the median {dt:.6f} s at frame {frames}{more}; "
                "frames are taken as evenly spaced at the median rate",
            )
        )
    return fps, notes, dt


def read_deepmimic_txt(path: Union[str, Path], char: Optional[Any] = None, warn: bool = True) -> Motion:
    """Read a DeepMimic ``humanoid3d`` ``.txt`` and convert it to a MimicKit humanoid ``Motion``.

    ``char``: optional ``Character``; it must be MimicKit's humanoid layout (34 columns).
    Non-unit quaternions are normalised; with ``warn`` each joint's worst one is also
    ``warnings.warn``-ed. Raises ``MotionFormatError`` for malformed files.
    """
    source = str(path)
    if char is not None and char.frame_width != MIMICKIT_HUMANOID_WIDTH:
        raise NotSupportedError(
            f"{source}: DeepMimic humanoid3d clips convert to MimicKit's humanoid ({MIMICKIT_HUMANOID_WIDTH} "
            f"columns); character {Path(char.source).name} has {char.frame_width}"
        )
    text = read_input_text(path, MotionFormatError, what="text (a DeepMimic motion is JSON)")
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        what = "truncated" if exc.pos >= len(text.rstrip()) else "invalid"
        raise MotionFormatError(
            f"{source}: {what} JSON at line {exc.lineno} column {exc.colno} ({exc.msg})"
        ) from None
    except RecursionError:
        raise MotionFormatError(
            f"{source}: JSON nested too deeply (a DeepMimic clip is 3 levels deep)"
        ) from None
    except ValueError as exc:  # e.g. an integer literal longer than Python's 4300-digit limit
        raise MotionFormatError(f"{source}: invalid JSON ({short_repr(str(exc), 80)})") from None
    return deepmimic_doc_to_motion(doc, source, warn=warn)


def deepmimic_doc_to_motion(doc: Any, source: str, warn: bool = True) -> Motion:
    """The parsed JSON of a DeepMimic clip -> ``Motion`` (see ``read_deepmimic_txt``)."""
    if not isinstance(doc, dict):
        raise MotionFormatError(f"{source}: a DeepMimic motion is a JSON object with 'Loop' and 'Frames'")
    if "Frames" not in doc:
        raise MotionFormatError(
            f"{source}: missing key 'Frames' (has: {short_repr(sorted(doc)[:8], 80) if doc else 'nothing'})"
        )
    loop_raw = doc.get("Loop", "wrap")
    loop = _LOOP_VALUES.get(loop_raw.lower()) if isinstance(loop_raw, str) else None
    if loop is None:
        raise MotionFormatError(
            f"{source}: Loop is {short_repr(loop_raw)}; valid values are 'wrap' and 'none'"
        )
    raw_rows = doc["Frames"]
    if not isinstance(raw_rows, list) or len(raw_rows) == 0:
        raise MotionFormatError(f"{source}: empty clip ('Frames' has no rows)")
    for i, row in enumerate(raw_rows):
        if not isinstance(row, list) or len(row) != DEEPMIMIC_ROW_WIDTH:
            n = len(row) if isinstance(row, list) else type(row).__name__
            raise MotionFormatError(
                f"{source}: frame {i} has {n} numbers; a DeepMimic humanoid3d row has {DEEPMIMIC_ROW_WIDTH} "
                "(dt, root pos 3, root quat 4, 8 joint quats, 4 revolute angles)"
            )
    check_cells(len(raw_rows), DEEPMIMIC_ROW_WIDTH, source, error=MotionFormatError)
    for i, row in enumerate(raw_rows):
        if not all(type(v) in (int, float) for v in row):  # JSON numbers only (no bool, list, str, null)
            raise MotionFormatError(f"{source}: frame {i} holds values that are not numbers")
    try:
        rows = np.array(raw_rows, dtype=np.float64)
    except OverflowError:
        raise MotionFormatError(f"{source}: 'Frames' holds an integer too large for a float") from None

    notes = []  # type: List[MotionNote]
    fps, dt_notes, dt_median = _fps_from_dt(rows, source)
    notes.extend(dt_notes)
    rows = rows.copy()
    worst = {}  # type: Dict[str, Tuple[float, int, float]]
    for name, c, width in DEEPMIMIC_JOINTS:
        if width != 4:
            continue
        q = rows[:, c : c + 4]
        norm = np.linalg.norm(q, axis=-1)
        finite = np.isfinite(norm)
        zero = np.nonzero(finite & (norm < 1e-8))[0]
        if zero.size:
            raise MotionFormatError(f"{source}: {name} quaternion is zero at frame {int(zero[0])}")
        err = np.where(finite, np.abs(norm - 1.0), 0.0)
        k = int(np.argmax(err))
        if err[k] > NON_UNIT_TOL:
            worst[name] = (float(err[k]), k, float(norm[k]))
        rows[:, c : c + 4] = q / np.where(finite, norm, 1.0)[:, None]
    for name, (err, frame, norm) in worst.items():
        msg = (
            f"{source}: {name} quaternion has norm {norm:.4f} at frame {frame} "
            f"(worst |norm - 1| = {err:.4f} for this joint); normalised"
        )
        notes.append(MotionNote("non_unit_quaternion", msg))
        if warn:
            warnings.warn(msg, stacklevel=3)
    for name, c, width in DEEPMIMIC_JOINTS:
        if width != 4 or rows.shape[0] < 2:
            continue
        dots = np.sum(rows[1:, c : c + 4] * rows[:-1, c : c + 4], axis=-1)
        flipped = np.nonzero(dots < 0)[0]
        if flipped.size:
            from mimictools.motion.checks import format_frames

            notes.append(
                MotionNote(
                    "quat_sign_flip",
                    f"{name}: quaternion sign flips (q -> -q, the same rotation) between frames "
                    f"{format_frames(flipped.tolist())} -> next; harmless after conversion to exp maps",
                )
            )
    frames = deepmimic_rows_to_frames(rows)
    fps_f, loop_mode, frames32 = validate_motion_fields(fps, loop, frames, source)
    return Motion(
        fps=fps_f,
        loop_mode=loop_mode,
        frames=frames32,
        source=source,
        variant="deepmimic-txt",
        details=(f"dt median {dt_median:.6f} s", f"Loop: {loop_raw}"),
        notes=tuple(notes),
    )
