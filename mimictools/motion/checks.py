"""Inspection of motion clips: statistics and data faults, as plain JSON-ready dicts.

``inspect_motion(motion, char)`` reports, for one clip:

- storage: format variant, fps, frames, duration ``(N - 1)/fps``, loop mode, file size;
- per joint: value range per DoF column, joint-limit violations (hinge angles from
  ``kinematics.dof_to_qpos``, i.e. the Euler hinge angles for a 3-hinge joint, compared with each
  hinge's range; a ball joint's rotation angle against its cone), peak angular speed;
- root: horizontal path length, height range, net heading change, peak speed;
- ground: lowest *geom point* per frame via FK (sphere radius, capsule ends + radius, box corners),
  frames below the floor by more than a tolerance;
- the wrap seam (last -> first frame) for wrap clips, reported separately from jumps;
- ``faults`` (data errors; ``mimic motion inspect --strict`` exits 1 on any): NaN/inf (joint, frames),
  non-unit quaternions in the source (DeepMimic), flipping rotations (an exponential map jumping to the
  other branch, ~2 pi in the numbers for the same rotation; a DeepMimic quaternion changing sign between
  frames), and discontinuities (a frame step much larger than its
  neighbours' and above an absolute floor);
- ``warnings`` (properties worth knowing, not errors): joint-limit violations, ground penetration,
  irregular frame times.

Everything is computed in float64 on CPU with NaN-aware reductions (a NaN neck does not hide the
rest of the report). Non-finite numbers appear as ``None`` in the returned dicts (valid JSON).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from mimictools.motion.motion import LOOP_WRAP, Motion

__all__ = [
    "InspectOptions",
    "describe_nonfinite",
    "format_frames",
    "inspect_motion",
    "joint_columns",
    "joint_limit_excess",
]


@dataclass(frozen=True)
class InspectOptions:
    """Thresholds for ``inspect_motion``."""

    ground_tol_m: float = 0.05
    """A frame is 'below the floor' when its lowest geom point is under -ground_tol_m (m). Official
    MimicKit clips dip 1-6 cm into the floor routinely (sideflip: 13 cm)."""
    jump_ratio: float = 8.0
    """A frame step is a discontinuity when it is > jump_ratio x the median of the 8 neighbouring steps..."""
    jump_min_root_m: float = 0.1
    """...and the root moved more than this in one frame (m)..."""
    jump_min_rot_rad: float = 0.3
    """...or a joint/root rotation changed by more than this in one frame (rad)."""
    flip_margin_rad: float = 1.0
    """An exp-map step counts as a branch flip when |delta e| exceeds the true rotation change by this (rad)."""


# ---- layout helpers ---------------------------------------------------------------------------------------
def joint_label(joint: Any) -> str:
    """People-facing joint name: the common prefix of a hinge triple's MJCF names (``neck_x/y/z`` ->
    ``neck``), else the joint's own name."""
    names = list(joint.mjcf_joints)
    if len(names) > 1:
        prefix = os.path.commonprefix(names).rstrip("_")
        if prefix:
            return prefix
    return str(joint.name)


def joint_columns(char: Optional[Any], width: int) -> List[Dict[str, Any]]:
    """One entry per joint of a frame: root_pos, root_rot, then the character's joints.

    Each: ``name``, ``kind`` ('position' | 'spherical' | 'hinge' | 'column'), ``columns`` (frame
    columns), ``dof_names``, ``joint`` (the ``Joint`` or None). Without a character every DoF column
    is its own 'column' entry.
    """
    out = [
        {
            "name": "root_pos",
            "kind": "position",
            "columns": [0, 1, 2],
            "dof_names": ["x", "y", "z"],
            "joint": None,
        },
        {
            "name": "root_rot",
            "kind": "spherical",
            "columns": [3, 4, 5],
            "dof_names": ["x", "y", "z"],
            "joint": None,
        },
    ]
    if char is None or char.frame_width != width:
        for c in range(6, width):
            out.append(
                {"name": f"col{c}", "kind": "column", "columns": [c], "dof_names": [f"col{c}"], "joint": None}
            )
        return out
    dof_names = char.dof_names
    for j in char.joints:
        cols = list(range(6 + j.dof_offset, 6 + j.dof_offset + j.dof_count))
        out.append(
            {
                "name": joint_label(j),
                "kind": j.kind,
                "columns": cols,
                "dof_names": [dof_names[c - 6] for c in cols],
                "joint": j,
            }
        )
    return out


