"""BVH mocap: parser, forward kinematics of the source skeleton, and unit / up-axis detection.

``load_bvh(path)`` reads any BVH hierarchy (any rotation channel order, position channels on any
joint, End Sites). ``bvh_forward_kinematics(clip)`` gives every joint's world position and rotation in
the file's own units and axes. ``detect_up_axis`` / ``detect_unit`` pick the up axis (y or z) and the
length unit from the rest pose; ``bvh_to_zup_metres`` converts positions and rotations to mimictools'
world (Z up, metres).

Conventions of the format, as this parser reads them:
- A joint's rotation channels compose in the order they are listed: ``Zrotation Yrotation Xrotation``
  is ``Rz @ Ry @ Rx`` (angles in degrees).
- Position channels give the joint's translation in its parent's frame and *replace* its OFFSET
  (for the root, whose OFFSET is almost always 0, this is the usual world position).
- End Sites become extra joints without channels, named ``<parent>_end`` (``_end2``, ... when a joint
  has several), so a mapping file can use them (head top, toe tip).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch

from mimictools.errors import MotionFormatError
from mimictools.io_util import check_cells, read_input_bytes, short_repr
from mimictools.math.rotations import axis_angle_to_quat, quat_mul, quat_rotate

__all__ = [
    "UNITS",
    "BvhClip",
    "BvhSkeleton",
    "bvh_forward_kinematics",
    "bvh_rest_positions",
    "bvh_to_zup_metres",
    "detect_rest_frame",
    "detect_unit",
    "detect_up_axis",
    "load_bvh",
]

UNITS: Dict[str, float] = {
    "m": 1.0,
    "cm": 0.01,
    "mm": 0.001,
    "inch": 0.0254,
    "cmu": 0.0254 / 0.45,
}
"""Length units a BVH may use -> metres per file unit. ``cmu``: the CMU ASF->BVH conversion (inches / 0.45)."""

TYPICAL_HIP_HEIGHT_M = 0.9
"""Adult hip height used to pick a unit: the unit whose rest-pose hip height is nearest this (log ratio)."""

_AXES = {"x": 0, "y": 1, "z": 2}

MAX_ABS_VALUE = 1e7
"""Largest magnitude of an OFFSET or channel value (file units / degrees); beyond it FK overflows."""
MIN_FRAME_TIME_S = 1e-4
"""Smallest Frame Time accepted (10 kHz), as ``motion.MAX_FPS``."""


@dataclass(frozen=True, eq=False)
class BvhSkeleton:
    """A BVH hierarchy. Joints in file order (depth first, parents before children), End Sites included."""

    names: Tuple[str, ...]
    parents: Tuple[int, ...]
    """Parent joint index; -1 for the root."""
    offsets: np.ndarray
    """OFFSET per joint in the parent frame (file units), Shape (num_joints, 3)."""
    is_end_site: Tuple[bool, ...]
    pos_channels: Tuple[Tuple[Tuple[int, int], ...], ...]
    """Per joint: (column, axis 0/1/2) of each position channel, in file order."""
    rot_channels: Tuple[Tuple[Tuple[int, int], ...], ...]
    """Per joint: (column, axis 0/1/2) of each rotation channel, in file (= composition) order."""
    num_channels: int

    @property
    def num_joints(self) -> int:
        return len(self.names)

    def index(self, name: str) -> int:
        """Index of joint ``name`` (MotionFormatError listing the joints otherwise)."""
        try:
            return self.names.index(name)
        except ValueError:
            raise MotionFormatError(
                f"BVH has no joint {name!r}; joints are: {', '.join(self.names)}"
            ) from None


@dataclass(frozen=True, eq=False)
class BvhClip:
    """A parsed BVH file: skeleton + channel values per frame (file units, degrees)."""

    skeleton: BvhSkeleton
    frame_time_s: float
    channels: np.ndarray
    """float64, Shape (num_frames, num_channels), in the file's column order."""
    source: str = ""

    @property
    def num_frames(self) -> int:
        return int(self.channels.shape[0])

    @property
    def fps(self) -> float:
        return 1.0 / self.frame_time_s


def _err(path: str, line_no: int, msg: str) -> MotionFormatError:
    return MotionFormatError(f"{path}:{line_no}: {msg}")


def _floats(path: str, line_no: int, words: List[str], n: int, what: str) -> List[float]:
    if len(words) != n:
        raise _err(
            path, line_no, f"{what} needs {n} numbers, got {len(words)}: {short_repr(' '.join(words))}"
        )
    try:
        values = [float(w) for w in words]
    except ValueError:
        raise _err(path, line_no, f"{what} has a non-number: {short_repr(' '.join(words))}") from None
    if not all(math.isfinite(v) and abs(v) <= MAX_ABS_VALUE for v in values):
        raise _err(path, line_no, f"{what} must be finite numbers of magnitude <= {MAX_ABS_VALUE:g}")
    return values


