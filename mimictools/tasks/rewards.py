"""DeepMimic imitation reward as pure functions of batched tensors (MimicKit's definition).

Checked against xbpeng/MimicKit ``mimickit/envs/deepmimic_env.py`` (commit 15af0bf):
``compute_reward``, ``_parse_joint_err_weights`` and ``_update_reward``::

    r = pose_w      * exp(-pose_scale      * sum_j w_j * angle_j^2)
      + vel_w       * exp(-vel_scale       * sum_d w_d * (dofvel_ref_d - dofvel_d)^2)
      + root_pose_w * exp(-root_pose_scale * (|p_ref - p|^2 + 0.1 * angle(root_ref, root)^2))
      + root_vel_w  * exp(-root_vel_scale  * (|v_ref - v|^2 + 0.1 * |w_ref - w|^2))
      + key_pos_w   * exp(-key_pos_scale   * sum_k |(x_ref_k - p_ref) - (x_k - p)|^2)

- ``angle_j`` is the angle between simulated and reference local rotation of non-root body j;
  ``w_j`` is ``joint_err_w`` (one per non-root body, welded bodies included); ``w_d`` repeats the
  weight of a joint's body for each of its DoFs.
- ``track_root`` (= ``enable_tar_obs and global_obs``): without it the root x, y error is zeroed and
  root rotation, velocities and key positions are compared in each character's heading frame.
  ``track_root_h`` (= ``root_height_obs``): without it the root height error is zeroed.
- Key positions are relative to each character's own root.

Perfect tracking gives the sum of the weights (1.0 with MimicKit's humanoid config).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Dict, Optional, Sequence

import torch
from torch import Tensor

from mimictools.errors import ConfigError
from mimictools.math.rotations import heading_quat_inv, quat_diff_angle, quat_mul, quat_rotate
from mimictools.tasks.tracking import TrackState

if TYPE_CHECKING:  # pragma: no cover
    from mimictools.character.model import Character

__all__ = [
    "REWARD_TERMS",
    "RewardWeights",
    "compute_deepmimic_reward",
    "deepmimic_reward_terms",
    "dof_err_weights",
    "joint_err_weights",
]

#: Names of the five reward terms, in MimicKit's order.
REWARD_TERMS = ("pose", "vel", "root_pose", "root_vel", "key_pos")


@dataclass(frozen=True)
class RewardWeights:
    """Weights and scales of the reward terms (MimicKit keys ``reward_<term>_w`` / ``reward_<term>_scale``)."""

    pose_w: float = 0.5
    vel_w: float = 0.1
    root_pose_w: float = 0.15
    root_vel_w: float = 0.1
    key_pos_w: float = 0.15
    pose_scale: float = 0.25
    vel_scale: float = 0.01
    root_pose_scale: float = 5.0
    root_vel_scale: float = 1.0
    key_pos_scale: float = 10.0

    @classmethod
    def from_env_config(cls, cfg) -> RewardWeights:  # cfg: mimictools.config.schema.EnvConfig
        return cls(
            pose_w=float(cfg.reward_pose_w),
            vel_w=float(cfg.reward_vel_w),
            root_pose_w=float(cfg.reward_root_pose_w),
            root_vel_w=float(cfg.reward_root_vel_w),
            key_pos_w=float(cfg.reward_key_pos_w),
            pose_scale=float(cfg.reward_pose_scale),
            vel_scale=float(cfg.reward_vel_scale),
            root_pose_scale=float(cfg.reward_root_pose_scale),
            root_vel_scale=float(cfg.reward_root_vel_scale),
            key_pos_scale=float(cfg.reward_key_pos_scale),
        )

    @property
    def max_reward(self) -> float:
        """Reward of perfect tracking: the sum of the five weights."""
        return self.pose_w + self.vel_w + self.root_pose_w + self.root_vel_w + self.key_pos_w


def joint_err_weights(char: Character, joint_err_w: Optional[Sequence[float]], device=None) -> Tensor:
    """Per non-root body weight of the pose error. Shape (num_bodies - 1,), float32.

    ``None`` means all ones (MimicKit's default). Otherwise one value per non-root body in the
    character's body order (MimicKit's humanoid: 14, hands included).

    Raises:
        ConfigError: wrong length or a negative / non-finite weight.
    """
    n = char.num_bodies - 1
    if joint_err_w is None:
        return torch.ones(n, dtype=torch.float32, device=device)
    w = torch.tensor([float(x) for x in joint_err_w], dtype=torch.float32, device=device)
    if w.shape[0] != n:
        names = ", ".join(char.body_names[1:])
        raise ConfigError(
            f"joint_err_w has {w.shape[0]} values but {char.source} has {n} non-root bodies "
            f"(one weight each, in this order: {names})"
        )
    if not bool(torch.isfinite(w).all()) or bool((w < 0).any()):
        raise ConfigError(f"joint_err_w must be finite and >= 0, got {list(joint_err_w)}")
    return w


def dof_err_weights(char: Character, joint_w: Tensor) -> Tensor:
    """Expand per-body weights (num_bodies - 1,) to per-DoF weights (num_dofs,), as MimicKit does."""
    body_of_dof = []
    for j in char.joints:
        body_of_dof.extend([j.body - 1] * j.dof_count)
    idx = torch.tensor(body_of_dof, dtype=torch.long, device=joint_w.device)
    return joint_w[idx]


def _to_heading_frame(root_rot: Tensor, root_vel: Tensor, root_ang_vel: Tensor, key_rel: Tensor):
    """MimicKit ``convert_to_local``: rotate by the inverse heading of ``root_rot``."""
    h = heading_quat_inv(root_rot)
    return (
        quat_mul(h, root_rot),
        quat_rotate(h, root_vel),
        quat_rotate(h, root_ang_vel),
        quat_rotate(h.unsqueeze(-2), key_rel),
    )


def deepmimic_reward_terms(
    sim: TrackState,
    ref: TrackState,
    *,
    key_body_ids: Tensor,
    joint_w: Tensor,
    dof_w: Tensor,
    weights: RewardWeights,
    track_root: bool,
    track_root_h: bool,
) -> Dict[str, Tensor]:
    """The five un-weighted reward terms ``exp(-scale * err)`` in [0, 1], keyed by `REWARD_TERMS`. Each (n,).

    ``key_body_ids`` (k,) long (k may be 0: the key term is then 1); ``joint_w`` (nb-1,);
    ``dof_w`` (nd,) (see `joint_err_weights`, `dof_err_weights`).
    """

    vel_diff = ref.dof_vel - sim.dof_vel
    vel_err = (dof_w * vel_diff * vel_diff).sum(dim=-1)

    root_pos_sq = (ref.root_pos - sim.root_pos) ** 2
    root_pos_err = torch.zeros_like(root_pos_sq[..., 0])
    if track_root:
        root_pos_err = root_pos_err + root_pos_sq[..., 0] + root_pos_sq[..., 1]
    if track_root_h:
        root_pos_err = root_pos_err + root_pos_sq[..., 2]

    key_pos = sim.body_pos.index_select(-2, key_body_ids) - sim.root_pos.unsqueeze(-2)
    ref_key_pos = ref.body_pos.index_select(-2, key_body_ids) - ref.root_pos.unsqueeze(-2)

    root_rot, root_vel, root_ang_vel = sim.root_rot, sim.root_vel, sim.root_ang_vel
    ref_root_rot, ref_root_vel, ref_root_ang_vel = ref.root_rot, ref.root_vel, ref.root_ang_vel
    if not track_root:
        root_rot, root_vel, root_ang_vel, key_pos = _to_heading_frame(
            root_rot, root_vel, root_ang_vel, key_pos
        )
        ref_root_rot, ref_root_vel, ref_root_ang_vel, ref_key_pos = _to_heading_frame(
            ref_root_rot, ref_root_vel, ref_root_ang_vel, ref_key_pos
        )

    # the root's and the joints' rotation angles in one batch (elementwise: the same values as two calls, with
    # half the tensor ops; each is a GPU kernel in the training step)
    rot_diff = quat_diff_angle(
        torch.cat([root_rot.unsqueeze(-2), sim.joint_rot], dim=-2),
        torch.cat([ref_root_rot.unsqueeze(-2), ref.joint_rot], dim=-2),
    )
    pose_diff = rot_diff[..., 1:]
    pose_err = (joint_w * pose_diff * pose_diff).sum(dim=-1)
    root_rot_err = rot_diff[..., 0] ** 2
    root_vel_err = ((ref_root_vel - root_vel) ** 2).sum(dim=-1)
    root_ang_vel_err = ((ref_root_ang_vel - root_ang_vel) ** 2).sum(dim=-1)
    key_pos_err = ((ref_key_pos - key_pos) ** 2).sum(dim=-1).sum(dim=-1)

    w = weights
    return {
        "pose": torch.exp(-w.pose_scale * pose_err),
        "vel": torch.exp(-w.vel_scale * vel_err),
        "root_pose": torch.exp(-w.root_pose_scale * (root_pos_err + 0.1 * root_rot_err)),
        "root_vel": torch.exp(-w.root_vel_scale * (root_vel_err + 0.1 * root_ang_vel_err)),
        "key_pos": torch.exp(-w.key_pos_scale * key_pos_err),
    }


def compute_deepmimic_reward(
    sim: TrackState,
    ref: TrackState,
    *,
    key_body_ids: Tensor,
    joint_w: Tensor,
    dof_w: Tensor,
    weights: RewardWeights,
    track_root: bool,
    track_root_h: bool,
) -> Tensor:
    """MimicKit's DeepMimic reward per env. Shape (n,). See the module docstring for the formula."""
    terms = deepmimic_reward_terms(
        sim,
        ref,
        key_body_ids=key_body_ids,
        joint_w=joint_w,
        dof_w=dof_w,
        weights=weights,
        track_root=track_root,
        track_root_h=track_root_h,
    )
    w = weights
    return (
        w.pose_w * terms["pose"]
        + w.vel_w * terms["vel"]
        + w.root_pose_w * terms["root_pose"]
        + w.root_vel_w * terms["root_vel"]
        + w.key_pos_w * terms["key_pos"]
    )
