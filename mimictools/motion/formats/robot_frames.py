"""Robot clip layouts (root pose + joint angles, the MJCF's joint order) <-> MimicKit motion frames.

The robot formats (Unitree/LAFAN1 CSV, mjlab NPZ, GMR ``.pkl``) all store a clip as a root position
(m), a root quaternion and one angle per MJCF joint in the file's joint order; they differ only in the
container and the quaternion order. This module turns such arrays into a `Motion` (frame =
``[root_pos, root_rot exp map, DoFs]``) and back, and checks the faults these data sets have in the wild:
NaN rows, a joint count that does not fit the character, a quaternion stored in the other order
(detected from a root that is not upright on frame 0).

Without a character, each joint column is taken as one DoF (true for hinge-only robots such as the
G1); with one, ball joints and hinge triples are converted through `mimictools.character.kinematics`.
Numpy only, unless a character with 3-DoF joints is given.
"""

from __future__ import annotations

from typing import Any, Optional, Tuple

import numpy as np

from mimictools.errors import MotionFormatError
from mimictools.math.rotations_np import exp_map_to_quat, quat_rotate, quat_to_exp_map
from mimictools.motion.motion import Motion, MotionNote

__all__ = ["check_robot_arrays", "motion_from_robot", "robot_from_motion", "xyzw_to_wxyz", "wxyz_to_xyzw"]

_UPRIGHT_MIN = 0.5
"""A root whose local z axis has a world z component below this on frame 0 is 'not upright' (> 60 deg)."""


def xyzw_to_wxyz(q: np.ndarray) -> np.ndarray:
    return np.concatenate([q[..., 3:4], q[..., 0:3]], axis=-1)


def wxyz_to_xyzw(q: np.ndarray) -> np.ndarray:
    return np.concatenate([q[..., 1:4], q[..., 0:1]], axis=-1)


def _up_z(q_wxyz: np.ndarray) -> float:
    q = q_wxyz / max(float(np.linalg.norm(q_wxyz)), 1e-12)
    return float(quat_rotate(q[None], np.array([[0.0, 0.0, 1.0]]))[0, 2])


def check_robot_arrays(
    root_pos: np.ndarray,
    root_quat_wxyz: np.ndarray,
    joint_pos: np.ndarray,
    source: str,
    order_hint: str,
    char: Optional[Any] = None,
) -> None:
    """MotionFormatError for: shapes that disagree, NaN/inf rows (first bad frame named), a joint count
    that does not fit ``char`` (both counts named), a zero quaternion, or a root that is not upright on
    frame 0 while the other quaternion order would be (``order_hint`` names the order the file is read
    in, e.g. 'x, y, z, w')."""
    n = root_pos.shape[0]
    if (
        root_pos.shape != (n, 3)
        or root_quat_wxyz.shape != (n, 4)
        or joint_pos.ndim != 2
        or joint_pos.shape[0] != n
    ):
        raise MotionFormatError(
            f"{source}: root position {root_pos.shape}, root quaternion {root_quat_wxyz.shape} and joint angles "
            f"{joint_pos.shape} do not fit one clip (expected (N, 3), (N, 4), (N, num_joints))"
        )
    if n == 0:
        raise MotionFormatError(f"{source}: empty clip (0 frames)")
    bad = ~(np.isfinite(root_pos).all(1) & np.isfinite(root_quat_wxyz).all(1) & np.isfinite(joint_pos).all(1))
    if bad.any():
        rows = np.nonzero(bad)[0]
        raise MotionFormatError(
            f"{source}: {rows.size} frame(s) hold NaN/inf values, first at frame {int(rows[0])}; "
            "drop or repair those rows (a clip must be finite everywhere)"
        )
    norms = np.linalg.norm(root_quat_wxyz, axis=1)
    if (norms < 1e-6).any():
        raise MotionFormatError(f"{source}: frame {int(np.argmax(norms < 1e-6))}: root quaternion is zero")
    if char is not None:
        names = [n_ for j in char.joints for n_ in j.mjcf_joints]
        if joint_pos.shape[1] != len(names):
            raise MotionFormatError(
                f"{source}: has {joint_pos.shape[1]} joint columns, character {char.source} has {len(names)} "
                f"joints ({names[0]} ... {names[-1]}, in MJCF order); is the clip for this robot?"
            )
        _require_hinge_robot(char, source)
    q0 = root_quat_wxyz[0]
    if _up_z(q0) < _UPRIGHT_MIN:
        # the same four file columns read in the other order, as wxyz
        if order_hint.startswith("w"):
            other = np.array([q0[3], q0[0], q0[1], q0[2]])
        else:
            other = np.array([q0[1], q0[2], q0[3], q0[0]])
        if _up_z(other) >= _UPRIGHT_MIN:
            other_name = "x, y, z, w" if order_hint.startswith("w") else "w, x, y, z"
            raise MotionFormatError(
                f"{source}: the root is not upright on frame 0 when its quaternion is read as ({order_hint}), "
                f"but is when read as ({other_name}): the file likely stores the other order"
            )


