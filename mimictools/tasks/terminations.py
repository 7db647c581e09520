"""DeepMimic episode termination as pure functions of batched tensors (MimicKit's definition).

Checked against xbpeng/MimicKit (commit 15af0bf): ``mimickit/envs/deepmimic_env.py``
(``compute_done``, ``_update_done``), ``mimickit/envs/char_env.py``
(``convert_to_local_root_body_pos``), ``mimickit/envs/sim_env.py`` (``_update_time``) and
``mimickit/engines/isaac_gym_engine.py`` (``get_ground_contact_forces``).

Per env, later rules override earlier ones:

1. ``TIME`` when the episode time reaches ``episode_length`` (s);
2. ``SUCC`` when the reference time reaches the end of a non-looping (clamp) clip;
3. ``FAIL`` (only with ``enable_early_termination``, and only when the episode time is > 0) when
   - a body *not* in ``contact_bodies`` has a ground-contact force component above 0.1 N
     (MimicKit's Isaac Gym engine first zeroes the forces of bodies whose origin is higher than
     ``ground_contact_height``; its MuJoCo/Newton/Isaac Lab engines report ground contacts only and
     skip that rule). With an empty ``contact_bodies`` list this check is off (MimicKit skips it);
   - or, with ``pose_termination``, a body is farther than ``pose_termination_dist`` from its
     reference: world positions when the root is tracked (``enable_tar_obs and global_obs``,
     root distance included), root-relative positions otherwise (in each root's full local frame
     when not ``global_obs``).
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from mimictools.math.rotations import quat_rotate_inv
from mimictools.tasks.env_api import DoneFlag

__all__ = [
    "CONTACT_FORCE_THRESHOLD_N",
    "compute_done",
    "fall_contact",
    "pose_fail",
]

#: A ground-contact force component above this (N) counts as touching the ground (MimicKit: 0.1).
CONTACT_FORCE_THRESHOLD_N = 0.1


def fall_contact(
    contact_forces: Tensor,
    body_pos: Tensor,
    allowed_body_ids: Tensor,
    *,
    force_threshold: float = CONTACT_FORCE_THRESHOLD_N,
    ground_contact_height: Optional[float] = None,
) -> Tensor:
    """True where a body not in ``allowed_body_ids`` touches the ground. Shape (n,) bool.

    ``contact_forces`` (n, nb, 3) ground-contact forces (N); ``body_pos`` (n, nb, 3) world origins;
    ``allowed_body_ids`` (c,) long: the ``contact_bodies``. When c == 0 the check is off (all False),
    as in MimicKit. ``ground_contact_height`` (m): if given, forces on bodies whose origin is
    higher are ignored (MimicKit's Isaac Gym rule).
    """
    n = contact_forces.shape[0]
    if allowed_body_ids.numel() == 0:
        return torch.zeros(n, dtype=torch.bool, device=contact_forces.device)
    touching = (contact_forces.abs() > force_threshold).any(dim=-1)  # (n, nb)
    if ground_contact_height is not None:
        touching = touching & (body_pos[..., 2] <= ground_contact_height)
    touching = touching.index_fill(-1, allowed_body_ids, False)
    return touching.any(dim=-1)


def pose_fail(
    body_pos: Tensor,
    ref_body_pos: Tensor,
    root_rot: Tensor,
    ref_root_rot: Tensor,
    *,
    dist_m: float,
    global_obs: bool,
    track_root: bool,
) -> Tensor:
    """True where some body is farther than ``dist_m`` from its reference. Shape (n,) bool.

    ``body_pos``/``ref_body_pos`` (n, nb, 3) world; ``root_rot``/``ref_root_rot`` (n, 4).
    Not ``global_obs``: non-root bodies relative to their root, in the root's local frame.
    ``global_obs`` without ``track_root``: non-root bodies relative to their root, world-aligned.
    ``global_obs`` with ``track_root``: all bodies in world coordinates, plus the root distance
    (the same test, as in MimicKit).
    """
    root_pos = body_pos[..., :1, :]
    ref_root_pos = ref_body_pos[..., :1, :]
    if not global_obs:
        body = quat_rotate_inv(root_rot.unsqueeze(-2), body_pos[..., 1:, :] - root_pos)
        ref_body = quat_rotate_inv(ref_root_rot.unsqueeze(-2), ref_body_pos[..., 1:, :] - ref_root_pos)
    elif not track_root:
        body = body_pos[..., 1:, :] - root_pos
        ref_body = ref_body_pos[..., 1:, :] - ref_root_pos
    else:
        body, ref_body = body_pos, ref_body_pos
    dist_sq = ((ref_body - body) ** 2).sum(dim=-1).amax(dim=-1)
    fail = dist_sq > dist_m * dist_m
    if track_root:
        root_dist_sq = ((ref_root_pos - root_pos) ** 2).sum(dim=-1).squeeze(-1)
        fail = fail | (root_dist_sq > dist_m * dist_m)
    return fail


def compute_done(
    *,
    time_s: Tensor,
    episode_length_s: float,
    motion_time_s: Tensor,
    motion_length_s: Tensor,
    clamp_clip: Tensor,
    failed: Optional[Tensor] = None,
) -> Tensor:
    """Done flags per env (`DoneFlag` values), Shape (n,) int32.

    ``time_s`` (n,) episode time after the step; ``motion_time_s`` (n,) reference clip time;
    ``motion_length_s`` (n,); ``clamp_clip`` (n,) bool: the clip does not loop (only those can end
    with SUCC); ``failed`` (n,) bool or None: early-termination test (`fall_contact` | `pose_fail`),
    ignored while ``time_s`` is 0 and when None (early termination off).
    """
    done = torch.full(time_s.shape, int(DoneFlag.NULL), dtype=torch.int32, device=time_s.device)
    done = torch.where(time_s >= episode_length_s, torch.full_like(done, int(DoneFlag.TIME)), done)
    motion_end = (motion_time_s >= motion_length_s) & clamp_clip
    done = torch.where(motion_end, torch.full_like(done, int(DoneFlag.SUCC)), done)
    if failed is not None:
        failed = failed & (time_s > 0.0)
        done = torch.where(failed, torch.full_like(done, int(DoneFlag.FAIL)), done)
    return done
