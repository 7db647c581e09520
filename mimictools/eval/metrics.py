"""Evaluation metrics of a tracking policy: per-frame errors of an episode and their summary.

The seven tracking errors are MimicKit's, computed by `mimictools.tasks.tracking` (the same code the
training log uses, so ``mimic eval`` numbers compare directly with a ``log.txt`` or MimicKit's own
log). On top of them, for people:

=============================  ===================================================================  =====
per frame                      definition                                                           unit
=============================  ===================================================================  =====
``body_pos_err_m``             per body ``|p_ref_b - p_b|``, world positions                        m
``body_pos_err_local_m``       per body ``|(p_ref_b - p_ref_root) - (p_b - p_root)|`` (root-relative,  m
                               world-aligned; its mean over bodies is MimicKit's ``Body_Pos_Err``)
``joint_rot_err_rad``          per joint, angle between simulated and reference *local* rotation    rad
                               (the joint's child body relative to its parent)
=============================  ===================================================================  =====

Success means "tracked the clip" (docs/eval.md#success): an episode succeeds when the env did not end it
early (fall contact / pose termination), its mean over frames of MimicKit's ``Body_Pos_Err`` is at most
``success_max_err_m`` (7.5 cm; the rule of the training log's ``Test_Success``,
`mimictools.tasks.env_api.episode_tracked`), and (the rule of PHC / later tracking papers) its mean (over
bodies) world body position error never exceeds ``fail_dist_m`` (0.5 m). Every mean in `summarize` is over all evaluated frames of all
episodes (frame-weighted, as MimicKit averages its test errors over env-steps).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor

from mimictools.errors import MimicToolsError
from mimictools.eval.logs import TRACKING_ERROR_UNITS
from mimictools.math.rotations import quat_diff_angle
from mimictools.tasks.env_api import SUCCESS_ERR_KEY, SUCCESS_MAX_ERR_M, episode_tracked
from mimictools.tasks.tracking import TRACKING_ERROR_KEYS, TrackState, body_pos_err_m, tracking_error_tensor

__all__ = [
    "DEFAULT_FAIL_DIST_M",
    "TRACKING_ERROR_UNITS",
    "EpisodeErrors",
    "FrameErrors",
    "compute_frame_errors",
    "episode_outcome",
    "joint_angle_channels",
    "joint_angles_rad",
    "joint_rot_err_rad",
    "summarize",
]

#: An episode fails when its mean world body position error exceeds this at any frame (m).
DEFAULT_FAIL_DIST_M = 0.5


@dataclass(frozen=True)
class FrameErrors:
    """Per-frame errors of one episode (numpy float64). ``T`` frames, ``nb`` bodies, ``nj`` joints."""

    tracking: np.ndarray
    """MimicKit's seven tracking errors in `TRACKING_ERROR_KEYS` order. Shape (T, 7)."""
    body_pos_err_m: np.ndarray
    """World body position error (m). Shape (T, nb)."""
    body_pos_err_local_m: np.ndarray
    """Root-relative body position error (m). Shape (T, nb)."""
    joint_rot_err_rad: np.ndarray
    """Local joint rotation error (rad), joints in ``Character.joints`` order. Shape (T, nj)."""

    @property
    def num_frames(self) -> int:
        return int(self.tracking.shape[0])

    def tracking_error(self, key: str) -> np.ndarray:
        """One of MimicKit's errors per frame, e.g. ``"Body_Pos_Err"``. Shape (T,)."""
        if key not in TRACKING_ERROR_KEYS:
            raise MimicToolsError(f"unknown tracking error {key!r}; valid: {', '.join(TRACKING_ERROR_KEYS)}")
        return self.tracking[:, TRACKING_ERROR_KEYS.index(key)]


@dataclass(frozen=True)
class EpisodeErrors:
    """What `summarize` needs of one evaluated episode."""

    clip: str
    """Clip name (file stem)."""
    start_time_s: float
    """Clip time at which the episode started (s)."""
    early_termination: bool
    """The env ended the episode with a failure (fall contact or pose termination)."""
    rewards: np.ndarray
    """Reward per control step. Shape (T,)."""
    errors: FrameErrors
    control_dt: float
    """Seconds per frame."""


def joint_rot_err_rad(char, sim_joint_rot: Tensor, ref_joint_rot: Tensor) -> Tensor:
    """Angle (rad) between simulated and reference local rotation of each joint of ``char``.

    ``*_joint_rot`` are `TrackState.joint_rot`, Shape (..., nb - 1, 4) (body b's rotation at b - 1).
    Returns Shape (..., len(char.joints)), joints in ``char.joints`` order.
    """
    idx = torch.tensor([j.body - 1 for j in char.joints], dtype=torch.long, device=sim_joint_rot.device)
    sim = sim_joint_rot.index_select(-2, idx)
    ref = ref_joint_rot.index_select(-2, idx)
    return quat_diff_angle(sim, ref).abs()