def load_bvh(path: str | Path) -> BvhClip:
    """Parse a BVH file. Raises MotionFormatError naming the line for anything malformed or truncated."""
    path = str(path)
    text = read_input_bytes(path, MotionFormatError).decode("utf-8", errors="replace")
    lines = text.splitlines()

    names: List[str] = []
    name_set = set()  # fast duplicate check (files with many joints)
    parents: List[int] = []
    offsets: List[List[float]] = []
    is_end: List[bool] = []
    pos_ch: List[Tuple[Tuple[int, int], ...]] = []
    rot_ch: List[Tuple[Tuple[int, int], ...]] = []
    end_count: Dict[int, int] = {}
    stack: List[int] = []  # joint index per open brace
    pending: Optional[int] = None  # joint declared, its '{' not seen yet
    num_channels = 0
    i = 0
    # ---- hierarchy ---------------------------------------------------------------------------
    while i < len(lines) and not lines[i].strip():
        i += 1
    if i >= len(lines) or lines[i].strip().upper() != "HIERARCHY":
        raise _err(path, i + 1, "not a BVH file: the first line must be 'HIERARCHY'")
    i += 1
    roots = 0
    while i < len(lines):
        line_no = i + 1
        words = lines[i].split()
        i += 1
        if not words:
            continue
        key = words[0].upper()
        if key in ("ROOT", "JOINT"):
            if key == "ROOT":
                roots += 1
                if roots > 1 or stack:
                    raise _err(path, line_no, "only one ROOT per file is supported")
            elif not stack:
                raise _err(path, line_no, "JOINT outside of the ROOT's braces")
            name = " ".join(words[1:])
            if not name:
                raise _err(path, line_no, f"{key} without a name")
            if name in name_set:
                raise _err(path, line_no, f"joint name {short_repr(name)} is used twice")
            names.append(name)
            name_set.add(name)
            parents.append(stack[-1] if stack else -1)
            offsets.append([0.0, 0.0, 0.0])
            is_end.append(False)
            pos_ch.append(())
            rot_ch.append(())
            pending = len(names) - 1
        elif key == "END":
            if not stack:
                raise _err(path, line_no, "End Site outside of any joint")
            parent = stack[-1]
            end_count[parent] = end_count.get(parent, 0) + 1
            k = end_count[parent]
            names.append(f"{names[parent]}_end" + ("" if k == 1 else str(k)))
            name_set.add(names[-1])
            parents.append(parent)
            offsets.append([0.0, 0.0, 0.0])
            is_end.append(True)
            pos_ch.append(())
            rot_ch.append(())
            pending = len(names) - 1
        elif key == "{":
            if pending is None:
                raise _err(path, line_no, "'{' without a ROOT/JOINT/End Site before it")
            stack.append(pending)
            pending = None
        elif key == "}":
            if not stack:
                raise _err(path, line_no, "unbalanced '}'")
            stack.pop()
        elif key == "OFFSET":
            if not stack:
                raise _err(path, line_no, "OFFSET outside of a joint")
            offsets[stack[-1]] = _floats(path, line_no, words[1:], 3, "OFFSET")
        elif key == "CHANNELS":
            if not stack or is_end[stack[-1]]:
                raise _err(path, line_no, "CHANNELS outside of a joint (End Sites have none)")
            try:
                n = int(words[1])
            except (IndexError, ValueError):
                raise _err(
                    path, line_no, "CHANNELS needs a count, e.g. 'CHANNELS 3 Zrotation Xrotation Yrotation'"
                ) from None
            kinds = words[2:]
            if len(kinds) != n:
                raise _err(path, line_no, f"CHANNELS says {n} channels but lists {len(kinds)}")
            p: List[Tuple[int, int]] = []
            r: List[Tuple[int, int]] = []
            for kind in kinds:
                low = kind.lower()
                if len(low) < 2 or low[0] not in _AXES or low[1:] not in ("position", "rotation"):
                    raise _err(
                        path,
                        line_no,
                        f"unknown channel {kind!r} (valid: X/Y/Z + position/rotation, e.g. Zrotation)",
                    )
                (p if low[1:] == "position" else r).append((num_channels, _AXES[low[0]]))
                num_channels += 1
            pos_ch[stack[-1]] = tuple(p)
            rot_ch[stack[-1]] = tuple(r)
        elif key == "MOTION":
            break
        else:
            raise _err(path, line_no, f"unexpected {words[0]!r} in HIERARCHY")
    else:
        raise _err(path, len(lines), "no MOTION section (file truncated?)")
    if stack:
        raise _err(path, i, f"MOTION reached with {len(stack)} unclosed '{{' (joint {names[stack[-1]]!r})")
    if not names:
        raise _err(path, i, "the HIERARCHY has no ROOT")

    # ---- motion header -----------------------------------------------------------------------
    def header(prefix: str) -> str:
        nonlocal i
        while i < len(lines) and not lines[i].strip():
            i += 1
        if i >= len(lines) or not lines[i].strip().lower().startswith(prefix):
            raise _err(path, i + 1, f"expected '{prefix[0].upper() + prefix[1:]} ...' after MOTION")
        value = lines[i].split(":", 1)[1].strip()
        i += 1
        return value

    frames_str = header("frames:")
    time_str = header("frame time:")
    try:
        num_frames = int(frames_str)
        frame_time = float(time_str)
    except ValueError:
        raise _err(path, i, f"bad Frames/Frame Time values: {frames_str!r}, {time_str!r}") from None
    if not (frame_time >= MIN_FRAME_TIME_S and math.isfinite(frame_time)):
        raise _err(
            path,
            i,
            f"Frame Time must be > 0 s (at least {MIN_FRAME_TIME_S:g} s: 10 kHz at most), got {frame_time}",
        )
    if num_frames < 1:
        raise _err(path, i, f"Frames must be >= 1, got {num_frames}")
    rows = [ln for ln in lines[i:] if ln.strip()]
    if len(rows) < num_frames:
        raise MotionFormatError(
            f"{path}: header says {num_frames} frames but only {len(rows)} data rows (truncated?)"
        )
    rows = rows[:num_frames]
    # forward kinematics later holds ~16 float64 per joint and frame (pos, rot, local, temporaries): bound it
    check_cells(
        num_frames,
        num_channels + 16 * len(names),
        path,
        "frames x (channels + 16 x joints)",
        MotionFormatError,
    )
    values = np.zeros((num_frames, num_channels), dtype=np.float64)
    for f, row in enumerate(rows):
        parts = row.split()
        if len(parts) != num_channels:
            raise _err(
                path,
                i + 1 + f,
                f"frame {f} has {len(parts)} values, the hierarchy has {num_channels} channels",
            )
        try:
            values[f] = np.asarray(parts, dtype=np.float64)
        except ValueError:
            raise _err(path, i + 1 + f, f"frame {f} has a non-number") from None
    if not np.isfinite(values).all():
        bad = int(np.argwhere(~np.isfinite(values))[0, 0])
        raise MotionFormatError(f"{path}: frame {bad} has NaN/inf channel values")
    if np.abs(values).max(initial=0.0) > MAX_ABS_VALUE:
        bad = int(np.argwhere(np.abs(values) > MAX_ABS_VALUE)[0, 0])
        raise MotionFormatError(f"{path}: frame {bad} has a channel value of magnitude > {MAX_ABS_VALUE:g}")
    skel = BvhSkeleton(
        names=tuple(names),
        parents=tuple(parents),
        offsets=np.asarray(offsets, dtype=np.float64).reshape(-1, 3),
        is_end_site=tuple(is_end),
        pos_channels=tuple(pos_ch),
        rot_channels=tuple(rot_ch),
        num_channels=num_channels,
    )
    return BvhClip(skeleton=skel, frame_time_s=frame_time, channels=values, source=path)


