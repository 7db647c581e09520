"""Deterministic evaluation episodes of a policy, recording the simulated and reference state per frame.

An episode starts with reference state initialisation at a chosen clip and clip time (`EpisodeSpec`)
and runs the policy until the env ends it: ``episode_length``, the end of a clamp clip, or early
termination (fall contact / pose termination), exactly as in training's test mode. Frames are the
states *after* each control step (frame k at episode time (k + 1) * control_dt), the same frames
whose tracking errors MimicKit averages in its log; the reset state itself (zero error) is not a frame.

Episodes run ``env.num_envs`` at a time: each env takes the next planned episode when its current
one ends. Which clip and start time each episode gets is planned up front (`plan_episodes`), not
sampled by the env, so the evaluation is repeatable and covers every clip of a dataset.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
import torch
from torch import Tensor

from mimictools.errors import MimicToolsError
from mimictools.tasks.env_api import DoneFlag
from mimictools.tasks.tracking import TrackState

__all__ = ["Episode", "EpisodeSpec", "Trajectory", "plan_episodes", "run_episodes"]

_FIELDS = (
    "root_pos",
    "root_rot",
    "root_vel",
    "root_ang_vel",
    "joint_rot",
    "dof_pos",
    "dof_vel",
    "body_pos",
    "body_rot",
)


@dataclass(frozen=True)
class EpisodeSpec:
    """Which clip an episode tracks and from when."""

    motion_id: int
    """Index of the clip in the env's MotionLib."""
    start_time_s: float
    """Clip time of the reset (s)."""


@dataclass(frozen=True)
class Trajectory:
    """Kinematic state per frame of one character (numpy float32, world frame, wxyz). ``T`` frames."""

    root_pos: np.ndarray
    """Shape (T, 3), m."""
    root_rot: np.ndarray
    """Shape (T, 4)."""
    root_vel: np.ndarray
    """Shape (T, 3), m/s, world."""
    root_ang_vel: np.ndarray
    """Shape (T, 3), rad/s, world."""
    joint_rot: np.ndarray
    """Local rotation per non-root body. Shape (T, nb - 1, 4)."""
    dof_pos: np.ndarray
    """Motion DoFs (hinge angles, exp maps), rad. Shape (T, nd)."""
    dof_vel: np.ndarray
    """Shape (T, nd), rad/s."""
    body_pos: np.ndarray
    """Shape (T, nb, 3), m."""
    body_rot: np.ndarray
    """Shape (T, nb, 4)."""

    @property
    def num_frames(self) -> int:
        return int(self.root_pos.shape[0])

    def track_state(self) -> TrackState:
        """As a `TrackState` (torch, CPU), batched over frames."""
        return TrackState(**{k: torch.from_numpy(getattr(self, k)) for k in _FIELDS if k != "dof_pos"})

    def qpos(self, char) -> np.ndarray:
        """MuJoCo qpos in the Character layout (`kinematics.dof_to_qpos`). Shape (T, char.num_qpos)."""
        from mimictools.character.kinematics import dof_to_qpos

        with torch.no_grad():
            q = dof_to_qpos(
                char,
                torch.from_numpy(self.root_pos).double(),
                torch.from_numpy(self.root_rot).double(),
                torch.from_numpy(self.dof_pos).double(),
            )
        return q.numpy()


@dataclass(frozen=True)
class Episode:
    """One evaluated episode."""

    spec: EpisodeSpec
    clip: str
    """Clip name (file stem)."""
    done_flag: int
    """How the env ended it (`DoneFlag`: 1 FAIL, 2 SUCC end of a clamp clip, 3 TIME episode length)."""
    time_s: np.ndarray
    """Episode time of each frame (s). Shape (T,)."""
    motion_time_s: np.ndarray
    """Clip time of each frame (s; grows past the clip length on wrap clips). Shape (T,)."""
    rewards: np.ndarray
    """Reward per step. Shape (T,)."""
    sim: Trajectory
    ref: Trajectory

    @property
    def num_frames(self) -> int:
        return int(self.time_s.shape[0])

    @property
    def early_termination(self) -> bool:
        return self.done_flag == int(DoneFlag.FAIL)

    @property
    def end(self) -> str:
        """``"FAIL"``, ``"SUCC"`` or ``"TIME"``."""
        try:
            return DoneFlag(self.done_flag).name
        except ValueError:
            return str(self.done_flag)


def plan_episodes(
    num_episodes: int,
    clip_lengths_s: Sequence[float],
    rand_start: bool = False,
    seed: int = 0,
) -> List[EpisodeSpec]:
    """Episode ``i`` tracks clip ``i mod num_clips``, from t = 0, or (``rand_start``) from a uniform
    random clip time drawn with ``seed``."""
    if num_episodes < 1:
        raise MimicToolsError(f"the number of episodes must be >= 1, got {num_episodes}")
    if not clip_lengths_s:
        raise MimicToolsError("no clip to evaluate")
    rng = np.random.default_rng(seed)
    specs = []
    for i in range(num_episodes):
        m = i % len(clip_lengths_s)
        t = float(rng.uniform(0.0, float(clip_lengths_s[m]))) if rand_start else 0.0
        specs.append(EpisodeSpec(motion_id=m, start_time_s=t))
    return specs


def _np(t: Tensor) -> np.ndarray:
    return t.detach().to("cpu", torch.float32).numpy().copy()


