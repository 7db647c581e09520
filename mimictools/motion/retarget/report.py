"""Quality of a retargeted clip: tracking error, joint limits, ground, foot sliding, speed; and a PNG.

``quality_report(result, char)`` recomputes everything from the *saved* frames (float32, through the
library's FK and ``dof_to_qpos``, i.e. what training will see), not from the solver's internal state.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import torch

from mimictools.character.model import Character
from mimictools.motion.retarget.solve import RetargetResult

__all__ = ["RetargetReport", "plot_report", "quality_report"]

LIMIT_TOL_RAD = 1e-6
"""A hinge angle further than this outside its range counts as a violation (float32 round-off is ~1e-7)."""
PENETRATION_TOL_M = 1e-4
"""A frame whose lowest geom is deeper than this below z = 0 counts as penetrating."""


@dataclass(frozen=True)
class RetargetReport:
    """Numbers for one retargeted clip (units in the names)."""

    source: str
    target: str
    output: str
    mapping: str
    """Mapping name (a preset's name, or the file's ``name:``)."""
    mapping_file: str
    num_frames: int
    fps: float
    source_frames: int
    source_fps: float
    scale: float
    ground_shift_cm: float
    pos_err_mean_cm: float
    """Mean over frames and mapped points of |achieved - scaled source target|."""
    pos_err_max_cm: float
    pos_err_mean_cm_per_point: Dict[str, float]
    pos_err_max_cm_per_point: Dict[str, float]
    limit_violations: int
    """(frame, hinge) pairs outside the MJCF range (after the library's dof_to_qpos): must be 0."""
    limit_violation_max_rad: float
    penetration_max_cm: float
    """Deepest geom point below z = 0 over the clip (0 = none)."""
    penetration_frames: int
    lift_max_cm: float
    """Largest final lift the solver applied to clear the ground."""
    contact_frames: int
    """Frames with at least one foot point in contact."""
    foot_slide_cm_s: float
    """Mean horizontal speed of foot points while in contact (retargeted)."""
    source_foot_slide_cm_s: float
    """The same for the scaled source targets (for comparison)."""
    finite: bool
    time_s: float
    solve_time_s: float
    frames_per_s: float
    notes: Tuple[str, ...]

    def to_dict(self) -> Dict[str, Any]:
        d = asdict(self)
        d["notes"] = list(self.notes)
        return d


def _entry_points(
    char: Character, frames: np.ndarray, result: RetargetResult
) -> Tuple[np.ndarray, torch.Tensor, torch.Tensor]:
    from mimictools.character.kinematics import frames_to_body_poses
    from mimictools.math.rotations import quat_rotate

    f = torch.as_tensor(frames, dtype=torch.float64)
    bp, br = frames_to_body_poses(char, f)
    eb = list(result.entry_body)
    off = torch.as_tensor([e.offset for e in result.mapping.entries], dtype=torch.float64)
    pts = bp[:, eb] + quat_rotate(br[:, eb], off.expand(f.shape[0], -1, -1))
    return pts.numpy(), bp, br


def _slide_cm_s(pts: np.ndarray, contact: np.ndarray, fps: float) -> float:
    """Mean horizontal speed (cm/s) of points (F, n, 3) over frames where contact (F, n) holds at both ends."""
    if pts.shape[0] < 2 or not contact.any():
        return 0.0
    v = np.linalg.norm(np.diff(pts[..., :2], axis=0), axis=-1) * fps  # (F-1, n)
    both = contact[1:] & contact[:-1]
    return float(v[both].mean() * 100.0) if both.any() else 0.0


def quality_report(
    result: RetargetResult,
    char: Character,
    source_path: str = "",
    output_path: str = "",
    time_s: Optional[float] = None,
) -> RetargetReport:
    """Measure ``result`` (its float32 frames) on ``char``."""
    from mimictools.character.kinematics import dof_to_qpos, geom_lowest_z
    from mimictools.math.rotations import exp_map_to_quat

    frames = result.frames
    finite = bool(np.isfinite(frames).all())
    pts, bp, br = _entry_points(char, frames, result)
    err = np.linalg.norm(pts - result.target_pos, axis=-1)  # (F, E)
    names = list(result.entry_names)
    f = torch.as_tensor(frames, dtype=torch.float64)
    qpos = dof_to_qpos(char, f[:, 0:3], exp_map_to_quat(f[:, 3:6]), f[:, 6:]).numpy()
    lo = np.concatenate([j.range_low for j in char.joints if not j.is_ball] or [np.zeros(0)])
    hi = np.concatenate([j.range_high for j in char.joints if not j.is_ball] or [np.zeros(0)])
    hinge = qpos[:, list(char.hinge_qpos_cols)]
    over = np.maximum(lo - hinge, 0.0) + np.maximum(hinge - hi, 0.0)
    over = np.where(np.isfinite(over), over, 0.0)
    # ball joints: cone angle
    col = 7
    ball_over = []
    for j in char.joints:
        if j.is_ball and np.isfinite(j.range_high[0]) and j.range_high[0] > 0:
            q = qpos[:, col : col + 4]
            ang = 2.0 * np.arctan2(np.linalg.norm(q[:, 1:], axis=1), np.abs(q[:, 0]))
            ball_over.append(np.maximum(ang - j.range_high[0], 0.0))
        col += j.qpos_count
    all_over = np.concatenate([over] + [b[:, None] for b in ball_over], axis=1) if ball_over else over
    if char.geoms:
        low = geom_lowest_z(char, bp, br).min(dim=-1).values.numpy()
        low = np.where(np.isfinite(low), low, 0.0)
    else:
        low = np.zeros(frames.shape[0])
    contact = result.contact
    foot = contact.any(axis=0)
    slide = _slide_cm_s(pts[:, foot], contact[:, foot], result.fps) if foot.any() else 0.0
    src_slide = _slide_cm_s(result.target_pos[:, foot], contact[:, foot], result.fps) if foot.any() else 0.0
    total = float(time_s if time_s is not None else result.timings_s.get("total", 0.0))
    solve_t = float(result.timings_s.get("total", 0.0))
    return RetargetReport(
        source=source_path,
        target=char.source or char.name,
        output=output_path,
        mapping=result.mapping.name,
        mapping_file=result.mapping.path,
        num_frames=int(frames.shape[0]),
        fps=float(result.fps),
        source_frames=result.source_frames,
        source_fps=result.source_fps,
        scale=float(result.scale),
        ground_shift_cm=float(result.ground_shift_m * 100.0),
        pos_err_mean_cm=float(err.mean() * 100.0),
        pos_err_max_cm=float(err.max() * 100.0),
        pos_err_mean_cm_per_point={n: float(v * 100.0) for n, v in zip(names, err.mean(axis=0))},
        pos_err_max_cm_per_point={n: float(v * 100.0) for n, v in zip(names, err.max(axis=0))},
        limit_violations=int((all_over > LIMIT_TOL_RAD).sum()),
        limit_violation_max_rad=float(all_over.max()) if all_over.size else 0.0,
        penetration_max_cm=float(max(0.0, -low.min()) * 100.0),
        penetration_frames=int((low < -PENETRATION_TOL_M).sum()),
        lift_max_cm=float(result.lift_m.max() * 100.0) if result.lift_m.size else 0.0,
        contact_frames=int(contact.any(axis=1).sum()),
        foot_slide_cm_s=slide,
        source_foot_slide_cm_s=src_slide,
        finite=finite,
        time_s=total,
        solve_time_s=solve_t,
        frames_per_s=float(frames.shape[0] / solve_t) if solve_t > 0 else 0.0,
        notes=result.notes,
    )


def plot_report(
    result: RetargetResult, char: Character, report: RetargetReport, path: str | Path, max_points: int = 4
):
    """PNG: source (dashed) vs retargeted (solid) x/y/z trajectories of a few mapped points, and a top view."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mimictools.io_util import save_figure

    pts, _, _ = _entry_points(char, result.frames, result)
    names = list(result.entry_names)
    # a few informative points: the root entry, a hand, a foot, the head (whatever exists), else the first few
    wanted = ["pelvis", "right_hand", "left_foot", "head", "left_hand", "right_foot"]
    pick: List[int] = []
    for w in wanted:
        for i, n in enumerate(names):
            if n == w and i not in pick:
                pick.append(i)
                break
        if len(pick) >= max_points:
            break
    for i in range(len(names)):
        if len(pick) >= max_points:
            break
        if i not in pick:
            pick.append(i)
    t = np.arange(result.frames.shape[0]) / result.fps
    fig, axes = plt.subplots(len(pick), 4, figsize=(16, 2.6 * len(pick) + 0.8), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for row, i in enumerate(pick):
        c = colors[row % len(colors)]
        for k, lab in enumerate("xyz"):
            ax = axes[row, k]
            ax.plot(t, result.target_pos[:, i, k], "--", color="0.4", lw=1.2, label="source (scaled)")
            ax.plot(t, pts[:, i, k], "-", color=c, lw=1.2, label="retargeted")
            if result.contact[:, i].any():
                ymin, ymax = ax.get_ylim()
                ax.fill_between(t, ymin, ymax, where=result.contact[:, i], color=c, alpha=0.08, lw=0)
                ax.set_ylim(ymin, ymax)
            ax.set_ylabel(f"{names[i]}\n{lab} (m)" if k == 0 else f"{lab} (m)", fontsize=8)
            if row == len(pick) - 1:
                ax.set_xlabel("time (s)")
            ax.tick_params(labelsize=7)
        ax = axes[row, 3]
        ax.plot(result.target_pos[:, i, 0], result.target_pos[:, i, 1], "--", color="0.4", lw=1.0)
        ax.plot(pts[:, i, 0], pts[:, i, 1], "-", color=c, lw=1.0)
        ax.set_aspect("equal", adjustable="datalim")
        ax.set_title("top view (x, y)", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0, 0].legend(fontsize=7, loc="best")
    fig.suptitle(
        f"{Path(report.source).name} -> {Path(report.target).name}: mean err {report.pos_err_mean_cm:.2f} cm, "
        f"max {report.pos_err_max_cm:.2f} cm, limit violations {report.limit_violations}, "
        f"penetration {report.penetration_max_cm:.2f} cm, foot slide {report.foot_slide_cm_s:.1f} cm/s "
        f"(source {report.source_foot_slide_cm_s:.1f}); shaded: contact",
        fontsize=9,
    )
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)
