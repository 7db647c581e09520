"""mjlab / BeyondMimic motion ``.npz`` (numpy archive, no pickles: loaded with ``allow_pickle=False``).

Keys read: ``fps`` (shape (1,) or scalar), ``joint_pos`` (N, num_joints) rad in the MJCF's joint order,
``body_pos_w`` (N, num_bodies, 3) m and ``body_quat_w`` (N, num_bodies, 4) **w, x, y, z**, world frame;
the root pose is body 0's. ``joint_vel``, ``body_lin_vel_w``, ``body_ang_vel_w`` are written, not needed to
read.

Body order matters: mjlab's files list bodies in MuJoCo's depth-first order (the Character's), Isaac
Lab / BeyondMimic's breadth-first. With a character, reading compares ``body_pos_w`` with our forward
kinematics of the clip (`body_order_error_m`) and raises a MotionFormatError that says which order the
file uses when it is not the character's. Writing needs the character (FK gives the body poses);
velocities are central differences (one-sided at the ends): joint and linear velocities of the
positions, angular velocities from consecutive body quaternions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, List, Optional, Union

import numpy as np

from mimictools.errors import MotionFormatError
from mimictools.motion.formats.robot_frames import check_robot_arrays, motion_from_robot, robot_from_motion
from mimictools.motion.motion import Motion

__all__ = [
    "BODY_ORDER_TOL_M",
    "body_order_error_m",
    "breadth_first_order",
    "read_mjlab_npz",
    "write_mjlab_npz",
]

VARIANT = "mjlab-npz"
REQUIRED_KEYS = ("fps", "joint_pos", "body_pos_w", "body_quat_w")
BODY_ORDER_TOL_M = 1e-3
"""``body_pos_w`` must match our FK of the clip to 1 mm per body (float32 files agree to ~1e-7 m)."""


def breadth_first_order(char: Any) -> List[int]:
    """Character body indices in breadth-first order (Isaac Lab's body order)."""
    order, frontier = [0], [0]
    while frontier:
        nxt = [b for p in frontier for b in range(char.num_bodies) if char.parents[b] == p]
        order.extend(nxt)
        frontier = nxt
    return order


def body_order_error_m(char: Any, motion: Motion, body_pos_w: np.ndarray) -> np.ndarray:
    """Per-body max distance (m) between ``body_pos_w`` (N, num_bodies, 3) and FK of ``motion``."""
    import torch

    from mimictools.character.kinematics import frames_to_body_poses

    pos, _ = frames_to_body_poses(char, torch.as_tensor(np.asarray(motion.frames, dtype=np.float64)))
    return np.abs(pos.numpy() - body_pos_w).max(axis=(0, 2))


def read_mjlab_npz(path: Union[str, Path], char: Optional[Any] = None) -> Motion:
    source = str(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError) as exc:
        raise MotionFormatError(
            f"{source}: not a readable .npz archive ({str(exc).splitlines()[0]})"
        ) from None
    missing = [k for k in REQUIRED_KEYS if k not in data]
    if missing:
        raise MotionFormatError(
            f"{source}: mjlab motion .npz lacks {', '.join(missing)} (has: {', '.join(sorted(data)) or 'nothing'})"
        )
    bpos = np.asarray(data["body_pos_w"], dtype=np.float64)
    bquat = np.asarray(data["body_quat_w"], dtype=np.float64)
    jpos = np.asarray(data["joint_pos"], dtype=np.float64)
    if bpos.ndim != 3 or bpos.shape[2] != 3 or bquat.shape != bpos.shape[:2] + (4,):
        raise MotionFormatError(
            f"{source}: body_pos_w {bpos.shape} / body_quat_w {bquat.shape}: expected (N, num_bodies, 3) / (N, num_bodies, 4)"
        )
    check_robot_arrays(bpos[:, 0], bquat[:, 0], jpos, source, "w, x, y, z", char)
    motion = motion_from_robot(
        bpos[:, 0],
        bquat[:, 0],
        jpos,
        data["fps"],
        source,
        VARIANT,
        char=char,
        details=(f"{bpos.shape[1]} bodies", "quaternion w, x, y, z", f"keys: {', '.join(sorted(data))}"),
    )
    if char is not None:
        _check_body_order(char, motion, bpos, source)
    return motion


def _check_body_order(char: Any, motion: Motion, bpos: np.ndarray, source: str) -> None:
    if bpos.shape[1] != char.num_bodies:
        raise MotionFormatError(
            f"{source}: has {bpos.shape[1]} bodies, character {char.source} has {char.num_bodies}"
        )
    err = body_order_error_m(char, motion, bpos)
    if err.max() <= BODY_ORDER_TOL_M:
        return
    bfs = breadth_first_order(char)
    err_bfs = body_order_error_m(char, motion, bpos[:, np.argsort(bfs)])
    if err_bfs.max() <= BODY_ORDER_TOL_M:
        raise MotionFormatError(
            f"{source}: bodies are in breadth-first order (Isaac Lab / BeyondMimic), character {char.source} "
            "uses MuJoCo's depth-first order (mjlab's); re-export the clip in MuJoCo body order"
        )
    worst = int(np.argmax(err))
    raise MotionFormatError(
        f"{source}: body_pos_w does not match the character's kinematics of joint_pos (body "
        f"{char.body_names[worst]!r} off by {err[worst]:.3f} m); is the clip for {char.source}, in its body order?"
    )


def _central_diff(x: np.ndarray, dt: float) -> np.ndarray:
    if x.shape[0] < 2:
        return np.zeros_like(x)
    return np.gradient(x, dt, axis=0)


def _ang_vel(quat: np.ndarray, dt: float) -> np.ndarray:
    """World angular velocity (rad/s) from wxyz quaternions (N, B, 4) by central differences."""
    from mimictools.math.rotations_np import quat_conj, quat_mul, quat_to_exp_map

    n = quat.shape[0]
    if n < 2:
        return np.zeros(quat.shape[:-1] + (3,))
    nxt = np.concatenate([quat[1:], quat[-1:]], axis=0)
    prv = np.concatenate([quat[:1], quat[:-1]], axis=0)
    steps = np.full((n, 1, 1), 2.0)
    steps[0] = steps[-1] = 1.0
    return quat_to_exp_map(quat_mul(nxt, quat_conj(prv))) / (steps * dt)


def write_mjlab_npz(motion: Motion, path: Union[str, Path], char: Any) -> None:
    """Write ``motion`` for ``char`` as an mjlab motion .npz (float32 arrays, fps float64 (1,)), atomically.

    Bodies are in the character's (MuJoCo depth-first) order, as mjlab expects."""
    import torch

    from mimictools.character.kinematics import frames_to_body_poses
    from mimictools.io_util import atomic_open

    if char is None:
        raise MotionFormatError(
            f"{path}: writing an mjlab .npz needs the character (--char) for its body poses"
        )
    _, _, jpos = robot_from_motion(motion, char)
    pos, rot = frames_to_body_poses(char, torch.as_tensor(np.asarray(motion.frames, dtype=np.float64)))
    pos, rot = pos.numpy(), rot.numpy()
    dt = 1.0 / float(motion.fps)
    arrays = {
        "fps": np.array([float(motion.fps)], dtype=np.float64),
        "joint_pos": jpos.astype(np.float32),
        "joint_vel": _central_diff(jpos, dt).astype(np.float32),
        "body_pos_w": pos.astype(np.float32),
        "body_quat_w": rot.astype(np.float32),
        "body_lin_vel_w": _central_diff(pos, dt).astype(np.float32),
        "body_ang_vel_w": _ang_vel(rot, dt).astype(np.float32),
    }
    try:
        with atomic_open(path, "wb") as f:
            np.savez(f, **arrays)
    except OSError as exc:
        raise MotionFormatError(f"{path}: cannot write ({exc.strerror or exc})") from None
