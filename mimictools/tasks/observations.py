"""DeepMimic observations as pure functions of batched tensors (MimicKit's definition and order).

Checked against xbpeng/MimicKit (commit 15af0bf):
``mimickit/envs/char_env.py`` (``compute_char_obs``, ``convert_to_local_body_pos``) and
``mimickit/envs/deepmimic_env.py`` (``compute_deepmimic_obs``, ``compute_tar_obs``,
``compute_phase_obs``, ``_fetch_tar_obs_data``) and ``mimickit/anim/motion_lib.py``
(``calc_motion_phase``).

Layout of one observation row (``global_obs`` and ``root_height_obs`` as in the humanoid config)::

    character  root height (1) | root rot tan-norm (6) | root vel (3) | root ang vel (3)
               | joint rot tan-norm ((nb-1)*6) | dof vel (nd) | key body pos - root pos (k*3)
    phase      phase (1) | sin (m) | cos (m)                       only when enable_phase_obs
    targets    per future step s: root pos diff (3, or 2 without root_height_obs)
               | root rot tan-norm (6) | joint rot tan-norm ((nb-1)*6) | key pos - ref root (k*3)

For MimicKit's humanoid (15 bodies, 28 DoFs, 5 key bodies, 3 target steps):
140 + 3 * 108 = **464** values.

Frames: with ``global_obs`` everything is in the world frame (no rotation is applied; target root
positions are relative to the simulated root). Without it, the character part is expressed in the
heading frame of the simulated root (rotation about z only) and the target part in the heading frame
of the *first* target frame, with target root positions relative to that first target root
(so the first one's x, y are 0): the whole observation is then invariant to rotating and
translating the scene about the vertical axis.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Tuple

import torch
from torch import Tensor

from mimictools.math.rotations import heading_quat_inv, quat_mul, quat_rotate

__all__ = [
    "ObsConfig",
    "compute_char_obs",
    "compute_deepmimic_obs",
    "compute_phase_obs",
    "compute_tar_obs",
    "deepmimic_obs_size",
    "motion_phase",
    "tan_norm",
]


@dataclass(frozen=True)
class ObsConfig:
    """The observation switches of MimicKit's env YAML (see `mimictools.config.schema.EnvConfig`)."""

    global_obs: bool = True
    root_height_obs: bool = True
    enable_phase_obs: bool = False
    num_phase_encoding: int = 4
    enable_tar_obs: bool = True
    tar_obs_steps: Tuple[int, ...] = (1, 2, 3)

    @classmethod
    def from_env_config(cls, cfg) -> ObsConfig:  # cfg: mimictools.config.schema.EnvConfig
        return cls(
            global_obs=bool(cfg.global_obs),
            root_height_obs=bool(cfg.root_height_obs),
            enable_phase_obs=bool(cfg.enable_phase_obs),
            num_phase_encoding=int(cfg.num_phase_encoding),
            enable_tar_obs=bool(cfg.enable_tar_obs),
            tar_obs_steps=tuple(int(s) for s in cfg.tar_obs_steps),
        )


def deepmimic_obs_size(cfg: ObsConfig, num_bodies: int, num_dofs: int, num_key_bodies: int) -> int:
    """Length of one observation row. MimicKit's humanoid with its default config: 464."""
    joints = (num_bodies - 1) * 6
    size = (1 if cfg.root_height_obs else 0) + 6 + 3 + 3 + joints + num_dofs + 3 * num_key_bodies
    if cfg.enable_phase_obs:
        size += 1 + (2 * cfg.num_phase_encoding if cfg.num_phase_encoding > 0 else 0)
    if cfg.enable_tar_obs:
        per_step = (3 if cfg.root_height_obs else 2) + 6 + joints + 3 * num_key_bodies
        size += len(cfg.tar_obs_steps) * per_step
    return size


_TAN_NORM_AXES = ((1.0, 0.0, 0.0), (0.0, 0.0, 1.0))  # x (tangent), then z (normal)


