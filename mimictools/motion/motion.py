"""The in-memory motion clip: ``Motion`` (frames + fps + loop mode), independent of any file format.

A frame is MimicKit's layout: ``[root_pos(3) m, root_rot exp map(3) rad, joint DoFs(num_dofs)]`` with
the DoFs in the character's depth-first joint order (3-DoF joints as exponential maps, 1-DoF joints
as angles in radians). Clip length is ``(num_frames - 1) / fps`` seconds, as MimicKit computes it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Tuple

import numpy as np

LOOP_CLAMP = 0
"""loop_mode 0: time is clamped to [0, length] (MimicKit ``LoopMode.CLAMP``)."""
LOOP_WRAP = 1
"""loop_mode 1: time wraps modulo length and the root keeps progressing (MimicKit ``LoopMode.WRAP``)."""
LOOP_NAMES = {LOOP_CLAMP: "clamp", LOOP_WRAP: "wrap"}
"""loop_mode value -> the name used on the command line and in reports."""
MAX_FPS = 10000.0
"""Highest frame rate accepted (Hz), in files and for ``mimic motion convert --fps``."""


@dataclass(frozen=True)
class MotionNote:
    """Something a reader noticed and fixed or left alone (for ``mimic motion inspect``)."""

    kind: str
    """Machine-readable kind, e.g. ``non_unit_quaternion``, ``irregular_dt``."""
    message: str
    """One line for people, naming joint/frame where it applies."""


@dataclass(frozen=True, eq=False)
class Motion:
    """One motion clip. Immutable; ``frames`` is float32 with Shape (num_frames, frame_width)."""

    fps: float
    """Frames per second (> 0)."""
    loop_mode: int
    """0 = clamp, 1 = wrap (see ``LOOP_CLAMP`` / ``LOOP_WRAP``)."""
    frames: np.ndarray
    """float32, Shape (num_frames, 6 + num_dofs)."""
    source: str = ""
    """Path the clip was read from ('' if built in memory)."""
    variant: str = ""
    """How the file stored it: ``mimickit-dict-list`` (current MimicKit release), ``mimickit-dict-ndarray``,
    ``mimickit-legacy-object`` (pickled ``anim.motion.Motion``), ``deepmimic-txt``, or '' (in memory)."""
    details: Tuple[str, ...] = ()
    """Storage details for reports, e.g. ``('fps: 0-d torch tensor', 'pickle protocol 4')``."""
    notes: Tuple[MotionNote, ...] = field(default=())
    """What the reader noticed (non-unit quaternions normalised, irregular dt, ...)."""

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])

    @property
    def frame_width(self) -> int:
        """Columns per frame (34 for MimicKit's humanoid)."""
        return int(self.frames.shape[1])

    @property
    def length_s(self) -> float:
        """Clip length in seconds, ``(num_frames - 1) / fps`` (MimicKit's formula)."""
        return float(max(self.num_frames - 1, 0)) / float(self.fps)

    @property
    def loop_name(self) -> str:
        """'clamp' or 'wrap'."""
        return LOOP_NAMES.get(self.loop_mode, str(self.loop_mode))

    def replace(self, **changes) -> Motion:
        """A copy with some fields changed (frames are not copied unless given)."""
        values = {
            "fps": self.fps,
            "loop_mode": self.loop_mode,
            "frames": self.frames,
            "source": self.source,
            "variant": self.variant,
            "details": self.details,
            "notes": self.notes,
        }
        values.update(changes)
        return Motion(**values)


def validate_motion_fields(fps, loop_mode, frames, source: str) -> Tuple[float, int, np.ndarray]:
    """Check raw (fps, loop_mode, frames) values from any reader and return them normalised.

    Returns ``(fps float, loop_mode int, frames float32 (num_frames, width))``. Raises
    ``MotionFormatError`` with a one-line message naming ``source`` and the bad field/frame.
    Non-finite frame *values* are allowed here (``mimic motion inspect`` reports them,
    ``MotionLib`` refuses them); a non-finite, non-positive or above-``MAX_FPS`` fps is not.
    Frames must be real numbers (object and complex dtypes are refused), rows of a list must be
    lists of equal length, and frames x columns must stay under ``io_util.max_cells()``
    (checked before anything is allocated).
    """
    from mimictools.errors import MotionFormatError
    from mimictools.io_util import check_cells, short_repr

    where = source or "<motion>"
    # fps: int, float, numpy scalar or 0-d array (legacy torch tensor already turned into numpy).
    if isinstance(fps, (str, bytes, bool, np.bool_)) or (
        isinstance(fps, np.ndarray) and fps.dtype.kind not in "iuf"
    ):
        raise MotionFormatError(f"{where}: fps must be a number, got {type(fps).__name__} {short_repr(fps)}")
    if not isinstance(fps, (int, float, np.integer, np.floating, np.ndarray)):
        raise MotionFormatError(f"{where}: fps must be a number, got {type(fps).__name__}")
    if isinstance(fps, np.ndarray) and fps.size != 1:
        raise MotionFormatError(f"{where}: fps must be a single number, got shape {fps.shape}")
    try:
        fps_f = float(np.asarray(fps, dtype=np.float64).reshape(()))
    except (TypeError, ValueError, OverflowError):
        raise MotionFormatError(f"{where}: fps must be a number, got {type(fps).__name__}") from None
    if not np.isfinite(fps_f) or fps_f <= 0.0 or fps_f > MAX_FPS:
        raise MotionFormatError(
            f"{where}: fps is {fps_f!r}; it must be a finite number > 0 and at most {MAX_FPS:g}"
        )

    lm = getattr(loop_mode, "value", loop_mode)  # a (stub) LoopMode enum
    if isinstance(lm, (bool, np.bool_)) or not isinstance(lm, (int, np.integer)):
        raise MotionFormatError(f"{where}: loop_mode must be 0 (clamp) or 1 (wrap), got {short_repr(lm)}")
    if int(lm) not in (LOOP_CLAMP, LOOP_WRAP):
        raise MotionFormatError(f"{where}: loop_mode is {int(lm)}; valid values are 0 (clamp) and 1 (wrap)")

    if isinstance(frames, (list, tuple)):
        arr = _frames_from_rows(frames, where)
    elif isinstance(frames, np.ndarray):
        if frames.dtype.kind not in "biuf":
            raise MotionFormatError(
                f"{where}: frames have dtype {frames.dtype}; they must be real numbers (float or int)"
            )
        if frames.ndim == 2:
            check_cells(frames.shape[0], frames.shape[1], where, error=MotionFormatError)
        arr = frames.astype(np.float32, copy=False) if frames.ndim == 2 else frames
    else:
        raise MotionFormatError(
            f"{where}: frames must be a list of rows or a numpy array, got {type(frames).__name__}"
        )
    if arr.ndim != 2:
        if arr.size == 0:
            raise MotionFormatError(f"{where}: empty clip (frames has 0 rows)")
        raise MotionFormatError(
            f"{where}: frames must be a 2-D table (num_frames, columns), got shape {arr.shape}"
        )
    if arr.shape[0] == 0:
        raise MotionFormatError(f"{where}: empty clip (frames has 0 rows)")
    if arr.shape[1] < 6:
        raise MotionFormatError(
            f"{where}: frames have {arr.shape[1]} columns; a frame needs at least 6 (3 root pos + 3 root rot)"
        )
    return fps_f, int(lm), np.ascontiguousarray(arr)


_COMPLEX_WARNING = getattr(getattr(np, "exceptions", np), "ComplexWarning", Warning)


def _frames_from_rows(frames, where: str) -> np.ndarray:
    """A list of rows (lists of numbers) -> float32 (num_frames, width), without ever building more
    than the rows hold (shared rows and nested lists are refused before allocating)."""
    import warnings

    from mimictools.errors import MotionFormatError
    from mimictools.io_util import check_cells

    if len(frames) == 0:
        raise MotionFormatError(f"{where}: empty clip (frames has 0 rows)")
    width0 = _row_len(frames[0], where, 0)
    for i, row in enumerate(frames):
        n = _row_len(row, where, i)
        if n != width0:
            raise MotionFormatError(f"{where}: frame {i} has {n} columns, frame 0 has {width0}")
    check_cells(len(frames), width0, where, error=MotionFormatError)
    out = np.empty((len(frames), width0), dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error", _COMPLEX_WARNING)
        for i, row in enumerate(frames):
            try:
                out[i] = np.fromiter(row, dtype=np.float64, count=width0)
            except (TypeError, ValueError, OverflowError, _COMPLEX_WARNING):
                raise MotionFormatError(
                    f"{where}: frame {i} holds values that are not numbers (real float or int)"
                ) from None
    return out


def _row_len(row, where: str, i: int) -> int:
    from mimictools.errors import MotionFormatError

    try:
        return len(row)
    except TypeError:
        raise MotionFormatError(
            f"{where}: frame {i} is not a list of numbers ({type(row).__name__})"
        ) from None
