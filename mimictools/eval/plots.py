"""Figures for people: training curves and tracking-error plots. Functions return matplotlib Figures
(the caller saves them); nothing here touches global pyplot state or shows windows.
"""

from __future__ import annotations

from typing import Dict, Optional, Sequence, Tuple

import numpy as np

from mimictools.errors import MimicToolsError

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
        raise MimicToolsError(f"column(s) {', '.join(missing)} in none of the logs; available: {', '.join(avail)}")
    fig, axes = _figure(len(present))
    for ax, col in zip(axes[0], present):
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
        ax.set_title(col.replace("_", " "))
        ax.set_xlabel(xlabel)
        if col.endswith("_Err"):
            ax.set_ylabel("m" if "Pos" in col or col.startswith("Root_Vel") else "rad, rad/s")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    return fig


def body_error_over_time(time_s: np.ndarray, err_m: np.ndarray, body_names: Sequence[str]):
    """Per-body position error (cm) over time. ``err_m`` Shape (num_frames, num_bodies)."""
    fig, axes = _figure(1, size=(9.0, 4.2))
    ax = axes[0][0]
    for b, name in enumerate(body_names):
        ax.plot(time_s, 100.0 * err_m[:, b], lw=1.0, label=name)
    ax.plot(time_s, 100.0 * err_m.mean(axis=1), color="black", lw=2.2, label="mean")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("body position error (cm)")
    ax.set_title("Body position error vs reference")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=3)
    return fig


def joint_angle_curves(time_s: np.ndarray, ref: np.ndarray, sim: np.ndarray, names: Sequence[str]):
    """Reference vs simulated angle (deg) for chosen DoFs. ``ref``/``sim`` Shape (num_frames, len(names))."""
    n = len(names)
    ncols = min(n, 3)
    nrows = int(np.ceil(n / ncols))
    fig, axes = _figure(ncols, nrows, size=(4.6, 3.0))
    for i, name in enumerate(names):
        ax = axes[i // ncols][i % ncols]
        ax.plot(time_s, np.degrees(ref[:, i]), color="0.4", lw=2.0, ls="--", label="reference")
        ax.plot(time_s, np.degrees(sim[:, i]), color="tab:blue", lw=1.2, label="simulated")
        ax.set_title(name)
        ax.set_xlabel("time (s)")
        ax.set_ylabel("deg")
        ax.grid(alpha=0.3)
    for j in range(n, nrows * ncols):
        axes[j // ncols][j % ncols].set_visible(False)
    axes[0][0].legend(fontsize=8)
    return fig


def root_trajectory(ref_xy: np.ndarray, sim_xy: np.ndarray, title: Optional[str] = None):
    """Top-down root path, reference vs simulated. Shapes (num_frames, 2), metres."""
    fig, axes = _figure(1, size=(5.5, 5.0))
    ax = axes[0][0]
    ax.plot(ref_xy[:, 0], ref_xy[:, 1], color="0.4", lw=2.0, ls="--", label="reference")
    ax.plot(sim_xy[:, 0], sim_xy[:, 1], color="tab:orange", lw=1.4, label="simulated")
    ax.scatter(ref_xy[:1, 0], ref_xy[:1, 1], color="black", zorder=3, s=20, label="start")
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")
    ax.set_title(title or "Root trajectory (top view)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def per_joint_error_bars(names: Sequence[str], mean_err_deg: np.ndarray):
    """Mean rotation error per joint (deg) as horizontal bars, worst on top."""
    order = np.argsort(mean_err_deg)
    fig, axes = _figure(1, size=(6.0, 0.3 * len(names) + 1.2))
    ax = axes[0][0]
    ax.barh([names[i] for i in order], mean_err_deg[order], color="tab:red", alpha=0.8)
    ax.set_xlabel("mean joint rotation error (deg)")
    ax.set_title("Per-joint tracking error")
    ax.grid(alpha=0.3, axis="x")
    return fig
