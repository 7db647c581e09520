"""Figures for people: training curves and tracking-error plots. Functions return matplotlib Figures
(the caller saves them); nothing here touches global pyplot state or shows windows.
"""

from __future__ import annotations

from typing import Dict, Optional, Sequence, Tuple

import numpy as np

from mimictools.errors import MimicToolsError
from mimictools.eval.logs import TRACKING_ERROR_UNITS

LogColumns = Dict[str, np.ndarray]


def _figure(ncols: int, nrows: int = 1, size: Tuple[float, float] = (5.0, 3.6)):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(size[0] * ncols, size[1] * nrows), constrained_layout=True)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, axes


def training_curves(
    logs: Sequence[Tuple[str, LogColumns]],
    columns: Sequence[str] = ("Test_Return", "Train_Return", "Body_Pos_Err", "Root_Pos_Err"),
    x: str = "minutes",
):
    """One panel per column, one line per log. ``x`` is 'minutes' (wall time), 'samples' or 'iteration'.

    ``logs`` are (label, columns) pairs as returned by ``mimictools.eval.logs.read_log``.
    Columns missing from a log are skipped for that log; a column missing from every log is an error.
    """
    if x not in ("minutes", "samples", "iteration"):
        raise MimicToolsError(f"x axis must be one of minutes, samples, iteration; got {x!r}")
    present = [c for c in columns if any(c in data for _, data in logs)]
    missing = [c for c in columns if c not in present]
    if missing:
        avail = sorted({k for _, data in logs for k in data})
        raise MimicToolsError(
            f"column(s) {', '.join(missing)} in none of the logs; available: {', '.join(avail)}"
        )
    ncols = 2 if len(present) == 4 else min(len(present), 3)
    nrows = int(np.ceil(len(present) / ncols))
    fig, axes = _figure(ncols, nrows, size=(5.0, 3.4))
    flat = [ax for row in axes for ax in row]
    for ax in flat[len(present) :]:
        ax.set_visible(False)
    for ax, col in zip(flat, present):
        for label, data in logs:
            if col not in data:
                continue
            if x == "minutes":
                xs, xlabel = data["Wall_Time"] * 60.0, "wall-clock time (min)"
            elif x == "samples":
                xs, xlabel = data["Samples"] / 1e6, "samples (millions)"
            else:
                xs, xlabel = data["Iteration"], "iteration"
            ax.plot(xs, data[col], marker="o", markersize=2.5, label=label)
        unit = _unit(col)
        ax.set_title(col.replace("_", " ") + (f" ({unit})" if unit else ""))
        ax.set_xlabel(xlabel)
        ax.set_ylabel(unit or ("episode return" if col.endswith("_Return") else col))
        ax.grid(alpha=0.3)
    flat[0].legend(fontsize=8)
    return fig


def _title(ax, title: str, subtitle: Optional[str]) -> None:
    ax.set_title(title + (f"\n{subtitle}" if subtitle else ""), fontsize=11)