def tan_norm(q: Tensor) -> Tensor:
    """`mimictools.math.rotations.quat_to_tan_norm` with one `quat_rotate` of both axes: (..., 4) -> (..., 6).

    The same elementwise arithmetic, so bitwise the same values (tested), with half the tensor ops:
    this runs on every root and joint rotation of every observation.
    """
    # rows 0 and 2 of the identity = _TAN_NORM_AXES, made on the device (no host->device copy: this runs
    # inside captured CUDA graphs, where copies from pageable host memory are not allowed)
    axes = torch.eye(3, dtype=q.dtype, device=q.device)[::2]
    return quat_rotate(q.unsqueeze(-2), axes.expand(q.shape[:-1] + (2, 3))).flatten(-2)


def _root_joint_tan_norm(root_rot: Tensor, joint_rot: Tensor) -> Tuple[Tensor, Tensor]:
    """Tan-norms of a root rotation (..., 4) and joint rotations (..., m, 4) in one batch:
    returns ((..., 6), (..., m*6))."""
    tn = tan_norm(torch.cat([root_rot.unsqueeze(-2), joint_rot], dim=-2))
    return tn[..., 0, :], tn[..., 1:, :].flatten(-2)


def compute_char_obs(
    root_pos: Tensor,
    root_rot: Tensor,
    root_vel: Tensor,
    root_ang_vel: Tensor,
    joint_rot: Tensor,
    dof_vel: Tensor,
    key_pos: Tensor,
    *,
    global_obs: bool,
    root_height_obs: bool,
) -> Tensor:
    """The simulated character's part of the observation (MimicKit ``char_env.compute_char_obs``).

    Shapes: root_pos/vel/ang_vel (n, 3), root_rot (n, 4), joint_rot (n, nb-1, 4), dof_vel (n, nd),
    key_pos (n, k, 3) world positions (k may be 0). Returns (n, [1] + 12 + 6*(nb-1) + nd + 3k).
    Without ``global_obs`` the root rotation, velocities and key positions are rotated into the
    root's heading frame; joint rotations and DoF velocities are local anyway.
    """
    key_rel = key_pos - root_pos.unsqueeze(-2)
    if global_obs:
        root_rot_obs = root_rot
        root_vel_obs = root_vel
        root_ang_vel_obs = root_ang_vel
    else:
        heading_inv = heading_quat_inv(root_rot)
        root_rot_obs = quat_mul(heading_inv, root_rot)
        root_vel_obs = quat_rotate(heading_inv, root_vel)
        root_ang_vel_obs = quat_rotate(heading_inv, root_ang_vel)
        key_rel = quat_rotate(heading_inv.unsqueeze(-2), key_rel)

    root_tn, joint_tn = _root_joint_tan_norm(root_rot_obs, joint_rot)
    parts = [
        root_tn,
        root_vel_obs,
        root_ang_vel_obs,
        joint_tn,
        dof_vel,
        key_rel.reshape(key_rel.shape[0], -1),
    ]
    if root_height_obs:
        parts.insert(0, root_pos[..., 2:3])
    return torch.cat(parts, dim=-1)


def motion_phase(time_s: Tensor, length_s: Tensor, wrap: Tensor) -> Tensor:
    """Motion phase in [0, 1] (MimicKit ``MotionLib.calc_motion_phase``).

    ``time_s / length_s``, wrapped to [0, 1) for looping clips (``wrap`` True), clipped to [0, 1].
    All shapes (n,).
    """
    phase = time_s / length_s
    phase = torch.where(wrap, phase - torch.floor(phase), phase)
    return phase.clamp(0.0, 1.0)


def compute_phase_obs(phase: Tensor, num_phase_encoding: int) -> Tensor:
    """Phase and its sinusoidal encoding (MimicKit ``compute_phase_obs``). (n,) -> (n, 1 + 2m).

    Frequencies ``2 pi 2^i`` for i < m = ``num_phase_encoding``: ``[phase, sin(...) x m, cos(...) x m]``.
    """
    obs = phase.unsqueeze(-1)
    if num_phase_encoding <= 0:
        return obs
    exps = torch.arange(num_phase_encoding, device=phase.device, dtype=phase.dtype)
    val = obs * (2.0 * math.pi * torch.pow(2.0, exps))
    return torch.cat([obs, torch.sin(val), torch.cos(val)], dim=-1)


