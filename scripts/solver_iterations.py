"""Newton iterations per physics step on a clip, and what a cap on them (``engine.solver_iterations``) changes.

    python scripts/solver_iterations.py [--motion CLIP --char XML --freq 240 --cap 10 --starts 64 --control-steps 8]
                                        [--warp-tolerances 0,1e-5,1e-4]

Defaults: MimicKit's humanoid and spinkick from $MIMIC_SHARED (default ../shared). Starts ``--starts`` envs on
the reference clip (evenly spaced clip times, the reference's velocities), drives each open loop with the
reference's poses as PD targets for ``--control-steps`` control steps at 30 Hz (what a perfect tracker would
command; the character drifts and may fall, which adds hard contacts), and steps MuJoCo (CPU, ``mj_step``) at
``--freq`` Hz twice: with the MJCF's caps (MuJoCo's 100 iterations) and with ``--cap``. Prints the distribution
of MuJoCo's ``solver_niter`` per physics step (median, 99th percentile, max), the share of the uncapped run's
steps that needed more than ``--cap`` (where the cap cuts the solve short), and how
far apart the two runs end (largest joint-angle and root-position difference over envs; open-loop motion is
chaotic, so a small early difference grows: this bounds how far the cap moved a trajectory, not a per-step error),
and contacts per physics step with the mean iterations at each contact count. On a GPU all envs of a
batch wait for the slowest one's solver, so the maximum over envs and steps, not the median, sets the pace. Also
printed: the same counts for one character standing in ``mimic bench``'s rest pose (what its raw ceiling steps).
``--warp-tolerances`` adds MuJoCo Warp's counts (float32, on Warp's CPU device: the kernels a GPU runs) from the
same starts, all envs in one batch, at each ``engine.solver_tolerance`` given: what the GPU solver does, at what
tolerance. MuJoCo Warp raises any tolerance below 1e-6 to 1e-6 (float32), so 0 there means 1e-6.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Tuple

import mujoco
import numpy as np
import torch

from mimictools.character.mjcf import load_character
from mimictools.engines.base import EngineSpec, SimState, set_state
from mimictools.engines.mujoco import MuJoCoEngine
from mimictools.motion.library import MotionLib


def _step_counts(m: mujoco.MjModel, d: mujoco.MjData, steps: int) -> Tuple[np.ndarray, np.ndarray]:
    """``steps`` ``mj_step`` calls on ``d``: (solver_niter, ncon) of each, shapes (steps,)."""
    niter = np.zeros(steps, dtype=np.int64)
    ncon = np.zeros_like(niter)
    for k in range(steps):
        mujoco.mj_step(m, d)
        niter[k], ncon[k] = int(d.solver_niter[0]), int(d.ncon)
    return niter, ncon


def _set_starts(eng, lib: MotionLib, starts: int, control_steps: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """Put ``eng``'s envs on clip 0 at ``starts`` evenly spaced times (the reference's state, velocities included)
    that leave ``control_steps`` of clip after them; returns (clip ids (starts,), start times (starts,) s)."""
    ids = torch.zeros(starts, dtype=torch.long)
    length = float(lib.motion_length(ids[:1])[0])
    t0 = torch.linspace(0.0, length - (control_steps + 1) / 30.0, starts, dtype=torch.float64).clamp(min=0.0)
    f = lib.calc_motion_frame(ids, t0, bodies=False)
    set_state(eng, None, SimState(f.root_pos, f.root_rot, f.root_vel, f.root_ang_vel, f.dof_pos, f.dof_vel))
    return ids, t0


def run(char, lib: MotionLib, freq: float, cap: int, starts: int, control_steps: int):
    """(solver_niter and contact count ``ncon`` per physics step: each shape (starts, control_steps * substeps),
    final qpos: (starts, nq), the model's iteration cap)."""
    spec = EngineSpec(num_envs=starts, sim_freq=freq, num_threads=1, solver_iterations=cap)
    eng = MuJoCoEngine(char, spec)
    try:
        m = eng.mj_model
        ids, t0 = _set_starts(eng, lib, starts, control_steps)
        niter = np.zeros((starts, control_steps, spec.substeps), dtype=np.int64)
        ncon = np.zeros_like(niter)
        qpos = np.zeros((starts, m.nq))
        for i in range(starts):
            d = eng.mj_data(i)  # env i's start state
            for c in range(control_steps):
                tar = lib.calc_motion_frame(ids[:1], t0[i : i + 1] + (c + 1) / 30.0, bodies=False).dof_pos
                eng.set_targets(tar.expand(starts, -1))
                d.ctrl[:] = eng.mj_data(0).ctrl  # the engine's conversion of the targets to actuator ctrl
                niter[i, c], ncon[i, c] = _step_counts(m, d, spec.substeps)
            qpos[i] = d.qpos
        return niter.reshape(starts, -1), ncon.reshape(starts, -1), qpos, int(m.opt.iterations)
    finally:
        eng.close()


def run_warp(
    char, lib: MotionLib, freq: float, tolerance: float, starts: int, control_steps: int
) -> np.ndarray:
    """MuJoCo Warp (float32, Warp's CPU device: the GPU's kernels) from the same starts, all envs in one batch,
    one physics step per ``step_physics`` (control rate = ``freq``), PD targets the reference's at 30 Hz:
    ``solver_niter`` per physics step and env, Shape (control_steps * substeps, starts)."""
    from mimictools.engines.mjwarp import MjWarpEngine

    spec = EngineSpec(
        num_envs=starts, sim_freq=freq, control_freq=freq, device="cpu", solver_tolerance=tolerance
    )
    eng = MjWarpEngine(char, spec)
    try:
        ids, t0 = _set_starts(eng, lib, starts, control_steps)
        substeps = int(round(freq / 30.0))
        out = np.zeros((control_steps * substeps, starts), dtype=np.int64)
        for c in range(control_steps):
            eng.set_targets(lib.calc_motion_frame(ids, t0 + (c + 1) / 30.0, bodies=False).dof_pos.float())
            for k in range(substeps):
                eng.step_physics()
                out[c * substeps + k] = eng.solver_iterations().numpy()
        return out
    finally:
        eng.close()


def standing(char, freq: float, steps: int = 240):
    """(solver_niter, ncon) per physics step of one character standing in ``mimic bench``'s rest pose, held by PD
    targets (the state the bench's raw ceiling steps), ``steps`` physics steps. Shapes (steps,)."""
    from mimictools.app.bench import standing_state

    eng = MuJoCoEngine(char, EngineSpec(num_envs=1, sim_freq=freq, num_threads=1))
    try:
        start = standing_state(char, 1)
        set_state(eng, None, type(start)(*(t.double() for t in start.fields())))
        eng.set_targets(start.dof_pos.float())
        return _step_counts(eng.mj_model, eng.mj_data(0), steps)
    finally:
        eng.close()


def main() -> None:
    shared = Path(os.environ.get("MIMIC_SHARED", "../shared")) / "mimickit"
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--motion", type=Path, default=shared / "data/motions/humanoid/humanoid_spinkick.pkl")
    ap.add_argument("--char", type=Path, default=shared / "data/assets/humanoid/humanoid.xml")
    ap.add_argument("--freq", type=float, default=240.0, help="physics rate (Hz)")
    ap.add_argument("--cap", type=int, default=10, help="the capped run's engine.solver_iterations")
    ap.add_argument("--starts", type=int, default=64)
    ap.add_argument("--control-steps", type=int, default=8)
    ap.add_argument(
        "--warp-tolerances",
        default="",
        help="also MuJoCo Warp on its CPU device (float32) at these engine.solver_tolerance values, e.g. "
        "'0,1e-5,1e-4' (0 = the MJCF's 1e-8, which MuJoCo Warp raises to 1e-6); needs the 'gpu' extra",
    )
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(1)
    char = load_character(args.char)
    lib = MotionLib.from_path(args.motion, char=char)
    out = {}
    runs = {}
    uncapped_niter = None
    for name, cap in (("mjcf", 0), ("capped", args.cap)):
        niter, ncon, qpos, limit = run(char, lib, args.freq, cap, args.starts, args.control_steps)
        runs[name] = qpos
        if cap == 0:
            uncapped_niter = niter
        out[name] = {
            "iterations_cap": limit,
            "median": float(np.median(niter)),
            "p99": float(np.percentile(niter, 99)),
            "max": int(niter.max()),
            "share_reaching_cap": float(np.mean(niter >= limit)),
            "max_over_envs_per_step_mean": float(niter.max(axis=0).mean()),
            "contacts_median": float(np.median(ncon)),
            "contacts_max": int(ncon.max()),
            "mean_iterations_by_contacts": {int(k): float(niter[ncon == k].mean()) for k in np.unique(ncon)},
        }
    st_iter, st_con = standing(char, args.freq)
    out["standing"] = {
        "median": float(np.median(st_iter)),
        "max": int(st_iter.max()),
        "contacts_median": float(np.median(st_con)),
    }
    out["share_of_uncapped_steps_over_cap"] = float(np.mean(uncapped_niter > args.cap))
    dq = np.abs(runs["mjcf"][:, 7:] - runs["capped"][:, 7:]).max()
    dp = np.linalg.norm(runs["mjcf"][:, :3] - runs["capped"][:, :3], axis=1).max()
    out["end_difference"] = {"max_joint_qpos": float(dq), "max_root_pos_m": float(dp)}
    for tol in [float(t) for t in args.warp_tolerances.split(",") if t.strip()]:
        w = run_warp(char, lib, args.freq, tol, args.starts, args.control_steps)
        out[f"warp_tolerance_{tol:g}"] = {
            "median": float(np.median(w)),
            "p99": float(np.percentile(w, 99)),
            "max": int(w.max()),
            "mean": float(w.mean()),
            "max_over_envs_per_step_mean": float(w.max(axis=1).mean()),
        }
    out["setup"] = {
        "motion": str(args.motion), "char": str(args.char), "freq_hz": args.freq, "starts": args.starts,
        "control_steps": args.control_steps,
    }  # fmt: skip
    if args.json:
        print(json.dumps(out, indent=1))
        return
    for name in ("mjcf", "capped"):
        r = out[name]
        print(
            f"{name:7s} cap {r['iterations_cap']:3d}: Newton iterations per physics step median {r['median']:.0f}, "
            f"p99 {r['p99']:.0f}, max {r['max']}, reaching the cap {100 * r['share_reaching_cap']:.2f} %, "
            f"slowest env per step (mean over steps) {r['max_over_envs_per_step_mean']:.1f}; contacts per step "
            f"median {r['contacts_median']:.0f}, max {r['contacts_max']}"
        )
    r = out["standing"]
    print(
        f"standing (the bench's raw ceiling): Newton iterations median {r['median']:.0f}, max {r['max']}; "
        f"contacts median {r['contacts_median']:.0f}"
    )
    by = out["mjcf"]["mean_iterations_by_contacts"]
    print("uncapped mean iterations by contact count: " + ", ".join(f"{k}: {v:.1f}" for k, v in by.items()))
    print(
        f"uncapped steps that needed more than {args.cap}: {100 * out['share_of_uncapped_steps_over_cap']:.2f} %"
    )
    print(f"end state, capped vs not: joint qpos up to {dq:.2e}, root position up to {dp:.2e} m")
    for key, r in out.items():
        if key.startswith("warp_tolerance_"):
            print(
                f"MuJoCo Warp (float32, CPU device), solver_tolerance {key[15:]}: iterations per physics step "
                f"mean {r['mean']:.2f}, median {r['median']:.0f}, p99 {r['p99']:.0f}, max {r['max']}, slowest env "
                f"per step (mean over steps) {r['max_over_envs_per_step_mean']:.1f}"
            )


if __name__ == "__main__":
    main()