def body_error_over_time(
    time_s: np.ndarray,
    err_m: np.ndarray,
    body_names: Sequence[str],
    subtitle: Optional[str] = None,
    root_relative: bool = False,
):
    """Per-body position error (cm) over time, one line per body plus the mean over bodies (black).

    ``err_m`` Shape (num_frames, num_bodies); ``root_relative`` only changes the labels (MimicKit's
    ``Body_Pos_Err`` is the mean of the root-relative errors).
    """
    fig, axes = _figure(1, size=(10.0, 4.6))
    ax = axes[0][0]
    colors = _body_colors(len(body_names))
    for b, name in enumerate(body_names):
        ls = "--" if name.startswith("left") else "-"
        ax.plot(time_s, 100.0 * err_m[:, b], lw=1.1, ls=ls, color=colors[b], label=name)
    ax.plot(time_s, 100.0 * err_m.mean(axis=1), color="black", lw=2.4, label="mean (all bodies)")
    ax.set_xlabel("episode time (s)")
    kind = "root-relative " if root_relative else "world "
    ax.set_ylabel(f"{kind}body position error (cm)")
    _title(ax, f"Per-body position error vs reference ({kind.strip()})", subtitle)
    ax.set_ylim(bottom=0.0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return fig


def _body_colors(n: int):
    from matplotlib import colormaps

    cmap = colormaps["tab20"]
    return [cmap(i % 20) for i in range(n)]


def tracking_errors_over_time(
    time_s: np.ndarray, tracking: np.ndarray, keys: Sequence[str], subtitle: Optional[str] = None
):
    """MimicKit's tracking errors over time, one panel each. ``tracking`` Shape (num_frames, len(keys)).

    Position errors are drawn in cm, rotation errors in degrees, velocities in their SI units.
    """
    n = len(keys)
    ncols = 4 if n > 4 else n
    nrows = int(np.ceil(n / ncols))
    fig, axes = _figure(ncols, nrows, size=(3.6, 2.7))
    for i, key in enumerate(keys):
        ax = axes[i // ncols][i % ncols]
        y, unit = tracking[:, i], _unit(key) or "?"
        if unit == "m":
            y, unit = 100.0 * y, "cm"
        elif unit == "rad":
            y, unit = np.degrees(y), "deg"
        ax.plot(time_s, y, color="tab:red", lw=1.3)
        ax.set_title(f"{key.replace('_', ' ')} (mean {np.mean(y):.3g} {unit})", fontsize=9)
        ax.set_xlabel("episode time (s)", fontsize=8)
        ax.set_ylabel(unit, fontsize=8)
        ax.set_ylim(bottom=0.0)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    for j in range(n, nrows * ncols):
        axes[j // ncols][j % ncols].set_visible(False)
    fig.suptitle(
        "Tracking errors (MimicKit definitions)" + (f"\n{subtitle}" if subtitle else ""), fontsize=11
    )
    return fig


def _unit(key: str) -> str:
    """Unit of a log column / tracking error ('' when unknown or unitless)."""
    if key in TRACKING_ERROR_UNITS:
        return TRACKING_ERROR_UNITS[key]
    if key == "Wall_Time":
        return "h"
    return ""


def joint_angle_curves(
    time_s: np.ndarray, ref: np.ndarray, sim: np.ndarray, names: Sequence[str], subtitle: Optional[str] = None
):
    """Reference vs simulated angle (deg) for chosen DoFs. ``ref``/``sim`` Shape (num_frames, len(names))."""
    n = len(names)
    if n == 0:
        raise MimicToolsError("joint_angle_curves: no joint to plot")
    ncols = min(n, 3)
    nrows = int(np.ceil(n / ncols))
    fig, axes = _figure(ncols, nrows, size=(4.6, 3.0))
    for i, name in enumerate(names):
        ax = axes[i // ncols][i % ncols]
        ax.plot(time_s, np.degrees(ref[:, i]), color="0.4", lw=2.0, ls="--", label="reference")
        ax.plot(time_s, np.degrees(sim[:, i]), color="tab:blue", lw=1.4, label="simulated")
        ax.set_title(name)
        ax.set_xlabel("episode time (s)")
        ax.set_ylabel("angle (deg)")
        ax.grid(alpha=0.3)
    for j in range(n, nrows * ncols):
        axes[j // ncols][j % ncols].set_visible(False)
    axes[0][0].legend(fontsize=8)
    fig.suptitle("Joint angles: reference vs simulated" + (f"\n{subtitle}" if subtitle else ""), fontsize=11)
    return fig


def root_trajectory(ref_xy: np.ndarray, sim_xy: np.ndarray, title: Optional[str] = None):
    """Top-down root path, reference vs simulated. Shapes (num_frames, 2), metres."""
    fig, axes = _figure(1, size=(6.0, 5.4))
    ax = axes[0][0]
    ax.plot(ref_xy[:, 0], ref_xy[:, 1], color="0.4", lw=2.0, ls="--", label="reference")
    ax.plot(sim_xy[:, 0], sim_xy[:, 1], color="tab:orange", lw=1.6, label="simulated")
    ax.scatter(ref_xy[:1, 0], ref_xy[:1, 1], color="black", zorder=3, s=25, label="start")
    ax.scatter(
        ref_xy[-1:, 0], ref_xy[-1:, 1], color="0.4", marker="x", zorder=3, s=40, label="end (reference)"
    )
    ax.scatter(
        sim_xy[-1:, 0],
        sim_xy[-1:, 1],
        color="tab:orange",
        marker="x",
        zorder=3,
        s=40,
        label="end (simulated)",
    )
    # At least 0.5 m across so that a root standing still does not turn into noise.
    pts = np.concatenate([ref_xy, sim_xy], axis=0)
    mid = 0.5 * (pts.min(axis=0) + pts.max(axis=0))
    half = max(0.25, 0.55 * float((pts.max(axis=0) - pts.min(axis=0)).max()))
    ax.set_xlim(mid[0] - half, mid[0] + half)
    ax.set_ylim(mid[1] - half, mid[1] + half)
    ax.set_aspect("equal", adjustable="box")
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")
    ax.set_title(title or "Root trajectory (top view)", fontsize=11)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def per_joint_error_bars(names: Sequence[str], mean_err_deg: np.ndarray, subtitle: Optional[str] = None):
    """Mean rotation error per joint (deg) as horizontal bars, worst on top, values printed."""
    order = np.argsort(mean_err_deg)
    fig, axes = _figure(1, size=(7.0, 0.32 * len(names) + 1.6))
    ax = axes[0][0]
    vals = mean_err_deg[order]
    bars = ax.barh([names[i] for i in order], vals, color="tab:red", alpha=0.8)
    ax.bar_label(bars, labels=[f"{v:.1f}" for v in vals], padding=2, fontsize=8)
    ax.set_xlim(0.0, max(1.0, float(np.max(vals)) * 1.15) if len(vals) else 1.0)
    ax.set_xlabel("mean local joint rotation error (deg)")
    _title(ax, "Per-joint tracking error", subtitle)
    ax.grid(alpha=0.3, axis="x")
    return fig