def compute_frame_errors(char, sim: TrackState, ref: TrackState) -> FrameErrors:
    """Per-frame errors of a trajectory: ``sim``/``ref`` are batched over frames (n = T)."""
    with torch.no_grad():
        tracking = tracking_error_tensor(sim, ref)
        glob = body_pos_err_m(sim.body_pos, ref.body_pos, root_relative=False)
        local = body_pos_err_m(sim.body_pos, ref.body_pos, root_relative=True)
        joint = joint_rot_err_rad(char, sim.joint_rot, ref.joint_rot)

    def np64(t: Tensor) -> np.ndarray:
        return t.detach().to("cpu", torch.float64).numpy()

    return FrameErrors(np64(tracking), np64(glob), np64(local), np64(joint))


def episode_outcome(
    mean_body_pos_err_m: np.ndarray,
    early_termination: bool,
    fail_dist_m: float = DEFAULT_FAIL_DIST_M,
    tracking_err_m: Optional[float] = None,
    success_max_err_m: float = SUCCESS_MAX_ERR_M,
) -> Tuple[bool, str]:
    """``(success, reason)`` of one episode.

    ``mean_body_pos_err_m`` Shape (T,): the mean over bodies of the world body position error per
    frame; ``tracking_err_m``: the episode's mean ``Body_Pos_Err`` over its frames (m; None skips that rule).
    Fails when the env terminated the episode early (reason ``"early_termination"``, takes precedence), when
    the world error exceeds ``fail_dist_m`` at any frame (``"body_pos_err"``), or when ``tracking_err_m``
    exceeds ``success_max_err_m`` (``"tracking_err"``: it did not track the clip); success has reason ``"ok"``.
    """
    if early_termination:
        return False, "early_termination"
    if mean_body_pos_err_m.size and float(np.max(mean_body_pos_err_m)) > fail_dist_m:
        return False, "body_pos_err"
    if tracking_err_m is not None and not episode_tracked(float(tracking_err_m), False, success_max_err_m):
        return False, "tracking_err"
    return True, "ok"


def _mean(x: np.ndarray) -> float:
    return float(np.mean(x)) if x.size else float("nan")