def format_frames(frames: Sequence[int], limit: int = 6) -> str:
    """``[0, 1, 2, 5, 9, 10]`` -> ``'0-2, 5, 9-10'`` (at most ``limit`` runs, then '+N more')."""
    idx = sorted(int(f) for f in frames)
    if not idx:
        return "none"
    runs = []  # type: List[Tuple[int, int]]
    a = b = idx[0]
    for f in idx[1:]:
        if f == b + 1:
            b = f
        else:
            runs.append((a, b))
            a = b = f
    runs.append((a, b))
    text = ", ".join(str(x) if x == y else f"{x}-{y}" for x, y in runs[:limit])
    if len(runs) > limit:
        text += f" (+{sum(y - x + 1 for x, y in runs[limit:])} more)"
    return text


def describe_nonfinite(frames: np.ndarray, char: Optional[Any] = None) -> List[Dict[str, Any]]:
    """Where a clip has NaN/inf: one entry per joint with ``joint``, ``columns``, ``frames`` (list),
    ``kinds`` ('NaN'/'inf') and a one-line ``message`` ('neck (columns 9-11: neck_x, ...) NaN at frames
    0-124 (125 of 125)')."""
    bad = ~np.isfinite(frames)
    out = []
    if not bad.any():
        return out
    n = frames.shape[0]
    for entry in joint_columns(char, frames.shape[1]):
        cols = entry["columns"]
        sub = bad[:, cols]
        if not sub.any():
            continue
        rows = np.nonzero(sub.any(axis=1))[0]
        vals = frames[:, cols][sub]
        kinds = sorted({"NaN" if np.isnan(v) else "inf" for v in vals})
        bad_cols = [c for k, c in enumerate(cols) if sub[:, k].any()]
        col_txt = f"column {bad_cols[0]}" if len(bad_cols) == 1 else f"columns {format_frames(bad_cols)}"
        names = [entry["dof_names"][cols.index(c)] for c in bad_cols]
        msg = (
            f"{entry['name']} ({col_txt}: {', '.join(names)}) {'/'.join(kinds)} at frames "
            f"{format_frames(rows.tolist())} ({rows.size} of {n})"
        )
        out.append(
            {
                "kind": "nonfinite",
                "joint": entry["name"],
                "columns": bad_cols,
                "frames": rows.tolist(),
                "count": int(rows.size),
                "kinds": kinds,
                "message": msg,
            }
        )
    return out


# ---- small numeric helpers ---------------------------------------------------------------------------------
def _f(x: Any) -> Optional[float]:
    """float, or None for NaN/inf (JSON has no NaN)."""
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _nanmax(x: np.ndarray) -> Tuple[Optional[float], int]:
    """(max ignoring NaN, index) or (None, -1)."""
    if x.size == 0 or not np.isfinite(x).any():
        return None, -1
    y = np.where(np.isfinite(x), x, -np.inf)
    k = int(np.argmax(y))
    return float(y[k]), k


def _jump_steps(step: np.ndarray, ratio: float, floor: float) -> np.ndarray:
    """Indices i of steps (frame i -> i+1) much larger than the median of their 8 neighbours."""
    n = step.shape[0]
    if n < 3:
        return np.zeros(0, dtype=np.int64)
    s = np.where(np.isfinite(step), step, 0.0)
    half = 4
    padded = np.pad(s, half, mode="edge")
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * half + 1)  # (n, 9)
    neigh = np.delete(windows, half, axis=1)
    med = np.median(neigh, axis=1)
    return np.nonzero((s > floor) & (s > ratio * np.maximum(med, 1e-9)))[0]