def run_episodes(
    env,
    policy: Callable[[Tensor], Tensor],
    specs: Sequence[EpisodeSpec],
    max_steps_per_episode: int = 100_000,
    on_episode: Optional[Callable[[Episode], None]] = None,
) -> List[Episode]:
    """Run the planned episodes with ``policy`` (observations -> env actions) on a `DeepMimicEnv`.

    The env is put in test mode for the duration. Envs beyond the number of episodes (and envs whose
    work is done) keep stepping from a reset and are ignored. Returns the episodes in ``specs`` order.
    ``on_episode`` is called as each episode finishes (progress display).
    """
    if not specs:
        raise MimicToolsError("no episode to run")
    n = int(env.num_envs)
    lib = env.motion_lib
    names = [_clip_name(m, i) for i, m in enumerate(getattr(lib, "motions", ()))]
    dev = env.device
    queue = list(range(len(specs)))
    current: List[Optional[int]] = [None] * n  # index into specs per env
    first_step = [0] * n
    results: Dict[int, Episode] = {}
    steps: Dict[str, List[np.ndarray]] = {k: [] for k in ("time_s", "motion_time_s", "reward")}
    sim_steps: Dict[str, List[np.ndarray]] = {k: [] for k in _FIELDS}
    ref_steps: Dict[str, List[np.ndarray]] = {k: [] for k in _FIELDS}

    def start(env_ids: List[int]) -> Tensor:
        picked = []
        for i in env_ids:
            if queue:
                k = queue.pop(0)
                current[i] = k
                picked.append(specs[k])
            else:  # idle env: keep it valid, ignore its frames
                current[i] = None
                picked.append(specs[0])
            first_step[i] = len(steps["reward"])
        ids = torch.tensor(env_ids, dtype=torch.long, device=dev)
        return env.reset(
            ids,
            motion_ids=torch.tensor([s.motion_id for s in picked], dtype=torch.long, device=dev),
            start_time_s=torch.tensor([s.start_time_s for s in picked], dtype=torch.float64, device=dev),
        )

    def finish(i: int, last_step: int, flag: int) -> Episode:
        sl = slice(first_step[i], last_step + 1)

        def traj(store: Dict[str, List[np.ndarray]]) -> Trajectory:
            return Trajectory(**{k: np.stack([a[i] for a in store[k][sl]]) for k in _FIELDS})

        spec = specs[current[i]]  # type: ignore[index]
        return Episode(
            spec=spec,
            clip=names[spec.motion_id] if spec.motion_id < len(names) else f"clip{spec.motion_id}",
            done_flag=int(flag),
            time_s=np.array([a[i] for a in steps["time_s"][sl]], dtype=np.float64),
            motion_time_s=np.array([a[i] for a in steps["motion_time_s"][sl]], dtype=np.float64),
            rewards=np.array([a[i] for a in steps["reward"][sl]], dtype=np.float64),
            sim=traj(sim_steps),
            ref=traj(ref_steps),
        )

    env.set_mode(True)
    try:
        obs = start(list(range(n)))
        while len(results) < len(specs):
            obs, reward, done, _info = env.step(policy(obs))
            sim: TrackState = env.sim_state
            ref: TrackState = env.ref_state
            ref_frame = lib.calc_motion_frame(env.motion_ids, env.motion_time_s)
            for k in _FIELDS:
                if k == "dof_pos":
                    sim_steps[k].append(_np(env.engine.get_state().dof_pos))
                    ref_steps[k].append(_np(ref_frame.dof_pos))
                else:
                    sim_steps[k].append(_np(getattr(sim, k)))
                    ref_steps[k].append(_np(getattr(ref, k)))
            steps["time_s"].append(env.time_s.detach().cpu().numpy().astype(np.float64))
            steps["motion_time_s"].append(env.motion_time_s.detach().cpu().numpy().astype(np.float64))
            steps["reward"].append(reward.detach().cpu().numpy().astype(np.float64))
            if not (np.isfinite(steps["reward"][-1]).all() and np.isfinite(sim_steps["body_pos"][-1]).all()):
                raise MimicToolsError(
                    f"the simulation produced NaN/inf at evaluation step {len(steps['reward'])} (diverged policy?)"
                )
            flags = done.detach().cpu().numpy()
            step_idx = len(steps["reward"]) - 1
            ended = [i for i in range(n) if flags[i] != int(DoneFlag.NULL)]
            for i in range(n):
                if (
                    current[i] is not None
                    and flags[i] == int(DoneFlag.NULL)
                    and step_idx - first_step[i] + 1 >= max_steps_per_episode
                ):
                    raise MimicToolsError(
                        f"episode {current[i]} did not end within {max_steps_per_episode} steps (episode_length too large?)"
                    )
            for i in ended:
                if current[i] is not None:
                    ep = finish(i, step_idx, int(flags[i]))
                    results[current[i]] = ep  # type: ignore[index]
                    if on_episode is not None:
                        on_episode(ep)
            if ended:
                obs = obs.clone()
                obs[torch.tensor(ended, dtype=torch.long, device=dev)] = start(ended)
    finally:
        env.set_mode(False)
    return [results[i] for i in range(len(specs))]


def _clip_name(motion, index: int) -> str:
    from pathlib import Path

    src = getattr(motion, "source", None)
    return Path(str(src)).stem if src else f"clip{index}"