def motion_from_robot(
    root_pos: np.ndarray,
    root_quat_wxyz: np.ndarray,
    joint_pos: np.ndarray,
    fps: float,
    source: str,
    variant: str,
    char: Optional[Any] = None,
    loop_mode: int = 0,
    details: Tuple[str, ...] = (),
    notes: Tuple[MotionNote, ...] = (),
) -> Motion:
    """Motion from root pose + joint angles (checked with `check_robot_arrays` first by the caller).

    Frames are float32, Shape (N, 6 + num_dofs). Root quaternions are normalised."""
    from mimictools.motion.motion import validate_motion_fields

    q = root_quat_wxyz / np.linalg.norm(root_quat_wxyz, axis=1, keepdims=True)
    root_rot = quat_to_exp_map(q.astype(np.float64))
    dof = joint_pos.astype(np.float64)
    if char is not None and any(j.kind == "spherical" for j in char.joints):
        import torch

        from mimictools.character.kinematics import qpos_to_dof

        qpos = np.concatenate([root_pos, q, joint_pos], axis=1)
        _, _, d = qpos_to_dof(char, torch.as_tensor(qpos, dtype=torch.float64))
        dof = d.numpy()
    frames = np.concatenate([root_pos.astype(np.float64), root_rot, dof], axis=1)
    fps_f, lm, arr = validate_motion_fields(fps, loop_mode, frames, source)
    return Motion(
        fps=fps_f, loop_mode=lm, frames=arr, source=source, variant=variant, details=details, notes=notes
    )


def robot_from_motion(
    motion: Motion, char: Optional[Any] = None
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(root_pos (N, 3), root_quat wxyz (N, 4), joint_pos (N, num_joints))``, float64, from a Motion.

    Without a character (or with a hinge-only one) the DoF columns are the joint angles."""
    f = np.asarray(motion.frames, dtype=np.float64)
    root_pos, root_quat, dof = f[:, 0:3], exp_map_to_quat(f[:, 3:6]), f[:, 6:]
    if char is not None:
        if f.shape[1] != char.frame_width:
            raise MotionFormatError(
                f"{motion.source or '<motion>'}: has {f.shape[1]} columns, character {char.source} expects "
                f"{char.frame_width}"
            )
        _require_hinge_robot(char, motion.source or "<motion>")
        if any(j.kind == "spherical" for j in char.joints):
            import torch

            from mimictools.character.kinematics import dof_to_qpos

            t = lambda x: torch.as_tensor(x, dtype=torch.float64)  # noqa: E731
            dof = dof_to_qpos(char, t(root_pos), t(root_quat), t(dof)).numpy()[:, 7:]
    return root_pos, root_quat, dof


def _require_hinge_robot(char, source: str) -> None:
    """Robot clip formats store one angle per joint: a character with ball joints is an error naming both."""
    if any(j.is_ball for j in char.joints):
        raise MotionFormatError(
            f"{source}: character {char.source} has ball joints; robot clip formats store one angle per "
            "joint and need a hinge-joint robot"
        )