def joint_limit_excess(char: Any, qpos: np.ndarray) -> List[Tuple[List[str], np.ndarray]]:
    """How far each joint is past its range, per frame: one ``(hinge names, excess)`` per ``char.joints``
    entry, ``excess`` in rad with Shape (num_frames, num_hinges) (a ball joint: its rotation angle against its
    cone, one column), 0 inside the range and where the angle is not finite. ``qpos`` is the Character qpos
    layout (``kinematics.dof_to_qpos``), Shape (num_frames, num_qpos)."""
    out = []  # type: List[Tuple[List[str], np.ndarray]]
    col = 7
    for j in char.joints:
        if j.is_ball:
            qb = qpos[:, col : col + 4]
            ang = (2.0 * np.arctan2(np.linalg.norm(qb[:, 1:], axis=-1), np.abs(qb[:, 0])))[:, None]
            lo = np.full(1, -np.inf)
            hi = np.asarray(j.range_high[:1], dtype=np.float64)
            names = [j.name]
        else:
            ang = qpos[:, col : col + len(j.mjcf_joints)]
            lo = np.asarray(j.range_low, dtype=np.float64)
            hi = np.asarray(j.range_high, dtype=np.float64)
            names = list(j.mjcf_joints)
        col += j.qpos_count
        with np.errstate(invalid="ignore"):
            excess = np.maximum(np.maximum(lo - ang, ang - hi), 0.0)
        out.append((names, np.where(np.isfinite(excess), excess, 0.0)))
    return out


