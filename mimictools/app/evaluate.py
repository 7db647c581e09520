"""Evaluate a trained checkpoint: run deterministic episodes, compute metrics, write data/plots/video.

The library behind ``mimic eval`` (the CLI only parses options and prints). The run folder is the
checkpoint's folder (``config.yaml`` + ``run.json`` next to it, `mimictools.app.run`); the env is rebuilt
from it, optionally on another clip of the same character.

Evaluation protocol (documented in docs/eval.md):

- the policy acts with its mean action (deterministic) and the env is in test mode;
- episodes start at clip time 0 (reference state initialisation), episode ``i`` on clip
  ``i mod num_clips``; ``rand_start`` draws start times uniformly instead (seeded). MimicKit's own
  test episodes keep ``rand_reset`` on; we do not by default, so that an evaluation is repeatable and
  covers each clip from its beginning;
- an episode ends as in training: ``episode_length``, the end of a clamp clip, or early termination.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np

from mimictools.errors import CheckpointError, ConfigError, MimicToolsError
from mimictools.eval.metrics import (
    DEFAULT_FAIL_DIST_M,
    EpisodeErrors,
    FrameErrors,
    compute_frame_errors,
    joint_angle_channels,
    joint_angles_rad,
    summarize,
)
from mimictools.eval.rollout import Episode, plan_episodes, run_episodes
from mimictools.io_util import atomic_open, atomic_write_text
from mimictools.tasks.tracking import TRACKING_ERROR_KEYS

__all__ = [
    "DEFAULT_JOINTS",
    "EvalOptions",
    "EvalResult",
    "PolicyEnv",
    "check_joint_names",
    "default_joints",
    "evaluate",
    "open_policy_env",
    "resolve_checkpoint",
    "write_errors",
    "write_plots",
    "write_video",
]

#: Joint-angle channels plotted by default (those the character has; see `metrics.joint_angle_channels`).
DEFAULT_JOINTS = (
    "right_hip_y",
    "right_knee",
    "right_ankle_y",
    "left_knee",
    "right_shoulder_y",
    "right_elbow",
)


@dataclass(frozen=True)
class EvalOptions:
    """What to evaluate and how."""

    motion: Optional[str] = None
    """Clip or dataset to evaluate on (default: the run's)."""
    episodes: Optional[int] = None
    """Number of episodes (default: one per clip; 8 with ``rand_start`` on a single clip)."""
    num_envs: Optional[int] = None
    """Parallel envs (default: min(episodes, 16))."""
    rand_start: bool = False
    """Start episodes at uniform random clip times instead of 0."""
    seed: int = 0
    """Seed of the random start times."""
    episode_length_s: Optional[float] = None
    """Override the env's ``episode_length`` (s)."""
    fail_dist_m: float = DEFAULT_FAIL_DIST_M
    """Success threshold on the mean world body position error (m)."""
    device: str = "cpu"
    """torch device for the task and the policy."""
    engine: Optional[str] = None
    """Physics engine (default: the run's); another one than the run's is a sim2sim evaluation."""
    num_threads: int = 0
    """CPU engine worker threads (0 = all cores)."""
    fps: Optional[float] = None
    """Frame rate of robot .csv clips (``--fps``; default: the one the run recorded)."""


@dataclass(frozen=True)
class EvalResult:
    """Everything an evaluation produced."""

    checkpoint: Path
    run_dir: Path
    cfg: Any
    """The run's `RunConfig` (with the evaluation's overrides)."""
    spec: Any
    """The run's `RunSpec` (with the evaluation's motion/envs/device)."""
    char: Any
    """The `Character`."""
    control_dt: float
    episodes: List[Episode]
    errors: List[FrameErrors]
    metrics: Dict[str, Any]


def resolve_checkpoint(path: Path) -> Path:
    """A checkpoint file, or a run folder (its ``best.pt``, else ``latest.pt``)."""
    path = Path(path)
    if path.is_dir():
        for name in ("best.pt", "latest.pt"):
            if (path / name).is_file():
                return path / name
        raise CheckpointError(f"{path}: run folder without best.pt or latest.pt")
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    return path


def check_joint_names(checkpoint: Path, names: Sequence[str]) -> None:
    """Raise (naming the valid ones) if the run's character has no joint-angle channel in ``names``;
    cheap, for checking ``--joints`` before the episodes run."""
    from mimictools.app import run as runlib
    from mimictools.character.mjcf import load_character

    _, spec = runlib.load_run_files(resolve_checkpoint(checkpoint).parent)
    char = load_character(spec.char_file)
    valid = [c[0] for c in joint_angle_channels(char)]
    bad = [n for n in names if n not in valid]
    if bad:
        raise MimicToolsError(
            f"--joints: no joint angle named {', '.join(map(repr, bad))}; valid: {', '.join(valid)}"
        )


@dataclass(frozen=True)
class PolicyEnv:
    """A checkpoint's policy and its run's env, rebuilt for evaluation (`open_policy_env`). Close ``env``."""

    checkpoint: Path
    run_dir: Path
    cfg: Any
    """The run's `RunConfig` (with the evaluation's overrides)."""
    spec: Any
    """The run's `RunSpec` (with the evaluation's motion/envs/device)."""
    env: Any
    """The `DeepMimicEnv`."""
    policy: Any
    """The deterministic policy: observations -> env actions (`rl.checkpoint.load_policy`)."""
    trained_engine: str
    clip_lengths_s: List[float]
    """Length of each clip of the env's MotionLib (s)."""


def open_policy_env(
    checkpoint: Path, options: EvalOptions = EvalOptions(), num_envs: Optional[int] = None
) -> PolicyEnv:
    """Rebuild ``checkpoint``'s env (``options``' motion, engine, episode length, device) with ``num_envs``
    envs (default: min(episodes, 16)) and load its policy, checking that the two fit."""
    import torch

    from mimictools.app import run as runlib
    from mimictools.config.load import apply_overrides
    from mimictools.engines.registry import canonical_engine_name
    from mimictools.rl.checkpoint import load_policy

    ckpt = resolve_checkpoint(checkpoint)
    run_dir = ckpt.parent
    cfg, spec = runlib.load_run_files(run_dir)
    trained_engine = cfg.engine.engine_name
    if options.engine:
        name = canonical_engine_name(options.engine)
        cfg = apply_overrides(cfg, [f"engine.engine_name={name}"], source="--engine")
    if options.episode_length_s is not None:
        if not options.episode_length_s > 0:
            raise ConfigError(f"--episode-length must be > 0 s, got {options.episode_length_s}")
        cfg = apply_overrides(
            cfg, [f"env.episode_length={float(options.episode_length_s)}"], source="--episode-length"
        )
    motion_file = spec.motion_file
    if options.motion is not None:
        mp = Path(options.motion)
        if not mp.exists():
            raise ConfigError(f"--motion: {mp} not found")
        motion_file = str(mp.resolve())
    elif not Path(motion_file).exists():
        raise ConfigError(f"the run's clip {motion_file} no longer exists: pass --motion")
    from mimictools.motion.io import resolve_clip_fps

    if options.fps is not None:
        motion_fps = resolve_clip_fps(motion_file, options.fps)
    else:  # the run's own --fps (a run on a .csv recorded it)
        motion_fps = resolve_clip_fps(motion_file, spec.motion_fps, given=False)
    if num_envs is None:
        episodes = _num_episodes(options, motion_file)
        num_envs = options.num_envs if options.num_envs is not None else min(episodes, 16)
        if num_envs < 1:
            raise ConfigError(f"--num-envs must be >= 1, got {num_envs}")
        num_envs = min(num_envs, episodes)

    spec = replace(
        spec,
        motion_file=motion_file,
        motion_fps=motion_fps,
        num_envs=num_envs,
        device=options.device,
        num_threads=options.num_threads,
    )
    env = runlib.build_env(cfg, spec)
    try:
        policy = load_policy(ckpt, device=options.device)
        obs_dim = int(policy.obs_normalizer.dim)
        if obs_dim != env.obs_dim:
            raise CheckpointError(
                f"{ckpt}: the policy takes {obs_dim} observations but this env gives {env.obs_dim} "
                "(another character or env config?)"
            )
        if int(policy.action_low.shape[-1]) != env.action_dim:
            raise CheckpointError(
                f"{ckpt}: the policy outputs {int(policy.action_low.shape[-1])} actions but the character has "
                f"{env.action_dim} DoFs (--motion must be for the same character)"
            )
        lib = env.motion_lib
        lengths = [
            float(x) for x in lib.motion_length(torch.arange(lib.num_motions, device=lib.device)).tolist()
        ]
    except BaseException:
        env.close()
        raise
    return PolicyEnv(ckpt, run_dir, cfg, spec, env, policy, trained_engine, lengths)


def _num_episodes(options: EvalOptions, motion_file: str) -> int:
    from mimictools.motion.io import expand_motion_paths

    num_clips = len(expand_motion_paths(Path(motion_file)))
    episodes = options.episodes
    if episodes is None:
        episodes = max(num_clips, 8) if options.rand_start else num_clips
    if episodes < 1:
        raise ConfigError(f"--episodes must be >= 1, got {episodes}")
    return episodes


def evaluate(
    checkpoint: Path,
    options: EvalOptions = EvalOptions(),
    on_episode: Optional[Callable[[Episode], None]] = None,
) -> EvalResult:
    """Run the evaluation episodes of ``checkpoint`` and compute their metrics."""
    import torch

    if not options.fail_dist_m > 0:
        raise ConfigError(f"--fail-dist must be > 0 m, got {options.fail_dist_m}")
    pe = open_policy_env(checkpoint, options)
    cfg, spec, env = pe.cfg, pe.spec, pe.env
    ckpt, run_dir, motion_file = pe.checkpoint, pe.run_dir, spec.motion_file
    try:
        episodes = _num_episodes(options, motion_file)
        specs = plan_episodes(episodes, pe.clip_lengths_s, rand_start=options.rand_start, seed=options.seed)
        with torch.no_grad():
            eps = run_episodes(env, pe.policy, specs, on_episode=on_episode)
        char = env.character
        control_dt = float(env.control_dt)
    finally:
        env.close()

    errors = [compute_frame_errors(char, e.sim.track_state(), e.ref.track_state()) for e in eps]
    summary = summarize(
        [
            EpisodeErrors(e.clip, e.spec.start_time_s, e.early_termination, e.rewards, err, control_dt)
            for e, err in zip(eps, errors)
        ],
        char.body_names,
        [j.name for j in char.joints],
        fail_dist_m=options.fail_dist_m,
    )
    for d, e in zip(summary["episode_details"], eps):
        d["env_end"] = e.end
    metrics: Dict[str, Any] = {
        "checkpoint": str(ckpt),
        "run_dir": str(run_dir),
        "motion_file": motion_file,
        "char_file": spec.char_file,
        "engine": cfg.engine.engine_name,
        "trained_engine": pe.trained_engine,
        "deterministic": True,
        "rand_start": bool(options.rand_start),
        "seed": int(options.seed),
        "episode_length_s": float(cfg.env.episode_length),
        "control_dt_s": control_dt,
    }
    metrics.update(summary)
    metrics["joint_angles_deg"] = joint_angle_summary(char, eps)
    return EvalResult(ckpt, run_dir, cfg, spec, char, control_dt, eps, errors, metrics)


def joint_angle_summary(char, episodes: Sequence[Episode]) -> Dict[str, Dict[str, float]]:
    """Did the main joints move as the clip does: for each `default_joints` channel, the reference's and the
    simulation's range and the mean / max absolute angle error over all frames (degrees)."""
    names = default_joints(char)
    if not names or not episodes:
        return {}
    ref = np.concatenate([joint_angles_rad(char, e.ref.qpos(char), e.ref.dof_pos, names) for e in episodes])
    sim = np.concatenate([joint_angles_rad(char, e.sim.qpos(char), e.sim.dof_pos, names) for e in episodes])
    ref, sim = np.degrees(ref), np.degrees(sim)
    err = np.abs(sim - ref)
    return {
        n: {
            "ref_min": float(ref[:, i].min()),
            "ref_max": float(ref[:, i].max()),
            "sim_min": float(sim[:, i].min()),
            "sim_max": float(sim[:, i].max()),
            "mean_abs_err": float(err[:, i].mean()),
            "max_abs_err": float(err[:, i].max()),
        }
        for i, n in enumerate(names)
    }


# ------------------------------------------------------------------------------- outputs


def _json_safe(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_json_safe(v) for v in x]
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def metrics_json(result: EvalResult) -> str:
    """The metrics as JSON text (non-finite numbers become null)."""
    return json.dumps(_json_safe(result.metrics), indent=2) + "\n"


def write_errors(result: EvalResult, out_dir: Path) -> List[Path]:
    """Write ``metrics.json``, ``errors.npz`` and ``errors.csv`` (per-frame data) into ``out_dir``.

    ``errors.npz`` (all frames of all episodes, concatenated; ``F`` frames): ``episode`` (F,),
    ``clip_index`` (F,), ``clips``, ``time_s``, ``motion_time_s``, ``reward``, ``tracking`` (F, 7) with
    ``tracking_keys``, ``body_pos_err_m``/``body_pos_err_local_m`` (F, nb) with ``body_names``,
    ``joint_rot_err_rad`` (F, nj) with ``joint_names``, and the states ``sim_/ref_`` ``qpos`` (F, nq,
    Character layout), ``dof_pos`` (F, nd) with ``dof_names``, ``body_pos`` (F, nb, 3), ``root_pos``
    (F, 3), ``root_rot`` (F, 4, wxyz). ``errors.csv``: one row per frame, units in the column names.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    char = result.char
    eps, errs = result.episodes, result.errors
    clips = sorted({e.clip for e in eps})
    body_names = list(char.body_names)
    joint_names = [j.name for j in char.joints]

    def cat(xs: Sequence[np.ndarray]) -> np.ndarray:
        return np.concatenate(list(xs), axis=0)

    arrays: Dict[str, np.ndarray] = {
        "episode": cat([np.full(e.num_frames, i, dtype=np.int32) for i, e in enumerate(eps)]),
        "clip_index": cat([np.full(e.num_frames, clips.index(e.clip), dtype=np.int32) for e in eps]),
        "clips": np.array(clips),
        "time_s": cat([e.time_s for e in eps]),
        "motion_time_s": cat([e.motion_time_s for e in eps]),
        "reward": cat([e.rewards for e in eps]),
        "tracking": cat([x.tracking for x in errs]),
        "tracking_keys": np.array(TRACKING_ERROR_KEYS),
        "body_pos_err_m": cat([x.body_pos_err_m for x in errs]),
        "body_pos_err_local_m": cat([x.body_pos_err_local_m for x in errs]),
        "joint_rot_err_rad": cat([x.joint_rot_err_rad for x in errs]),
        "body_names": np.array(body_names),
        "joint_names": np.array(joint_names),
        "dof_names": np.array(char.dof_names),
        "control_dt_s": np.array(result.control_dt),
    }
    for side in ("sim", "ref"):
        trajs = [getattr(e, side) for e in eps]
        arrays[f"{side}_qpos"] = cat([t.qpos(char) for t in trajs])
        for k in ("dof_pos", "body_pos", "root_pos", "root_rot"):
            arrays[f"{side}_{k}"] = cat([getattr(t, k) for t in trajs])

    paths = [out_dir / "metrics.json", out_dir / "errors.npz", out_dir / "errors.csv"]
    atomic_write_text(paths[0], metrics_json(result))
    with atomic_open(paths[1], "wb") as f:
        np.savez_compressed(f, **arrays)  # type: ignore[arg-type]  # numpy's stub types **kwds oddly

    header = ["episode", "clip", "time_s", "motion_time_s", "reward"] + list(TRACKING_ERROR_KEYS)
    header += ["body_pos_err_mm", "body_pos_err_local_mm"]
    header += [f"pos_err_mm:{b}" for b in body_names] + [f"pos_err_local_mm:{b}" for b in body_names]
    header += [f"rot_err_deg:{j}" for j in joint_names]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    for i, (e, x) in enumerate(zip(eps, errs)):
        g_mm, l_mm = 1000.0 * x.body_pos_err_m, 1000.0 * x.body_pos_err_local_m
        j_deg = np.degrees(x.joint_rot_err_rad)
        for t in range(e.num_frames):
            row: List[Any] = [
                i,
                e.clip,
                f"{e.time_s[t]:.4f}",
                f"{e.motion_time_s[t]:.4f}",
                f"{e.rewards[t]:.6g}",
            ]
            row += [f"{v:.6g}" for v in x.tracking[t]]
            row += [f"{g_mm[t].mean():.3f}", f"{l_mm[t].mean():.3f}"]
            row += (
                [f"{v:.3f}" for v in g_mm[t]] + [f"{v:.3f}" for v in l_mm[t]] + [f"{v:.3f}" for v in j_deg[t]]
            )
            w.writerow(row)
    atomic_write_text(paths[2], buf.getvalue())
    return paths


def default_joints(char) -> List[str]:
    """`DEFAULT_JOINTS` the character has; else its first six joint-angle channels."""
    names = [c[0] for c in joint_angle_channels(char)]
    picked = [n for n in DEFAULT_JOINTS if n in names]
    return picked if picked else names[:6]


def write_plots(
    result: EvalResult, plot_dir: Path, joints: Optional[Sequence[str]] = None, episode: int = 0
) -> List[Path]:
    """Write the evaluation PNGs into ``plot_dir``; returns their paths.

    ``body_pos_error.png``, ``tracking_errors.png``, ``joint_angles.png``, ``root_trajectory.png``
    (episode ``episode``), ``joint_errors.png`` (all episodes) and ``training_curves.png`` (the run's
    ``log.txt``, when present).
    """
    from mimictools.eval import plots
    from mimictools.io_util import save_figure

    if not 0 <= episode < len(result.episodes):
        raise MimicToolsError(f"episode {episode} out of range: {len(result.episodes)} episodes were run")
    plot_dir = Path(plot_dir)
    plot_dir.mkdir(parents=True, exist_ok=True)
    char = result.char
    e, x = result.episodes[episode], result.errors[episode]
    joints = list(joints) if joints else default_joints(char)
    which = f"episode {episode + 1}/{len(result.episodes)}: {e.clip}, start {e.spec.start_time_s:.2f} s, ended {e.end}"
    t = e.time_s
    out: List[Path] = []

    def save(fig, name: str) -> None:
        p = plot_dir / name
        save_figure(fig, p)
        out.append(p)

    save(
        plots.body_error_over_time(
            t, x.body_pos_err_local_m, char.body_names, subtitle=which, root_relative=True
        ),
        "body_pos_error.png",
    )
    save(
        plots.tracking_errors_over_time(t, x.tracking, TRACKING_ERROR_KEYS, subtitle=which),
        "tracking_errors.png",
    )
    ref = joint_angles_rad(char, e.ref.qpos(char), e.ref.dof_pos, joints)
    sim = joint_angles_rad(char, e.sim.qpos(char), e.sim.dof_pos, joints)
    save(plots.joint_angle_curves(t, ref, sim, joints, subtitle=which), "joint_angles.png")
    save(
        plots.root_trajectory(
            e.ref.root_pos[:, :2], e.sim.root_pos[:, :2], title=f"Root trajectory (top view)\n{which}"
        ),
        "root_trajectory.png",
    )
    per_joint = result.metrics["per_joint"]
    names = list(per_joint)
    save(
        plots.per_joint_error_bars(
            names,
            np.array([per_joint[n]["rot_err_deg"] for n in names]),
            subtitle=f"mean over {result.metrics['frames']} frames of {len(result.episodes)} episode(s)",
        ),
        "joint_errors.png",
    )
    log = result.run_dir / "log.txt"
    if log.is_file():
        from mimictools.eval.logs import read_log

        data = read_log(log)
        cols = [c for c in ("Test_Return", "Train_Return", "Body_Pos_Err", "Root_Pos_Err") if c in data]
        if cols and len(data.get("Iteration", ())) > 0:
            save(plots.training_curves([(result.run_dir.name, data)], cols), "training_curves.png")
    return out


def write_video(
    result: EvalResult,
    out: Path,
    episode: int = 0,
    width: int = 640,
    height: int = 480,
    backend: Optional[str] = None,
) -> Path:
    """Render episode ``episode`` (simulated beside the reference ghost) to the mp4 ``out``."""
    from mimictools.eval.video import render_video

    if not 0 <= episode < len(result.episodes):
        raise MimicToolsError(f"episode {episode} out of range: {len(result.episodes)} episodes were run")
    e, x = result.episodes[episode], result.errors[episode]
    char = result.char
    mean_local_cm = 100.0 * x.body_pos_err_local_m.mean(axis=1)
    captions = [f"t = {t:5.2f} s   body pos err {c:5.1f} cm" for t, c in zip(e.time_s, mean_local_cm)]
    return render_video(
        char,
        e.sim.qpos(char),
        e.ref.qpos(char),
        out,
        fps=1.0 / result.control_dt,
        ref_offset=tuple(result.cfg.env.ref_char_offset),
        width=width,
        height=height,
        captions=captions,
        title=f"{e.clip} (episode {episode + 1}, start {e.spec.start_time_s:.2f} s, {e.end})",
        backend=backend,
    )
