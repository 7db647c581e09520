"""Where a clip's data faults happen, frame by frame and body by body, for the viewer's timeline.

The same definitions as ``mimic motion inspect`` (``motion.checks``): non-finite numbers (per joint's
columns), joint-limit violations (``checks.joint_limit_excess``) and geoms below the floor by more than
``InspectOptions.ground_tol_m`` (``kinematics.geom_lowest_z``), here kept per frame and per body so that the
marker sits on the frame and the offending body is coloured.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, List

import numpy as np

__all__ = ["FAULT_KINDS", "FaultMarks", "clip_faults"]

FAULT_KINDS = ("nan", "joint_limit", "below_floor")
"""Kinds of marks, in the order the timeline lists them."""


@dataclass(frozen=True, eq=False)
class FaultMarks:
    """Per-frame, per-body fault flags of one clip. ``T`` frames, ``nbody`` MuJoCo bodies."""

    bodies: np.ndarray
    """bool, Shape (len(FAULT_KINDS), T, nbody): body b of frame t has a fault of that kind."""
    messages: List[str]
    """``mimic motion inspect``'s fault and warning lines for the clip."""

    def frames(self, kind: str) -> np.ndarray:
        """Frame indices with a fault of ``kind`` (one of `FAULT_KINDS`), sorted."""
        return np.nonzero(self.bodies[FAULT_KINDS.index(kind)].any(axis=1))[0]

    def bad_bodies(self, t: int) -> np.ndarray:
        """bool (nbody,): bodies with any fault at frame ``t``."""
        return self.bodies[:, t].any(axis=0)

    def summary(self) -> List[str]:
        """One line per kind that occurs: how many frames, and the first ones."""
        from mimictools.motion.checks import format_frames

        out = []
        n = self.bodies.shape[1]
        for kind in FAULT_KINDS:
            fr = self.frames(kind)
            if fr.size:
                out.append(f"{kind}: {fr.size} of {n} frames ({format_frames(fr.tolist())})")
        return out


def clip_faults(vc: Any, motion: Any, qpos: np.ndarray) -> FaultMarks:
    """Fault marks of ``motion`` on the `ViewCharacter` ``vc``; ``qpos`` is its Character-layout qpos,
    Shape (T, num_qpos) (`tracks.clip_track` computes it once for both)."""
    import torch

    from mimictools.character.kinematics import dof_to_local_rot, forward_kinematics, geom_lowest_z
    from mimictools.math.rotations import exp_map_to_quat
    from mimictools.motion.checks import InspectOptions, inspect_motion, joint_limit_excess

    char = vc.char
    frames = np.asarray(motion.frames, dtype=np.float64)
    n = frames.shape[0]
    nb = char.num_bodies
    marks = np.zeros((len(FAULT_KINDS), n, nb), dtype=bool)

    # non-finite: the root columns mark the root body, a joint's columns its body
    bad = ~np.isfinite(frames)
    marks[0, :, 0] |= bad[:, 0:6].any(axis=1)
    for j in char.joints:
        marks[0, :, j.body] |= bad[:, 6 + j.dof_offset : 6 + j.dof_offset + j.dof_count].any(axis=1)

    for j, (_, excess) in zip(char.joints, joint_limit_excess(char, qpos)):
        marks[1, :, j.body] |= excess.max(axis=1) > 1e-6

    tol = InspectOptions().ground_tol_m
    if char.geoms:
        t = torch.as_tensor(frames)
        with torch.no_grad():
            body_pos, body_rot = forward_kinematics(
                char, t[:, 0:3], exp_map_to_quat(t[:, 3:6]), dof_to_local_rot(char, t[:, 6:])
            )
            low = geom_lowest_z(char, body_pos, body_rot).numpy()  # (T, ngeom)
        for g, geom in enumerate(char.geoms):
            with np.errstate(invalid="ignore"):
                marks[2, :, geom.body] |= low[:, g] < -tol

    # Character bodies -> MuJoCo bodies (the viewer draws MuJoCo's)
    out = np.zeros((len(FAULT_KINDS), n, vc.model.nbody), dtype=bool)
    out[:, :, vc.body_ids] = marks
    report = inspect_motion(motion, char)
    messages = [f"fault {f['kind']}: {f['message']}" for f in report["faults"]]
    messages += [f"warning {w['kind']}: {w['message']}" for w in report["warnings"]]
    return FaultMarks(out, messages)