# ---- the report ----------------------------------------------------------------------------------------------
def inspect_motion(
    motion: Motion,
    char: Optional[Any] = None,
    options: Optional[InspectOptions] = None,
    file_size: Optional[int] = None,
) -> Dict[str, Any]:
    """Inspect one clip (see module docstring). ``char`` must match the clip's columns (check first
    with ``io.check_frame_width``); without it only layout-free stats are computed."""
    import torch

    from mimictools.math.rotations import calc_heading, exp_map_to_quat, quat_conj, quat_mul, quat_to_exp_map

    opt = options or InspectOptions()
    frames = motion.frames.astype(np.float64)
    n, width = frames.shape
    fps = float(motion.fps)
    if file_size is None and motion.source and os.path.isfile(motion.source):
        file_size = os.path.getsize(motion.source)
    use_char = char if (char is not None and char.frame_width == width) else None

    report = {
        "path": motion.source,
        "name": os.path.basename(motion.source) if motion.source else "<motion>",
        "variant": motion.variant,
        "details": list(motion.details),
        "fps": _f(fps),
        "num_frames": int(n),
        "duration_s": _f(motion.length_s),
        "loop_mode": motion.loop_name,
        "file_size_bytes": file_size,
        "columns": int(width),
        "character": os.path.basename(getattr(char, "source", "") or "") if char is not None else None,
        "character_columns": int(char.frame_width) if char is not None else None,
    }  # type: Dict[str, Any]

    faults = []  # type: List[Dict[str, Any]]
    warns = []  # type: List[Dict[str, Any]]
    faults.extend(describe_nonfinite(frames, use_char))
    for note in motion.notes:
        if note.kind == "non_unit_quaternion":
            faults.append({"kind": note.kind, "message": note.message})
        elif note.kind == "quat_sign_flip":
            faults.append({"kind": "rotation_flip", "message": note.message})
        else:
            warns.append({"kind": note.kind, "message": note.message})

    t = torch.as_tensor(frames, dtype=torch.float64)
    root_pos = t[:, 0:3]
    root_rot = exp_map_to_quat(t[:, 3:6])

    # ---- root -----------------------------------------------------------------------------------------
    rp = frames[:, 0:3]
    step_xy = np.linalg.norm(np.diff(rp[:, :2], axis=0), axis=1)
    step_3d = np.linalg.norm(np.diff(rp, axis=0), axis=1)
    heading = calc_heading(root_rot).numpy()
    dh = np.diff(heading)
    dh = (dh + np.pi) % (2.0 * np.pi) - np.pi
    peak_speed, peak_speed_frame = _nanmax(step_3d * fps)
    report["root"] = {
        "path_length_m": _f(np.nansum(step_xy)),
        "displacement_xy_m": _f(np.linalg.norm(rp[-1, :2] - rp[0, :2])),
        "height_min_m": _f(np.nanmin(rp[:, 2])) if np.isfinite(rp[:, 2]).any() else None,
        "height_max_m": _f(np.nanmax(rp[:, 2])) if np.isfinite(rp[:, 2]).any() else None,
        "heading_change_deg": _f(np.degrees(np.nansum(dh))),
        "peak_speed_mps": peak_speed,
        "peak_speed_frame": peak_speed_frame,
    }

    # ---- per joint: ranges, speeds, flips, jumps ------------------------------------------------------------
    layout = joint_columns(use_char, width)
    local_rot = None
    if use_char is not None:
        from mimictools.character.kinematics import dof_to_local_rot

        local_rot = dof_to_local_rot(use_char, t[:, 6:])
    joints_out = []
    jump_faults = []  # type: List[Dict[str, Any]]
    flip_faults = []  # type: List[Dict[str, Any]]
    for entry in layout:
        cols = entry["columns"]
        vals = frames[:, cols]
        finite_any = np.isfinite(vals).any(axis=0)
        j_out = {
            "name": entry["name"],
            "kind": entry["kind"],
            "columns": cols,
            "dof_names": entry["dof_names"],
            "min": [_f(np.nanmin(vals[:, k])) if finite_any[k] else None for k in range(len(cols))],
            "max": [_f(np.nanmax(vals[:, k])) if finite_any[k] else None for k in range(len(cols))],
        }  # type: Dict[str, Any]
        step = None  # per-frame change: rad for rotations, m for root_pos
        if entry["kind"] == "position":
            step = step_3d
            floor = opt.jump_min_root_m
        elif entry["kind"] == "spherical":
            if entry["name"] == "root_rot":
                q = root_rot
            elif local_rot is not None:
                q = local_rot[:, entry["joint"].body]
            else:
                q = exp_map_to_quat(t[:, cols])
            d = (
                quat_to_exp_map(quat_mul(quat_conj(q[:-1]), q[1:])).norm(dim=-1).numpy()
                if n > 1
                else np.zeros(0)
            )
            step = d
            floor = opt.jump_min_rot_rad
            if n > 1:
                de = np.linalg.norm(np.diff(vals, axis=0), axis=1)
                flips = np.nonzero(np.isfinite(de) & (de > d + opt.flip_margin_rad))[0]
                if flips.size:
                    flip_faults.append(
                        {
                            "kind": "rotation_flip",
                            "joint": entry["name"],
                            "frames": flips.tolist(),
                            "count": int(flips.size),
                            "message": (
                                f"{entry['name']}: exp map jumps to the other branch (|delta| ~ 2 pi, same rotation) "
                                f"between frames {format_frames(flips.tolist())} -> next; harmless for MotionLib "
                                "(it slerps quaternions), wrong for per-column lerp/filters"
                            ),
                        }
                    )
        else:  # hinge or plain column
            step = np.abs(np.diff(vals[:, 0])) if n > 1 else np.zeros(0)
            floor = opt.jump_min_rot_rad
        if entry["kind"] != "position":
            peak, peak_i = _nanmax(step * fps)
            j_out["peak_ang_speed_rad_s"] = peak
            j_out["peak_ang_speed_frame"] = peak_i
        jumps = _jump_steps(step, opt.jump_ratio, floor)
        if jumps.size:
            unit = "m" if entry["kind"] == "position" else "rad"
            worst = int(jumps[np.argmax(step[jumps])])
            jump_faults.append(
                {
                    "kind": "jump",
                    "joint": entry["name"],
                    "frames": jumps.tolist(),
                    "count": int(jumps.size),
                    "message": (
                        f"{entry['name']}: discontinuity between frames {format_frames(jumps.tolist())} -> next "
                        f"(worst {step[worst]:.3f} {unit} in one frame at {worst}, > {opt.jump_ratio:g}x its neighbours)"
                    ),
                }
            )
        joints_out.append(j_out)
    faults.extend(flip_faults)
    faults.extend(jump_faults)

    # ---- joint limits (hinge angles as MuJoCo sees them) ------------------------------------------------------
    if use_char is not None:
        from mimictools.character.kinematics import dof_to_qpos

        qpos = dof_to_qpos(use_char, root_pos, root_rot, t[:, 6:]).numpy()
        by_name = {j["name"]: j for j in joints_out}
        for entry, (names, excess) in zip(layout[2:], joint_limit_excess(use_char, qpos)):
            per_frame = excess.max(axis=1)
            bad = np.nonzero(per_frame > 1e-6)[0]
            lim = {"frames": int(bad.size), "worst_excess_deg": 0.0, "worst_hinge": None, "worst_frame": -1}
            if bad.size:
                f_i, h_i = np.unravel_index(int(np.argmax(excess)), excess.shape)
                lim = {
                    "frames": int(bad.size),
                    "worst_excess_deg": _f(np.degrees(excess[f_i, h_i])),
                    "worst_hinge": names[h_i],
                    "worst_frame": int(f_i),
                }
                warns.append(
                    {
                        "kind": "joint_limit",
                        "joint": entry["name"],
                        "message": (
                            f"{entry['name']}: outside its joint range in {bad.size} of {n} frames "
                            f"(worst {np.degrees(excess[f_i, h_i]):.1f} deg past {names[h_i]}'s limit at frame {f_i})"
                        ),
                    }
                )
            by_name[entry["name"]]["limit_violations"] = lim
            by_name[entry["name"]]["hinges"] = names

    # ---- ground (FK over geoms) ------------------------------------------------------------------------------
    if use_char is not None and use_char.geoms:
        from mimictools.character.kinematics import forward_kinematics, geom_lowest_z

        body_pos, body_rot = forward_kinematics(use_char, root_pos, root_rot, local_rot)
        low = geom_lowest_z(use_char, body_pos, body_rot).numpy()
        low = np.where(np.isfinite(low), low, np.inf).min(axis=1)
        low = np.where(np.isfinite(low), low, np.nan)
        below = np.nonzero(low < -opt.ground_tol_m)[0]
        lowest, lowest_i = _nanmax(-low)
        report["ground"] = {
            "lowest_m": None if lowest is None else -lowest,
            "lowest_frame": lowest_i,
            "median_lowest_m": _f(np.nanmedian(low)) if np.isfinite(low).any() else None,
            "tolerance_m": opt.ground_tol_m,
            "frames_below": int(below.size),
        }
        if below.size:
            warns.append(
                {
                    "kind": "below_ground",
                    "message": (
                        f"lowest body point more than {opt.ground_tol_m * 100:.0f} cm below the floor in {below.size} "
                        f"of {n} frames ({format_frames(below.tolist())}; lowest {low[lowest_i]:.3f} m at frame {lowest_i})"
                    ),
                }
            )
    else:
        report["ground"] = None

    # ---- wrap seam ---------------------------------------------------------------------------------------------
    report["seam"] = None
    if motion.loop_mode == LOOP_WRAP and n > 1:
        worst_name, worst_deg = None, -1.0
        for entry in layout[1:]:
            cols = entry["columns"]
            if entry["kind"] == "spherical":
                if entry["name"] == "root_rot":
                    continue
                q = (
                    local_rot[:, entry["joint"].body]
                    if local_rot is not None
                    else exp_map_to_quat(t[:, cols])
                )
                d = quat_to_exp_map(quat_mul(quat_conj(q[-1]), q[0])).norm().item()
            else:
                d = abs(frames[-1, cols[0]] - frames[0, cols[0]])
            if math.isfinite(d) and math.degrees(d) > worst_deg:
                worst_name, worst_deg = entry["name"], math.degrees(d)
        hq0 = calc_heading(root_rot[0:1]).item()
        hq1 = calc_heading(root_rot[-1:]).item()
        report["seam"] = {
            "root_height_diff_m": _f(rp[-1, 2] - rp[0, 2]),
            "heading_diff_deg": _f(math.degrees((hq1 - hq0 + math.pi) % (2 * math.pi) - math.pi)),
            "max_joint_diff_deg": _f(worst_deg) if worst_name else None,
            "max_joint": worst_name,
            "root_advance_xy_m": _f(np.linalg.norm(rp[-1, :2] - rp[0, :2])),
        }

    report["joints"] = joints_out
    report["faults"] = faults
    report["warnings"] = warns
    report.setdefault("notes", [])
    return report