def summarize(
    episodes: Sequence[EpisodeErrors],
    body_names: Sequence[str],
    joint_names: Sequence[str],
    fail_dist_m: float = DEFAULT_FAIL_DIST_M,
    success_max_err_m: float = SUCCESS_MAX_ERR_M,
) -> Dict[str, Any]:
    """Aggregate metrics of evaluated episodes as a JSON-ready dict (see docs/eval.md for the keys).

    Means are frame-weighted over all episodes; returns and lengths are per-episode means.
    """
    if not episodes:
        raise MimicToolsError("no episode was evaluated")
    tracking = np.concatenate([e.errors.tracking for e in episodes], axis=0)
    glob = np.concatenate([e.errors.body_pos_err_m for e in episodes], axis=0)
    local = np.concatenate([e.errors.body_pos_err_local_m for e in episodes], axis=0)
    joint = np.concatenate([e.errors.joint_rot_err_rad for e in episodes], axis=0)
    if glob.shape[1] != len(body_names) or joint.shape[1] != len(joint_names):
        raise MimicToolsError(
            f"errors have {glob.shape[1]} bodies / {joint.shape[1]} joints but {len(body_names)} body names / "
            f"{len(joint_names)} joint names were given"
        )

    details: List[Dict[str, Any]] = []
    for i, e in enumerate(episodes):
        mean_glob = e.errors.body_pos_err_m.mean(axis=1) if e.errors.num_frames else np.zeros(0)
        track_err = _mean(e.errors.tracking_error(SUCCESS_ERR_KEY))
        ok, reason = episode_outcome(
            mean_glob,
            e.early_termination,
            fail_dist_m,
            track_err if e.errors.num_frames else None,
            success_max_err_m,
        )
        details.append(
            {
                "episode": i,
                "clip": e.clip,
                "start_time_s": float(e.start_time_s),
                "length_steps": e.errors.num_frames,
                "length_s": e.errors.num_frames * float(e.control_dt),
                "return": float(np.sum(e.rewards)),
                "success": ok,
                "end": reason,
                "max_mean_body_pos_err_m": float(mean_glob.max()) if mean_glob.size else 0.0,
                "body_pos_err_mm": 1000.0 * _mean(mean_glob),
                "Body_Pos_Err": _mean(e.errors.tracking_error("Body_Pos_Err")),
            }
        )
    returns = np.array([d["return"] for d in details])
    lengths = np.array([d["length_steps"] for d in details], dtype=np.float64)
    successes = np.array([d["success"] for d in details])
    frames = max(int(tracking.shape[0]), 1)

    out: Dict[str, Any] = {
        "episodes": len(episodes),
        "frames": int(tracking.shape[0]),
        "success_rate": float(successes.mean()),
        "failures": {
            "early_termination": sum(d["end"] == "early_termination" for d in details),
            "body_pos_err": sum(d["end"] == "body_pos_err" for d in details),
            "tracking_err": sum(d["end"] == "tracking_err" for d in details),
        },
        "fail_dist_m": float(fail_dist_m),
        "success_max_err_m": float(success_max_err_m),
        "tracking_errors": {k: _mean(tracking[:, i]) for i, k in enumerate(TRACKING_ERROR_KEYS)},
        "tracking_error_units": dict(TRACKING_ERROR_UNITS),
        "body_pos_err_mm": {"global": 1000.0 * _mean(glob), "root_relative": 1000.0 * _mean(local)},
        "return": {
            "mean": float(returns.mean()),
            "std": float(returns.std()),
            "per_step": float(returns.sum() / frames),
        },
        "episode_length": {
            "mean_steps": float(lengths.mean()),
            "mean_s": float(np.mean([d["length_s"] for d in details])),
        },
        "per_body": {
            name: {
                "pos_err_mm": 1000.0 * _mean(glob[:, b]),
                "pos_err_local_mm": 1000.0 * _mean(local[:, b]),
            }
            for b, name in enumerate(body_names)
        },
        "per_joint": {
            name: {"rot_err_deg": float(np.degrees(_mean(joint[:, j])))} for j, name in enumerate(joint_names)
        },
    }
    clips = sorted({e.clip for e in episodes})
    if len(clips) > 1:
        per_clip: Dict[str, Any] = {}
        for clip in clips:
            sel = [i for i, e in enumerate(episodes) if e.clip == clip]
            trk = np.concatenate([episodes[i].errors.tracking for i in sel], axis=0)
            g = np.concatenate([episodes[i].errors.body_pos_err_m for i in sel], axis=0)
            per_clip[clip] = {
                "episodes": len(sel),
                "success_rate": float(np.mean([details[i]["success"] for i in sel])),
                "return_mean": float(np.mean([details[i]["return"] for i in sel])),
                "body_pos_err_mm": 1000.0 * _mean(g),
                "tracking_errors": {k: _mean(trk[:, i]) for i, k in enumerate(TRACKING_ERROR_KEYS)},
            }
        out["per_clip"] = per_clip
    out["episode_details"] = details
    return out


# ------------------------------------------------------------------------------- joint angles


def joint_angle_channels(char) -> List[Tuple[str, str, int]]:
    """Named joint-angle channels a person can plot: ``(name, source, column)``.

    Hinges (single hinges and each hinge of a hinge triple, named as in the MJCF, e.g. ``right_knee``,
    ``right_hip_y``) read the MuJoCo hinge angle: ``source`` ``"qpos"``, ``column`` its index in the
    Character-layout qpos (`mimictools.character.kinematics.dof_to_qpos`). Ball joints have no angles;
    their channels ``<joint>_x/_y/_z`` are the exponential-map components (``source`` ``"dof"``).
    """
    out: List[Tuple[str, str, int]] = []
    qpos_col = 7
    for j in char.joints:
        if j.is_ball:
            out.extend((f"{j.name}_{a}", "dof", j.dof_offset + k) for k, a in enumerate("xyz"))
            qpos_col += 4
        else:
            for k, name in enumerate(j.mjcf_joints):
                out.append((name, "qpos", qpos_col + k))
            qpos_col += len(j.mjcf_joints)
    return out


def joint_angles_rad(char, qpos: np.ndarray, dof_pos: np.ndarray, names: Sequence[str]) -> np.ndarray:
    """Angles (rad) of channels ``names`` (see `joint_angle_channels`). ``qpos`` Shape (T, num_qpos)
    Character layout, ``dof_pos`` Shape (T, num_dofs). Returns Shape (T, len(names))."""
    channels = {name: (src, col) for name, src, col in joint_angle_channels(char)}
    cols = []
    for name in names:
        if name not in channels:
            raise MimicToolsError(
                f"no joint angle named {name!r} on {char.source}; valid: {', '.join(channels)}"
            )
        src, col = channels[name]
        cols.append(qpos[:, col] if src == "qpos" else dof_pos[:, col])
    return np.stack(cols, axis=-1) if cols else np.zeros((qpos.shape[0], 0))