def compute_tar_obs(
    ref_root_pos: Tensor,
    ref_root_rot: Tensor,
    tar_root_pos: Tensor,
    tar_root_rot: Tensor,
    tar_joint_rot: Tensor,
    tar_key_pos: Tensor,
    *,
    global_obs: bool,
    root_height_obs: bool,
) -> Tensor:
    """Future reference frames relative to a reference root (MimicKit ``compute_tar_obs``).

    Shapes: ref_root_pos (n, 3), ref_root_rot (n, 4), tar_root_pos (n, s, 3), tar_root_rot (n, s, 4),
    tar_joint_rot (n, s, nb-1, 4), tar_key_pos (n, s, k, 3) world positions.
    Returns (n, s, 3|2 + 6 + 6*(nb-1) + 3k): root position difference (z replaced by the absolute
    target root height when ``root_height_obs``, dropped otherwise), target root rotation tan-norm,
    joint rotations tan-norm, key positions relative to each target's own root.
    Without ``global_obs`` positions and root rotations are rotated by the inverse heading of
    ``ref_root_rot``.
    """
    root_pos_obs = tar_root_pos - ref_root_pos.unsqueeze(-2)
    key_rel = tar_key_pos - tar_root_pos.unsqueeze(-2)
    root_rot = tar_root_rot
    if not global_obs:
        heading_inv = heading_quat_inv(ref_root_rot).unsqueeze(-2)  # (n, 1, 4)
        root_pos_obs = quat_rotate(heading_inv, root_pos_obs)
        root_rot = quat_mul(heading_inv, tar_root_rot)
        key_rel = quat_rotate(heading_inv.unsqueeze(-2), key_rel)

    if root_height_obs:
        root_pos_obs = torch.cat([root_pos_obs[..., :2], tar_root_pos[..., 2:3]], dim=-1)
    else:
        root_pos_obs = root_pos_obs[..., :2]

    root_tn, joint_tn = _root_joint_tan_norm(root_rot, tar_joint_rot)
    return torch.cat(
        [root_pos_obs, root_tn, joint_tn, key_rel.reshape(key_rel.shape[:2] + (-1,))],
        dim=-1,
    )


def compute_deepmimic_obs(
    cfg: ObsConfig,
    root_pos: Tensor,
    root_rot: Tensor,
    root_vel: Tensor,
    root_ang_vel: Tensor,
    joint_rot: Tensor,
    dof_vel: Tensor,
    key_pos: Tensor,
    *,
    phase: Optional[Tensor] = None,
    tar_root_pos: Optional[Tensor] = None,
    tar_root_rot: Optional[Tensor] = None,
    tar_joint_rot: Optional[Tensor] = None,
    tar_key_pos: Optional[Tensor] = None,
) -> Tensor:
    """The full DeepMimic observation (MimicKit ``compute_deepmimic_obs``). Shape (n, `deepmimic_obs_size`).

    Character part from the simulated state (see `compute_char_obs`), then the phase encoding
    (``phase`` (n,) required when ``cfg.enable_phase_obs``), then the target frames flattened
    step-major (``tar_*`` required when ``cfg.enable_tar_obs``; see `compute_tar_obs`). The target
    part is relative to the simulated root with ``global_obs``, else to the first target frame.
    """
    obs = [
        compute_char_obs(
            root_pos,
            root_rot,
            root_vel,
            root_ang_vel,
            joint_rot,
            dof_vel,
            key_pos,
            global_obs=cfg.global_obs,
            root_height_obs=cfg.root_height_obs,
        )
    ]
    if cfg.enable_phase_obs:
        if phase is None:
            raise ValueError("enable_phase_obs is set but no phase was given")
        obs.append(compute_phase_obs(phase, cfg.num_phase_encoding))
    if cfg.enable_tar_obs:
        if tar_root_pos is None or tar_root_rot is None or tar_joint_rot is None or tar_key_pos is None:
            raise ValueError("enable_tar_obs is set but the target frames were not given")
        if cfg.global_obs:
            ref_root_pos, ref_root_rot = root_pos, root_rot
        else:
            ref_root_pos, ref_root_rot = tar_root_pos[:, 0], tar_root_rot[:, 0]
        tar = compute_tar_obs(
            ref_root_pos,
            ref_root_rot,
            tar_root_pos,
            tar_root_rot,
            tar_joint_rot,
            tar_key_pos,
            global_obs=cfg.global_obs,
            root_height_obs=cfg.root_height_obs,
        )
        obs.append(tar.reshape(tar.shape[0], -1))
    return torch.cat(obs, dim=-1)
