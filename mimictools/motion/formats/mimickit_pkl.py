"""MimicKit motion ``.pkl``: read every variant found in the wild, write the current one.

Variants read (see docs/formats.md):

- ``mimickit-dict-list``: the current release, a dict ``{loop_mode: int, fps: number, frames: list of lists}``;
- ``mimickit-dict-ndarray``: older fork copies, the same dict with ``frames`` a float32 ``numpy.ndarray``;
- ``fps`` stored as ``int``, ``float``, a numpy scalar, or a 0-d ``torch.Tensor`` (decoded without torch);
- ``mimickit-legacy-object``: before upstream commit b52d273, a pickled ``anim.motion.Motion`` object
  whose ``loop_mode`` is an ``anim.motion.LoopMode`` enum.

Everything goes through ``safe_pickle.safe_loads``: nothing in the file is executed.
Written: exactly what upstream's ``Motion.save`` writes today (dict, ``loop_mode`` int, ``fps``,
``frames.tolist()``), pickle protocol 4 (the default of the Pythons MimicKit runs on), atomically.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any, Union

import numpy as np

from mimictools.errors import MotionFormatError
from mimictools.io_util import read_input_bytes, short_repr
from mimictools.motion.formats.safe_pickle import (
    LegacyMotion,
    TorchTensorData,
    pickle_protocol,
    safe_loads,
)
from mimictools.motion.motion import Motion, validate_motion_fields

PICKLE_PROTOCOL = 4
"""Protocol used when writing (Python 3.8-3.13's default, what upstream's ``pickle.dump`` produces)."""

REQUIRED_KEYS = ("loop_mode", "fps", "frames")
CELLS_PER_BYTE = 16
"""A pickled list of rows may hold at most this many numbers per byte of file (+ 1 M): a real clip
stores >= 9 bytes per number, a static pose repeating one row ~2 bytes per row."""


def _describe_fps(fps: Any) -> str:
    if isinstance(fps, TorchTensorData):
        return f"fps: 0-d torch tensor ({fps.dtype_name})" if fps.array.ndim == 0 else "fps: torch tensor"
    if isinstance(fps, bool):
        return "fps: bool"
    if isinstance(fps, int):
        return "fps: int"
    if isinstance(fps, float):
        return "fps: float"
    if isinstance(fps, np.generic):
        return f"fps: numpy {fps.dtype}"
    if isinstance(fps, np.ndarray):
        return f"fps: numpy array {fps.dtype}"
    return f"fps: {type(fps).__name__}"


def _describe_frames(frames: Any) -> str:
    if isinstance(frames, np.ndarray):
        return f"frames: numpy {frames.dtype}"
    if isinstance(frames, TorchTensorData):
        return f"frames: torch tensor ({frames.dtype_name})"
    if isinstance(frames, list):
        return "frames: list of lists"
    return f"frames: {type(frames).__name__}"


def motion_from_pickled(obj: Any, source: str, protocol: int = -1, file_bytes: int = 0) -> Motion:
    """Turn an unpickled object (dict or legacy ``Motion`` stand-in) into a validated ``Motion``.

    ``file_bytes`` (size of the pickle, if known) bounds a list of rows: at most
    ``CELLS_PER_BYTE x file_bytes + 1 M`` numbers, so rows shared by reference cannot turn a small file
    into gigabytes."""
    if isinstance(obj, LegacyMotion):
        fields = obj.__dict__
        variant = "mimickit-legacy-object"
        container = "anim.motion.Motion object"
    elif isinstance(obj, dict):
        fields = obj
        variant = ""  # decided by the frames type below
        container = "dict"
    else:
        raise MotionFormatError(
            f"{source}: a MimicKit motion pickle holds a dict (or a legacy anim.motion.Motion), "
            f"this one holds a {type(obj).__name__}"
        )
    for key in REQUIRED_KEYS:
        if key not in fields:
            names = [k if isinstance(k, str) else short_repr(k, 30) for k in list(fields)[:12]]
            have = ", ".join(sorted(n[:40] for n in names)) + (", ..." if len(fields) > 12 else "")
            have = have or "nothing"
            raise MotionFormatError(
                f"{source}: missing key '{key}' in the motion {container} (has: {have}; "
                f"needs: {', '.join(REQUIRED_KEYS)})"
            )
    fps_raw, frames_raw = fields["fps"], fields["frames"]
    details = [_describe_fps(fps_raw), _describe_frames(frames_raw)]
    if protocol >= 0:
        details.append(f"pickle protocol {protocol}")
    if not variant:
        variant = "mimickit-dict-ndarray" if isinstance(frames_raw, np.ndarray) else "mimickit-dict-list"
    if file_bytes > 0 and isinstance(frames_raw, list) and frames_raw and isinstance(frames_raw[0], list):
        cells = len(frames_raw) * len(frames_raw[0])
        if cells > CELLS_PER_BYTE * file_bytes + (1 << 20):
            raise MotionFormatError(
                f"{source}: frames = {len(frames_raw):,} rows x {len(frames_raw[0]):,} columns from a "
                f"{file_bytes:,}-byte file: rows shared by reference (a crafted file); refused"
            )
    fps_val = fps_raw.array if isinstance(fps_raw, TorchTensorData) else fps_raw
    frames_val = frames_raw.array if isinstance(frames_raw, TorchTensorData) else frames_raw
    fps, loop_mode, frames = validate_motion_fields(fps_val, fields["loop_mode"], frames_val, source)
    return Motion(
        fps=fps,
        loop_mode=loop_mode,
        frames=frames,
        source=source,
        variant=variant,
        details=tuple(details),
    )


def read_mimickit_pkl(path: Union[str, Path]) -> Motion:
    """Read a MimicKit ``.pkl`` (any variant) safely. Raises ``MotionFormatError`` / ``UnsafePickleError``."""
    source = str(path)
    data = read_input_bytes(path, MotionFormatError)
    obj = safe_loads(data, source)
    return motion_from_pickled(obj, source, pickle_protocol(data), file_bytes=len(data))


def mimickit_dict(motion: Motion) -> dict:
    """The dict upstream's ``Motion.save`` pickles: ``loop_mode`` int, ``fps``, ``frames`` list of lists.

    ``fps`` is written as an ``int`` when it is integral (as in most official clips), else a ``float``.
    """
    fps = float(motion.fps)
    fps_out = int(fps) if fps.is_integer() else fps  # type: Union[int, float]
    frames = np.asarray(motion.frames, dtype=np.float32)
    return {"loop_mode": int(motion.loop_mode), "fps": fps_out, "frames": frames.tolist()}


def write_mimickit_pkl(motion: Motion, path: Union[str, Path]) -> None:
    """Write ``motion`` in MimicKit's current format, atomically (temp file + ``os.replace``).

    Refuses (``MotionFormatError``) frames holding NaN/inf or values float32 cannot hold: a written
    clip must load and train. The file gets the mode ``open()`` would give (umask respected)."""
    validate_motion_fields(motion.fps, motion.loop_mode, motion.frames, str(path))
    frames64 = np.asarray(motion.frames, dtype=np.float64)
    bad = ~np.isfinite(frames64) | (np.abs(np.nan_to_num(frames64)) > np.finfo(np.float32).max)
    if bad.any():
        f, c = (int(v) for v in np.argwhere(bad)[0])
        raise MotionFormatError(
            f"{path}: not written: frame {f} column {c} is {float(frames64[f, c])!r} "
            f"({int(bad.sum())} non-finite values); a clip must hold finite numbers"
        )
    payload = pickle.dumps(mimickit_dict(motion), protocol=PICKLE_PROTOCOL)
    atomic_write_bytes(Path(path), payload)


def atomic_write_bytes(path: Path, payload: bytes) -> None:
    """Write ``payload`` to ``path`` atomically (``mimictools.io_util.atomic_open``); OSError -> MotionFormatError."""
    from mimictools.io_util import atomic_open

    try:
        with atomic_open(path, "wb") as f:
            f.write(payload)
    except OSError as exc:
        raise MotionFormatError(f"{path}: cannot write ({exc.strerror or exc})") from None
