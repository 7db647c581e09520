"""Retargeting sources: any input clip turned into world joint positions and rotations (Z up, metres).

- BVH: parsed and forward-kinematics'd here (``bvh.py``); unit and up axis detected or given; CMU's
  inserted rest frame 0 detected and dropped (or forced either way).
- MimicKit ``.pkl``: the frames of a given source character (``--src-char``) through our FK.
- DeepMimic ``.txt``: converted to MimicKit humanoid frames by the motion reader, then as a ``.pkl``.

Every source also carries its *rest pose* (zero joint rotations, root at the origin), which mapping
calibration uses: segment lengths for scaling and the rest orientation of each joint.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Tuple

import numpy as np
import torch

from mimictools.errors import MotionFormatError

__all__ = ["SourceMotion", "default_humanoid_path", "load_source", "resample_source"]


@dataclass(frozen=True, eq=False)
class SourceMotion:
    """World joint trajectories of a source clip, Z up, metres."""

    names: Tuple[str, ...]
    """Joint (BVH) or body (character) names."""
    parents: Tuple[int, ...]
    pos: np.ndarray
    """float64, Shape (num_frames, num_joints, 3), metres, Z up."""
    rot: np.ndarray
    """float64, Shape (num_frames, num_joints, 4), wxyz world rotations."""
    rest_pos: np.ndarray
    """Rest pose positions (zero rotations, root at the origin), Shape (num_joints, 3), metres, Z up."""
    rest_rot: np.ndarray
    """Rest pose world rotations, Shape (num_joints, 4)."""
    fps: float
    loop_mode: int
    kind: str
    """'bvh' or 'mimickit' (DeepMimic clips become 'mimickit' on the humanoid)."""
    path: str
    notes: Tuple[str, ...] = ()
    """What was detected or changed, for the report (unit, up axis, dropped frame, ...)."""

    @property
    def num_frames(self) -> int:
        return int(self.pos.shape[0])


def default_humanoid_path() -> Path:
    """The humanoid MJCF shipped with mimictools (``data/humanoid.xml``; see ``mimictools.paths``)."""
    from mimictools.paths import bundled_humanoid_xml

    return Path(bundled_humanoid_xml())


def _bvh_source(
    path: str, up: Optional[str], unit: Optional[str], skip_first: Optional[bool]
) -> SourceMotion:
    from mimictools.motion.retarget import bvh

    clip = bvh.load_bvh(path)
    notes = []
    if up is None:
        up = bvh.detect_up_axis(clip.skeleton)
        notes.append(f"up axis {up} (detected)")
    elif up not in ("y", "z"):
        raise MotionFormatError(f"--src-up must be y or z, got {up!r}")
    else:
        notes.append(f"up axis {up} (given)")
    if unit is None:
        unit_name, scale = bvh.detect_unit(clip.skeleton, up)
        notes.append(f"unit {unit_name} = {scale:.5g} m (detected from hip height)")
    else:
        try:
            scale = float(unit)
            unit_name = f"{scale:g} m"
        except ValueError:
            if unit not in bvh.UNITS:
                raise MotionFormatError(
                    f"--src-unit {unit!r}: use one of {', '.join(bvh.UNITS)} or metres per unit (e.g. 0.0254)"
                ) from None
            unit_name, scale = unit, bvh.UNITS[unit]
        if not scale > 0.0:
            raise MotionFormatError(f"--src-unit must be > 0 metres per unit, got {unit!r}")
        notes.append(f"unit {unit_name} (given)")
    drop = bvh.detect_rest_frame(clip) if skip_first is None else bool(skip_first)
    channels = clip.channels
    if drop:
        if clip.num_frames < 2:
            raise MotionFormatError(f"{path}: cannot drop frame 0 of a 1-frame clip")
        channels = channels[1:]
        notes.append(
            "frame 0 dropped ("
            + ("an inserted rest pose, detected" if skip_first is None else "--skip-first")
            + ")"
        )
    clip = bvh.BvhClip(skeleton=clip.skeleton, frame_time_s=clip.frame_time_s, channels=channels, source=path)
    pos, rot = bvh.bvh_forward_kinematics(clip)
    pos, rot = bvh.bvh_to_zup_metres(pos, rot, up, scale)
    rest = bvh.bvh_rest_positions(clip.skeleton)
    rest_rot = np.zeros((rest.shape[0], 4))
    rest_rot[:, 0] = 1.0
    rest_pos, rest_rot = bvh.bvh_to_zup_metres(rest, rest_rot, up, scale)
    return SourceMotion(
        names=clip.skeleton.names,
        parents=clip.skeleton.parents,
        pos=pos,
        rot=rot,
        rest_pos=rest_pos,
        rest_rot=rest_rot,
        fps=clip.fps,
        loop_mode=0,
        kind="bvh",
        path=path,
        notes=tuple(notes),
    )


def _character_source(path: str, src_char_path: Optional[str], fps: Optional[float] = None) -> SourceMotion:
    from mimictools.character.kinematics import frames_to_body_poses
    from mimictools.character.mjcf import load_character
    from mimictools.motion.io import check_frame_width, load_motion

    char_path = Path(src_char_path) if src_char_path else default_humanoid_path()
    char = load_character(char_path)
    robot = Path(path).suffix.lower() in (".csv", ".npz")  # joint count / body order checked when read
    motion = load_motion(path, warn=False, fps=fps, char=char if robot else None)
    check_frame_width(motion, char)
    frames = np.asarray(motion.frames, dtype=np.float64)
    bad = ~np.isfinite(frames)
    notes = [f"source character {char_path}"]
    if bad.any():
        cols = sorted(set(np.nonzero(bad)[1].tolist()))
        if bad.all(axis=0).any() and not (bad.any(axis=0) & ~bad.all(axis=0)).any():
            # whole columns NaN (MimicKit's humanoid_walk.pkl: the neck): treat as zero rotation
            frames = np.where(bad, 0.0, frames)
            notes.append(f"columns {cols} are NaN in every frame; read as 0 (no rotation)")
        else:
            f0 = int(np.nonzero(bad.any(axis=1))[0][0])
            raise MotionFormatError(f"{path}: frame {f0} has NaN/inf in columns {cols}")
    ft = torch.as_tensor(frames, dtype=torch.float64)
    pos, rot = frames_to_body_poses(char, ft)
    rest = torch.zeros(1, char.frame_width, dtype=torch.float64)
    rest_pos, rest_rot = frames_to_body_poses(char, rest)
    return SourceMotion(
        names=char.body_names,
        parents=char.parents,
        pos=pos.numpy(),
        rot=rot.numpy(),
        rest_pos=rest_pos[0].numpy(),
        rest_rot=rest_rot[0].numpy(),
        fps=float(motion.fps),
        loop_mode=int(motion.loop_mode),
        kind="mimickit",
        path=path,
        notes=tuple(notes),
    )


def load_source(
    path: str | Path,
    src_char: Optional[str | Path] = None,
    up: Optional[str] = None,
    unit: Optional[str] = None,
    skip_first: Optional[bool] = None,
    fps: Optional[float] = None,
) -> SourceMotion:
    """Read a retargeting source: ``.bvh`` (``up``/``unit``/``skip_first`` apply; None = detect), or a
    clip (MimicKit/GMR ``.pkl``, DeepMimic ``.txt``, robot ``.csv``/``.npz``) of character ``src_char``
    (default: the bundled humanoid). ``fps``: the frame rate of a robot .csv source (it stores none)."""
    from mimictools.io_util import check_input_file

    p = str(path)
    if not Path(p).exists():
        raise MotionFormatError(f"{p}: no such file")
    check_input_file(p, MotionFormatError)  # a FIFO or device would block or read forever
    with open(p, "rb") as f:
        head = f.read(64).lstrip()
    if Path(p).suffix.lower() == ".bvh" or head.upper().startswith(b"HIERARCHY"):
        return _bvh_source(p, up, unit, skip_first)
    if up is not None or unit is not None or skip_first is not None:
        raise MotionFormatError(f"{p}: --src-up, --src-unit and --skip-first apply to BVH sources only")
    return _character_source(p, None if src_char is None else str(src_char), fps)


def resample_source(src: SourceMotion, fps: float) -> SourceMotion:
    """The source at a new frame rate over the same duration (positions linear, rotations slerp)."""
    from mimictools.math.rotations import quat_slerp

    if not fps > 0.0:
        raise MotionFormatError(f"--fps must be > 0, got {fps}")
    n = src.num_frames
    length = (n - 1) / src.fps
    m = int(np.floor(length * fps + 1e-6)) + 1
    t = np.arange(m) / fps * src.fps  # fractional source frame index
    i0 = np.clip(np.floor(t).astype(np.int64), 0, n - 1)
    i1 = np.clip(i0 + 1, 0, n - 1)
    a = (t - i0)[:, None, None]
    pos = (1.0 - a) * src.pos[i0] + a * src.pos[i1]
    r0 = torch.as_tensor(src.rot[i0])
    r1 = torch.as_tensor(src.rot[i1])
    rot = quat_slerp(r0, r1, torch.as_tensor(a[..., 0]).expand(r0.shape[:-1])).numpy()
    return SourceMotion(
        names=src.names,
        parents=src.parents,
        pos=pos,
        rot=rot,
        rest_pos=src.rest_pos,
        rest_rot=src.rest_rot,
        fps=float(fps),
        loop_mode=src.loop_mode,
        kind=src.kind,
        path=src.path,
        notes=src.notes + (f"resampled {src.fps:g} -> {fps:g} fps ({n} -> {m} frames)",),
    )
