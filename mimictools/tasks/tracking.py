"""Character tracking state and MimicKit's tracking-error definitions (shared by the task and `eval`).

Definitions checked against xbpeng/MimicKit ``mimickit/envs/deepmimic_env.py``
(``compute_tracking_error``, commit 15af0bf; same in 166a062). The seven errors, in MimicKit's
order and named like the columns of its training log:

=====================  ====================================================================  ======
key                    definition (per env)                                                  unit
=====================  ====================================================================  ======
``Root_Pos_Err``       ``|p_ref_root - p_root|``                                             m
``Root_Rot_Err``       angle of the rotation between sim and reference root                  rad
``Body_Pos_Err``       mean over *all* bodies of ``|(p_ref_b - p_ref_root) - (p_b - p_root)|``  m
                       (root-relative, world-aligned; the root's own term is 0)
``Pose_Err``           mean over all bodies of the angle between world body rotations        rad
``Dof_Vel_Err``        mean over DoFs of ``|dofvel_ref - dofvel|``                           rad/s
``Root_Vel_Err``       mean over x, y, z of ``|v_ref - v|``                                  m/s
``Root_Ang_Vel_Err``   mean over x, y, z of ``|w_ref - w|``                                  rad/s
=====================  ====================================================================  ======

MimicKit calls the fourth one ``body_rot_err`` in code and ``Pose_Err`` in its log.
All functions are batched over envs and run on any device without Python loops over envs or bodies.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Tuple

import torch
from torch import Tensor

from mimictools.math.rotations import quat_diff_angle

__all__ = [
    "TRACKING_ERROR_KEYS",
    "TrackState",
    "body_pos_err_m",
    "compute_tracking_error",
    "tracking_error_tensor",
]

#: Names of MimicKit's seven tracking errors, in its order (``compute_tracking_error``'s stack).
TRACKING_ERROR_KEYS: Tuple[str, ...] = (
    "Root_Pos_Err",
    "Root_Rot_Err",
    "Body_Pos_Err",
    "Pose_Err",
    "Dof_Vel_Err",
    "Root_Vel_Err",
    "Root_Ang_Vel_Err",
)


@dataclass(frozen=True)
class TrackState:
    """Kinematic state of a batch of characters (simulated or reference). World frame, wxyz.

    ``n`` = batch size, ``nb`` = number of bodies (body 0 = root), ``nd`` = number of DoFs.
    """

    root_pos: Tensor
    """Root position (m). Shape (n, 3)."""
    root_rot: Tensor
    """Root orientation. Shape (n, 4)."""
    root_vel: Tensor
    """Root linear velocity, world frame (m/s). Shape (n, 3)."""
    root_ang_vel: Tensor
    """Root angular velocity, world frame (rad/s). Shape (n, 3)."""
    joint_rot: Tensor
    """Local rotation of every non-root body relative to its parent (identity when welded). Shape (n, nb - 1, 4)."""
    dof_vel: Tensor
    """DoF velocities in motion DoF space (rad/s). Shape (n, nd)."""
    body_pos: Tensor
    """World body origins (m). Shape (n, nb, 3)."""
    body_rot: Tensor
    """World body orientations. Shape (n, nb, 4)."""

    def index(self, ids: Tensor) -> TrackState:
        """The sub-batch ``ids`` (1-D index or bool mask)."""
        return TrackState(
            root_pos=self.root_pos[ids],
            root_rot=self.root_rot[ids],
            root_vel=self.root_vel[ids],
            root_ang_vel=self.root_ang_vel[ids],
            joint_rot=self.joint_rot[ids],
            dof_vel=self.dof_vel[ids],
            body_pos=self.body_pos[ids],
            body_rot=self.body_rot[ids],
        )


def tracking_error_tensor(sim: TrackState, ref: TrackState) -> Tensor:
    """MimicKit's seven tracking errors stacked in `TRACKING_ERROR_KEYS` order. Shape (n, 7)."""
    body_pos = sim.body_pos - sim.root_pos.unsqueeze(-2)
    ref_body_pos = ref.body_pos - ref.root_pos.unsqueeze(-2)

    root_pos_err = torch.linalg.vector_norm(ref.root_pos - sim.root_pos, dim=-1)
    root_rot_err = quat_diff_angle(sim.root_rot, ref.root_rot).abs()
    body_pos_err = torch.linalg.vector_norm(ref_body_pos - body_pos, dim=-1).mean(dim=-1)
    body_rot_err = quat_diff_angle(sim.body_rot, ref.body_rot).abs().mean(dim=-1)
    dof_vel_err = (ref.dof_vel - sim.dof_vel).abs().mean(dim=-1)
    root_vel_err = (ref.root_vel - sim.root_vel).abs().mean(dim=-1)
    root_ang_vel_err = (ref.root_ang_vel - sim.root_ang_vel).abs().mean(dim=-1)
    return torch.stack(
        [root_pos_err, root_rot_err, body_pos_err, body_rot_err, dof_vel_err, root_vel_err, root_ang_vel_err],
        dim=-1,
    )


def compute_tracking_error(sim: TrackState, ref: TrackState) -> Dict[str, Tensor]:
    """MimicKit's seven tracking errors per env, keyed by `TRACKING_ERROR_KEYS`. Each Shape (n,)."""
    errs = tracking_error_tensor(sim, ref)
    return {key: errs[..., i] for i, key in enumerate(TRACKING_ERROR_KEYS)}


def body_pos_err_m(body_pos: Tensor, ref_body_pos: Tensor, root_relative: bool) -> Tensor:
    """Per-body position error (m). Shapes (n, nb, 3) -> (n, nb).

    ``root_relative=True`` subtracts each character's own root position first (MimicKit's
    ``Body_Pos_Err`` averages this over bodies); ``False`` compares world positions.
    """
    if root_relative:
        body_pos = body_pos - body_pos[..., :1, :]
        ref_body_pos = ref_body_pos - ref_body_pos[..., :1, :]
    return torch.linalg.vector_norm(ref_body_pos - body_pos, dim=-1)