def _local_transforms(skel: BvhSkeleton, channels: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Per joint local translation (F, J, 3) and rotation (F, J, 4) from channel values (F, C).

    Joints sharing a rotation-channel order are done together (one batched product per channel).
    """
    num_frames = channels.shape[0]
    dtype = channels.dtype
    offsets = torch.as_tensor(skel.offsets, dtype=dtype)
    trans = offsets.unsqueeze(0).expand(num_frames, -1, -1).clone()
    rots = torch.zeros(num_frames, skel.num_joints, 4, dtype=dtype)
    rots[..., 0] = 1.0
    eye = torch.eye(3, dtype=dtype)
    groups: Dict[Tuple[int, ...], List[int]] = {}
    for j in range(skel.num_joints):
        for col, axis in skel.pos_channels[j]:
            trans[:, j, axis] = channels[:, col]
        order = tuple(axis for _, axis in skel.rot_channels[j])
        if order:
            groups.setdefault(order, []).append(j)
    for order, joints in groups.items():
        cols = torch.as_tensor([[c for c, _ in skel.rot_channels[j]] for j in joints])  # (n, k)
        ang = torch.deg2rad(channels[:, cols])  # (F, n, k)
        q = axis_angle_to_quat(eye[order[0]].expand(ang.shape[:-1] + (3,)), ang[..., 0])
        for k in range(1, len(order)):
            q = quat_mul(q, axis_angle_to_quat(eye[order[k]].expand(ang.shape[:-1] + (3,)), ang[..., k]))
        rots[:, joints] = q
    return trans, rots


def bvh_forward_kinematics(clip: BvhClip) -> Tuple[np.ndarray, np.ndarray]:
    """World position (F, J, 3) (file units, file axes) and rotation (F, J, 4) (wxyz) of every joint."""
    skel = clip.skeleton
    ch = torch.as_tensor(clip.channels, dtype=torch.float64)
    trans, local = _local_transforms(skel, ch)
    pos = torch.zeros_like(trans)
    rot = torch.zeros_like(local)
    for j, p in enumerate(skel.parents):
        if p < 0:
            pos[:, j] = trans[:, j]
            rot[:, j] = local[:, j]
        else:
            pos[:, j] = pos[:, p] + quat_rotate(rot[:, p], trans[:, j])
            rot[:, j] = quat_mul(rot[:, p], local[:, j])
    return pos.numpy(), rot.numpy()


def bvh_rest_positions(skel: BvhSkeleton) -> np.ndarray:
    """Joint positions (J, 3) in the rest pose (all channels 0, root at the origin), file units and axes."""
    pos = np.zeros((skel.num_joints, 3))
    for j, p in enumerate(skel.parents):
        if p >= 0:
            pos[j] = pos[p] + skel.offsets[j]
    return pos


def detect_up_axis(skel: BvhSkeleton) -> str:
    """'y' or 'z': the axis along which the rest pose is tallest (a standing skeleton is taller than deep)."""
    rest = bvh_rest_positions(skel)
    extent = rest.max(axis=0) - rest.min(axis=0)
    return "y" if extent[1] >= extent[2] else "z"


def detect_unit(skel: BvhSkeleton, up: str) -> Tuple[str, float]:
    """(unit name, metres per unit): the unit in ``UNITS`` whose rest hip height is nearest 0.9 m.

    Hip height = height of the root above the lowest joint of the rest pose, along ``up``.
    """
    rest = bvh_rest_positions(skel)
    axis = _AXES[up]
    hip = float(rest[0, axis] - rest[:, axis].min())
    if not hip > 0.0:
        # Degenerate (e.g. a root at the bottom): fall back to the total height.
        hip = float(rest[:, axis].max() - rest[:, axis].min()) / 2.0
    if not hip > 0.0:
        return "m", 1.0
    best = min(UNITS.items(), key=lambda kv: abs(math.log(hip * kv[1] / TYPICAL_HIP_HEIGHT_M)))
    return best[0], best[1]


def detect_rest_frame(clip: BvhClip) -> bool:
    """True if frame 0 is an inserted rest pose (CMU's BVH conversion): zero root rotation, whole-number
    joint angles, and a jump to frame 1 far larger than the clip's typical frame-to-frame change."""
    if clip.num_frames < 3:
        return False
    skel = clip.skeleton
    rot_cols = [c for j in range(skel.num_joints) for c, _ in skel.rot_channels[j]]
    root_cols = [c for c, _ in skel.rot_channels[0]]
    if not rot_cols:
        return False
    f0 = clip.channels[0, rot_cols]
    if np.abs(clip.channels[0, root_cols]).max(initial=0.0) > 1e-9:
        return False
    if np.abs(f0 - np.round(f0)).max() > 1e-9:
        return False
    rest_frames = clip.channels[1:, rot_cols]
    if np.all(np.abs(rest_frames[0] - np.round(rest_frames[0])) < 1e-9):
        return False  # frame 1 is whole-number too: the file is simply quantised
    jump0 = np.abs(clip.channels[1, rot_cols] - f0).max()
    steps = np.abs(np.diff(rest_frames, axis=0)).max(axis=1)
    typical = float(np.median(steps)) if steps.size else 0.0
    return bool(jump0 > max(5.0 * typical, 1.0))


def _up_to_z(up: str) -> np.ndarray:
    """wxyz quaternion rotating the file's axes so that ``up`` becomes +z (right-handed)."""
    if up == "z":
        return np.array([1.0, 0.0, 0.0, 0.0])
    if up == "y":  # +90 deg about x: (x, y, z) -> (x, -z, y)
        h = math.sqrt(0.5)
        return np.array([h, h, 0.0, 0.0])
    raise MotionFormatError(f"unknown up axis {up!r} (valid: y, z)")


def bvh_to_zup_metres(
    pos: np.ndarray, rot: np.ndarray, up: str, metres_per_unit: float
) -> Tuple[np.ndarray, np.ndarray]:
    """Positions (..., 3) and world rotations (..., 4) from file axes/units to Z-up metres."""
    q = torch.as_tensor(_up_to_z(up), dtype=torch.float64)
    p = torch.as_tensor(pos, dtype=torch.float64)
    r = torch.as_tensor(rot, dtype=torch.float64)
    qp = q.expand(p.shape[:-1] + (4,))
    p_z = quat_rotate(qp, p) * metres_per_unit
    r_z = quat_mul(q.expand(r.shape), r)
    return p_z.numpy(), r_z.numpy()
