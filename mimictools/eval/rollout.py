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
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor

from mimictools.errors import MimicToolsError
from mimictools.tasks.env_api import DoneFlag
from mimictools.tasks.tracking import TrackState

__all__ = [
    "Episode",
    "EpisodeSpec",
    "EpisodeStepper",
    "Trajectory",
    "clip_names",
    "plan_episodes",
    "run_episodes",
]

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


class EpisodeStepper:
    """The planned episodes of `run_episodes`, one control step per `step` call (the viewer drives it live).

    ``start`` puts the env in test mode and resets every env to its first episode; each `step` runs the policy
    for one control step, records the frame, and returns the episodes that ended in it (in ``specs`` index
    order); `close` puts the env back in training mode. Envs beyond the number of episodes (and envs whose
    work is done) keep stepping from a reset and are ignored.
    """

    def __init__(
        self,
        env,
        policy: Callable[[Tensor], Tensor],
        specs: Sequence[EpisodeSpec],
        max_steps_per_episode: int = 100_000,
    ):
        if not specs:
            raise MimicToolsError("no episode to run")
        self.env, self.policy, self.specs = env, policy, list(specs)
        self.max_steps_per_episode = int(max_steps_per_episode)
        n = int(env.num_envs)
        self.names = clip_names(env)
        self._queue = list(range(len(self.specs)))
        self.current: List[Optional[int]] = [None] * n
        """Index into ``specs`` of the episode each env runs (None: idle)."""
        self._first_step = [0] * n
        self.results: Dict[int, Episode] = {}
        self._steps: Dict[str, List[np.ndarray]] = {k: [] for k in ("time_s", "motion_time_s", "reward")}
        self._sim: Dict[str, List[np.ndarray]] = {k: [] for k in _FIELDS}
        self._ref: Dict[str, List[np.ndarray]] = {k: [] for k in _FIELDS}
        self._obs: Optional[Tensor] = None

    @property
    def finished(self) -> bool:
        """Every planned episode has ended."""
        return len(self.results) == len(self.specs)

    def start(self) -> None:
        self.env.set_mode(True)
        self._obs = self._start(list(range(int(self.env.num_envs))))

    def close(self) -> None:
        self.env.set_mode(False)

    def _start(self, env_ids: List[int]) -> Tensor:
        picked = []
        for i in env_ids:
            if self._queue:
                k = self._queue.pop(0)
                self.current[i] = k
                picked.append(self.specs[k])
            else:  # idle env: keep it valid, ignore its frames
                self.current[i] = None
                picked.append(self.specs[0])
            self._first_step[i] = len(self._steps["reward"])
        dev = self.env.device
        ids = torch.tensor(env_ids, dtype=torch.long, device=dev)
        return self.env.reset(
            ids,
            motion_ids=torch.tensor([s.motion_id for s in picked], dtype=torch.long, device=dev),
            start_time_s=torch.tensor([s.start_time_s for s in picked], dtype=torch.float64, device=dev),
        )

    def trajectories(self, i: int, first: int, last: int) -> Tuple[Trajectory, Trajectory]:
        """Env ``i``'s simulated and reference states over recorded steps ``first``..``last`` (inclusive)."""
        sl = slice(first, last + 1)

        def traj(store: Dict[str, List[np.ndarray]]) -> Trajectory:
            return Trajectory(**{k: np.stack([a[i] for a in store[k][sl]]) for k in _FIELDS})

        return traj(self._sim), traj(self._ref)

    def last_frame(self, i: int = 0) -> Tuple[Trajectory, Trajectory]:
        """Env ``i``'s simulated and reference state after the latest step (one-frame Trajectories)."""
        last = len(self._steps["reward"]) - 1
        return self.trajectories(i, last, last)

    def last_time_s(self, i: int = 0) -> Tuple[float, float]:
        """Env ``i``'s episode time and reference clip time after the latest step (s)."""
        return float(self._steps["time_s"][-1][i]), float(self._steps["motion_time_s"][-1][i])

    def _finish(self, i: int, last_step: int, flag: int) -> Episode:
        first = self._first_step[i]
        sim, ref = self.trajectories(i, first, last_step)
        spec = self.specs[self.current[i]]  # type: ignore[index]

        def column(key: str) -> np.ndarray:
            return np.array([a[i] for a in self._steps[key][first : last_step + 1]], dtype=np.float64)

        return Episode(
            spec=spec,
            clip=self.names[spec.motion_id] if spec.motion_id < len(self.names) else f"clip{spec.motion_id}",
            done_flag=int(flag),
            time_s=column("time_s"),
            motion_time_s=column("motion_time_s"),
            rewards=column("reward"),
            sim=sim,
            ref=ref,
        )

    def step(self) -> List[Episode]:
        """One control step of every env; the episodes that ended in it."""
        env, lib = self.env, self.env.motion_lib
        if self._obs is None:
            raise MimicToolsError("EpisodeStepper.step() before start()")
        obs, reward, done, _info = env.step(self.policy(self._obs))
        sim: TrackState = env.sim_state
        ref: TrackState = env.ref_state
        ref_frame = lib.calc_motion_frame(env.motion_ids, env.motion_time_s)
        for k in _FIELDS:
            if k == "dof_pos":
                self._sim[k].append(_np(env.engine.get_state().dof_pos))
                self._ref[k].append(_np(ref_frame.dof_pos))
            else:
                self._sim[k].append(_np(getattr(sim, k)))
                self._ref[k].append(_np(getattr(ref, k)))
        steps = self._steps
        steps["time_s"].append(env.time_s.detach().cpu().numpy().astype(np.float64))
        steps["motion_time_s"].append(env.motion_time_s.detach().cpu().numpy().astype(np.float64))
        steps["reward"].append(reward.detach().cpu().numpy().astype(np.float64))
        if not (np.isfinite(steps["reward"][-1]).all() and np.isfinite(self._sim["body_pos"][-1]).all()):
            raise MimicToolsError(
                f"the simulation produced NaN/inf at evaluation step {len(steps['reward'])} (diverged policy?)"
            )
        flags = done.detach().cpu().numpy()
        step_idx = len(steps["reward"]) - 1
        n = len(self.current)
        ended = [i for i in range(n) if flags[i] != int(DoneFlag.NULL)]
        for i in range(n):
            if (
                self.current[i] is not None
                and flags[i] == int(DoneFlag.NULL)
                and step_idx - self._first_step[i] + 1 >= self.max_steps_per_episode
            ):
                raise MimicToolsError(
                    f"episode {self.current[i]} did not end within {self.max_steps_per_episode} steps (episode_length too large?)"
                )
        out = []
        for i in ended:
            k = self.current[i]
            if k is not None:
                ep = self._finish(i, step_idx, int(flags[i]))
                self.results[k] = ep
                out.append((k, ep))
        if ended:
            obs = obs.clone()
            obs[torch.tensor(ended, dtype=torch.long, device=env.device)] = self._start(ended)
        self._obs = obs
        return [ep for _, ep in sorted(out, key=lambda x: x[0])]


def run_episodes(
    env,
    policy: Callable[[Tensor], Tensor],
    specs: Sequence[EpisodeSpec],
    max_steps_per_episode: int = 100_000,
    on_episode: Optional[Callable[[Episode], None]] = None,
) -> List[Episode]:
    """Run the planned episodes with ``policy`` (observations -> env actions) on a `DeepMimicEnv`
    (`EpisodeStepper` until every episode ended). Returns the episodes in ``specs`` order.
    ``on_episode`` is called as each episode finishes (progress display).
    """
    stepper = EpisodeStepper(env, policy, specs, max_steps_per_episode)
    stepper.start()
    try:
        while not stepper.finished:
            for ep in stepper.step():
                if on_episode is not None:
                    on_episode(ep)
    finally:
        stepper.close()
    return [stepper.results[i] for i in range(len(specs))]


def clip_names(env) -> List[str]:
    """The names (file stems) of the clips of ``env``'s MotionLib, in motion id order."""
    return [_clip_name(m, i) for i, m in enumerate(getattr(env.motion_lib, "motions", ()))]


def _clip_name(motion, index: int) -> str:
    from pathlib import Path

    src = getattr(motion, "source", None)
    return Path(str(src)).stem if src else f"clip{index}"
