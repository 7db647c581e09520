"""The PPO training loop, written against `mimictools.rl.env_api.VecEnv` (any engine, any device).

One iteration (MimicKit ``base_agent.py`` ``train_model``/``_train_iter``):

1. roll out ``steps_per_iter`` control steps in all envs with sampled actions, recording raw
   observations into the normalizer; done envs are reset by the runner (``env.step`` does not);
2. PPO update (`mimictools.rl.ppo`), then publish the normalizer statistics;
3. every ``iters_per_output`` iterations (iteration 0 included) and at the end: run test episodes
   with the mean action (at least one per env, as MimicKit), write a row to ``log.txt``, write
   checkpoints, then reset the training-return statistics and all envs.

Files in ``out_dir``: ``log.txt`` (MimicKit's columns, one row per output, ``\\n`` line ends),
TensorBoard events under ``tensorboard/`` (every iteration, step = samples), ``latest.pt``,
``best.pt`` (highest Test_Return) and ``iter_XXXXXX.pt`` per output; all written atomically.

Stopping: ``max_samples`` and/or ``max_minutes`` (of this session); both None = until Ctrl-C.
Ctrl-C writes ``latest.pt`` and returns normally (``stop_reason == "interrupted"``).
``resume=True`` restores ``latest.pt`` (networks, optimizers, normalizer, counters, RNG state);
resuming from a checkpoint written at an output iteration reproduces, on CPU with a seed, the
numbers of an uninterrupted run, because the runner resets every env right after each output and
the RNG state is captured before that reset. (An interrupt checkpoint resumes training, but not
bit-identically: the envs were mid-episode.)

A NaN/inf in observations, actions, rewards, values or losses raises `TrainingDivergedError`
naming it; no checkpoint is written after the divergence, so the last good one stays.
Nothing is printed: pass ``progress`` to `Runner.train` to draw a progress bar.
"""

from __future__ import annotations

# ruff: noqa: UP045 - Optional[...] stays: annotations must evaluate on Python 3.8 (typing.get_type_hints)
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple, Union

import torch
from torch import Tensor

from mimictools.config.load import to_dict
from mimictools.config.schema import AgentConfig
from mimictools.errors import CheckpointError, MimicToolsError, TrainingDivergedError
from mimictools.io_util import atomic_write_text
from mimictools.rl.checkpoint import (
    capture_rng_state,
    load_checkpoint,
    restore_rng_state,
    save_checkpoint,
    seed_everything,
)
from mimictools.rl.env_api import DoneFlag, VecEnv, check_env
from mimictools.rl.graphed import GraphedStep, supports_graphed_step
from mimictools.rl.networks import build_actor_critic
from mimictools.rl.normalizer import Normalizer
from mimictools.rl.ppo import PPO
from mimictools.rl.returns import terminal_value
from mimictools.rl.storage import RolloutStorage

__all__ = ["EpisodeTracker", "IterationReport", "Runner", "TestResult", "TrainResult", "available_cpus"]

OBS_CLIP = 10.0  # MimicKit's observation normalizer clip
OBS_MIN_STD = 1e-4  # MimicKit's normalizer std floor
LOG_COLUMN_WIDTH = 25  # MimicKit's log column width

PathLike = Union[str, "os.PathLike[str]"]


def available_cpus() -> int:
    """CPU cores this process may run on (respects taskset/cgroups affinity on Linux)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


# ---------------------------------------------------------------------------- results


@dataclass(frozen=True)
class TestResult:
    """Deterministic test episodes.

    Attributes:
        mean_return: mean undiscounted episode return.
        mean_episode_length: mean episode length (control steps).
        episodes: number of episodes completed.
        info: mean over test env-steps of each ``env.step`` info entry, Title_Cased
            (``root_pos_err`` -> ``Root_Pos_Err``).
    """

    mean_return: float
    mean_episode_length: float
    episodes: int
    info: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class IterationReport:
    """What the progress callback receives after each iteration.

    Attributes:
        iteration: 0-based iteration just completed.
        samples: training samples so far; max_samples / max_minutes: the stop conditions.
        wall_time_s: training time over all sessions; session_time_s: time of this `train` call.
        samples_per_s: throughput of this iteration (rollout + update).
        train_return, train_episode_length: since the last output.
        test: the latest test (None before the first one); is_output: a test ran this iteration.
        row: every logged value of this iteration (log column -> value).
    """

    iteration: int
    samples: int
    max_samples: Optional[int]
    max_minutes: Optional[float]
    wall_time_s: float
    session_time_s: float
    samples_per_s: float
    train_return: float
    train_episode_length: float
    test: Optional[TestResult]
    is_output: bool
    row: Mapping[str, float]


@dataclass(frozen=True)
class TrainResult:
    """Outcome of `Runner.train`.

    Attributes:
        iterations: iterations completed in total (all sessions).
        samples: training samples in total.
        wall_time_s: training time in total (s).
        stop_reason: "max_samples", "max_minutes" or "interrupted".
        last_test: the last test run (None if none ran).
        best_test_return: best Test_Return so far (-inf if no test ran).
        latest_checkpoint: path of latest.pt.
    """

    iterations: int
    samples: int
    wall_time_s: float
    stop_reason: str
    last_test: Optional[TestResult]
    best_test_return: float
    latest_checkpoint: Path


# ---------------------------------------------------------------------------- tracker


class EpisodeTracker:
    """Returns and lengths of finished episodes, vectorized, without a device sync per step."""

    def __init__(self, num_envs: int, device: torch.device) -> None:
        self._ret = torch.zeros(num_envs, dtype=torch.float64, device=device)
        self._len = torch.zeros(num_envs, dtype=torch.long, device=device)
        self.eps_per_env = torch.zeros(num_envs, dtype=torch.long, device=device)
        self._sum_ret = torch.zeros((), dtype=torch.float64, device=device)
        self._sum_len = torch.zeros((), dtype=torch.float64, device=device)

    def reset(self) -> None:
        for t in (self._ret, self._len, self.eps_per_env, self._sum_ret, self._sum_len):
            t.zero_()

    def update(self, reward: Tensor, done: Tensor) -> None:
        """Add one step: `reward` Shape (num_envs,), `done` Shape (num_envs,) DoneFlag values."""
        self._ret += reward.to(torch.float64)
        self._len += 1
        ended = done != int(DoneFlag.NULL)
        self._sum_ret += torch.where(ended, self._ret, torch.zeros_like(self._ret)).sum()
        self._sum_len += torch.where(ended, self._len, torch.zeros_like(self._len)).sum().to(torch.float64)
        self.eps_per_env += ended.to(torch.long)
        self._ret.masked_fill_(ended, 0.0)
        self._len.masked_fill_(ended, 0)

    def summary(self) -> Tuple[float, float, int]:
        """(mean return, mean length, episodes); means are 0 when no episode ended (as MimicKit)."""
        s_ret, s_len, n = torch.stack(
            [self._sum_ret, self._sum_len, self.eps_per_env.sum().to(torch.float64)]
        ).tolist()
        n = int(n)
        return (s_ret / n, s_len / n, n) if n > 0 else (0.0, 0.0, 0)


# -------------------------------------------------------------------------------- log


def _row_iteration(line: str) -> float:
    try:
        return float(line.split()[0])
    except (ValueError, IndexError):
        return math.inf  # not a data row of ours: dropped on resume


def _format_value(v: Any) -> str:
    if isinstance(v, bool):
        return str(int(v))
    if isinstance(v, int):
        return str(v)
    return repr(float(v))


class _TextLog:
    """MimicKit-style fixed-width text log; the whole file is rewritten atomically per row."""

    def __init__(self, path: Path, resume_after: Optional[int] = None) -> None:
        """Start a new log, or (``resume_after`` = last checkpointed iteration) continue one,
        dropping rows of later iterations (written after that checkpoint, before a crash)."""
        self.path = path
        self.columns: Optional[List[str]] = None
        self.text = ""
        if resume_after is not None and path.is_file():
            lines = [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
            if lines:
                self.columns = lines[0].split()
                kept = [lines[0]] + [ln for ln in lines[1:] if _row_iteration(ln) <= resume_after]
                self.text = "\n".join(kept) + "\n"

    def write(self, row: Mapping[str, Any]) -> None:
        if self.columns is None:
            self.columns = list(row)
            self.text = self._line(self.columns)
        values = [_format_value(row[c]) if c in row else "nan" for c in self.columns]
        self.text += self._line(values)
        atomic_write_text(self.path, self.text)

    @staticmethod
    def _line(items: List[str]) -> str:
        return "".join(s.ljust(LOG_COLUMN_WIDTH) for s in items).rstrip() + "\n"


# ----------------------------------------------------------------------------- runner


class Runner:
    """Trains a PPO policy on a `VecEnv`.

    Args:
        env: the vectorized env; every tensor lives on ``env.device``.
        cfg: agent config (MimicKit ``*_ppo_agent.yaml``).
        out_dir: folder for the log, TensorBoard events and checkpoints (created).
        seed: seeds python/numpy/torch before the networks are built (None = leave RNGs alone).
        config_record: the run's resolved config as a plain dict, stored in every checkpoint.
        tensorboard: write TensorBoard scalars.
        save_iter_checkpoints: keep an ``iter_XXXXXX.pt`` per output iteration.
        update_threads: torch intra-op threads for the PPO update only (CPU training: the rollout runs
            with the caller's setting, typically 1 so that physics threads own the cores, while the
            update, when the physics is idle, can use every core). None = leave the setting alone.
        graphed: run rollout and test steps through `mimictools.rl.graphed.GraphedStep` (CUDA graphs on
            a GPU; the same sync-free code eagerly on the CPU), and on a GPU capture the PPO update as
            a CUDA graph too (`PPO` ``capture``). None = on CUDA when the env supports it.
        tf32: on a GPU, let float32 matmuls use TF32 tensor cores (``torch.backends.cuda.matmul.allow_tf32``,
            process-wide; 10-bit mantissa products, float32 accumulation), ~2-4x faster network
            updates on an H100. False leaves torch's setting alone (full float32 by default).
    """

    def __init__(
        self,
        env: VecEnv,
        cfg: AgentConfig,
        out_dir: PathLike,
        *,
        seed: Optional[int] = None,
        config_record: Optional[Mapping[str, Any]] = None,
        tensorboard: bool = True,
        save_iter_checkpoints: bool = True,
        update_threads: Optional[int] = None,
        graphed: Optional[bool] = None,
        tf32: bool = True,
    ) -> None:
        check_env(env)
        self.env = env
        if hasattr(env, "tracking_errors_in_training"):
            # the training rollouts discard info; test episodes (test mode) still compute the errors
            env.tracking_errors_in_training = False
        self.cfg = cfg
        self.out_dir = Path(out_dir)
        self.device = torch.device(env.device)
        self.config_record = dict(config_record) if config_record is not None else None
        self.tensorboard = tensorboard
        self.save_iter_checkpoints = save_iter_checkpoints
        self.update_threads = update_threads
        if seed is not None:
            seed_everything(seed)
        if tf32 and self.device.type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = True

        self.actor, self.critic = build_actor_critic(cfg.model, env.obs_dim, env.action_dim)
        self.actor.to(self.device)
        self.critic.to(self.device)
        self.obs_normalizer = Normalizer(
            env.obs_dim, self.device, clip=OBS_CLIP, min_std=OBS_MIN_STD, max_samples=cfg.normalizer_samples
        )
        # MimicKit's BaseEnv returns 0 for both; an env may define reward_succ / reward_fail.
        succ = terminal_value(float(getattr(env, "reward_succ", 0.0)), cfg.discount)
        fail = terminal_value(float(getattr(env, "reward_fail", 0.0)), cfg.discount)
        if graphed is None:
            graphed = self.device.type == "cuda" and supports_graphed_step(env)
        elif graphed and not supports_graphed_step(env):
            raise ValueError(
                "graphed=True needs an env with apply_actions/observe/reset_where and an engine with set_targets/step_raw"
            )
        self.graphed = bool(graphed)
        self.ppo = PPO(
            self.actor,
            self.critic,
            self.obs_normalizer,
            cfg,
            env.num_envs,
            succ_value=succ,
            fail_value=fail,
            capture=self.graphed,
        )
        self.storage = RolloutStorage(
            cfg.steps_per_iter, env.num_envs, env.obs_dim, env.action_dim, self.device
        )
        low = torch.as_tensor(env.action_low, dtype=torch.float32, device=self.device)
        high = torch.as_tensor(env.action_high, dtype=torch.float32, device=self.device)
        self._a_mid = 0.5 * (high + low)
        self._a_half = 0.5 * (high - low)
        self._train_tracker = EpisodeTracker(env.num_envs, self.device)
        self._test_tracker = EpisodeTracker(env.num_envs, self.device)
        self._graphed_steps: Dict[bool, GraphedStep] = {}

        self.iteration = -1  # last completed iteration
        self.samples = 0
        self.wall_time_s = 0.0
        self.best_test_return = -math.inf
        self.last_test: Optional[TestResult] = None

    # ------------------------------------------------------------------------- acting

    def to_env_action(self, norm_actions: Tensor) -> Tensor:
        """Normalized actions ([-1, 1] = [low, high]) to env units, Shape (..., action_dim)."""
        return self._a_mid + self._a_half * norm_actions

    @torch.no_grad()
    def act(self, obs: Tensor, deterministic: bool = True) -> Tensor:
        """Env actions for raw observations Shape (B, obs_dim): the mean, or a sample."""
        mean = self.actor(self.obs_normalizer.normalize(obs))
        return self.to_env_action(mean if deterministic else self.actor.sample(mean))

    def _reset_done(self, next_obs: Tensor, done: Tensor) -> Tensor:
        ids = torch.nonzero(done != int(DoneFlag.NULL), as_tuple=False).flatten()
        if ids.numel() == 0:
            return next_obs
        obs = next_obs.clone()
        obs[ids] = self.env.reset(ids)
        return obs

    def _graphed_step(self, deterministic: bool) -> GraphedStep:
        """The graphed step for training (sampled actions) or test (mean actions), built once."""
        g = self._graphed_steps.get(deterministic)
        if g is None:
            g = GraphedStep(
                self.env,
                self.actor,
                self.obs_normalizer.normalize,
                self.to_env_action,
                self._test_tracker if deterministic else self._train_tracker,
                deterministic=deterministic,
            )
            self._graphed_steps[deterministic] = g
        return g

    def release_graphs(self) -> None:
        """Free the captured CUDA graphs (before building another runner in the same process)."""
        for g in self._graphed_steps.values():
            g.release()
        self._graphed_steps = {}
        self.ppo.release()

    @property
    def capture_errors(self) -> List[str]:
        """Why CUDA-graph capture failed (those steps ran eagerly); empty when all went well."""
        errors = [g.capture_error for g in self._graphed_steps.values() if g.capture_error]
        return errors + ([self.ppo.capture_error] if self.ppo.capture_error else [])

    @torch.no_grad()
    def _rollout_graphed(self, obs: Tensor) -> Tensor:
        self.storage.clear()
        self.actor.eval()
        g = self._graphed_step(deterministic=False)
        g.obs.copy_(obs)
        g.prepare()
        for _ in range(self.cfg.steps_per_iter):
            self.obs_normalizer.record(g.obs)
            obs_t = g.obs.clone()
            norm_a, logp, next_obs, reward, done, _info = g.step()  # the tracker is updated inside
            self.storage.add(obs_t, norm_a, logp, reward, next_obs, done)
        self.actor.train()
        return g.obs.clone()

    @torch.no_grad()
    def _rollout(self, obs: Tensor) -> Tensor:
        if self.graphed:
            return self._rollout_graphed(obs)
        self.storage.clear()
        self.actor.eval()
        for _ in range(self.cfg.steps_per_iter):
            mean = self.actor(self.obs_normalizer.normalize(obs))
            norm_a = self.actor.sample(mean)
            logp = self.actor.log_prob(mean, norm_a)
            self.obs_normalizer.record(obs)
            next_obs, reward, done, _info = self.env.step(self.to_env_action(norm_a))
            self.storage.add(obs, norm_a, logp, reward, next_obs, done)
            self._train_tracker.update(reward, done)
            obs = self._reset_done(next_obs, done)
        self.actor.train()
        return obs

    def iterate(self, obs: Tensor) -> Tuple[Tensor, Dict[str, float]]:
        """One training iteration without logging or checkpoints: rollout, checks, PPO update,
        normalizer update. Returns the next observations and the update's stats (used by benchmarks)."""
        obs = self._rollout(obs)
        self._check_rollout()
        stats = self._update()
        self.obs_normalizer.update()
        self.samples += self.storage.num_samples
        return obs, stats

    def _update(self) -> Dict[str, float]:
        """The PPO update, with ``update_threads`` torch threads when set (restored afterwards)."""
        if self.update_threads is None:
            return self.ppo.update(self.storage)
        before = torch.get_num_threads()
        torch.set_num_threads(self.update_threads)
        try:
            return self.ppo.update(self.storage)
        finally:
            torch.set_num_threads(before)

    def _check_rollout(self) -> None:
        s = self.storage
        fields = (
            ("observations (env.reset/env.step)", s.obs),
            ("actions (policy output)", s.actions),
            ("rewards (env.step)", s.rewards),
            ("next observations (env.step)", s.next_obs),
        )
        ok = torch.stack([torch.isfinite(t).all() for _, t in fields]).tolist()
        for (name, t), good in zip(fields, ok):
            if not good:
                bad = (
                    (~torch.isfinite(t)).reshape(t.shape[0], t.shape[1], -1).any(dim=-1).nonzero()[0].tolist()
                )
                raise TrainingDivergedError(
                    f"training diverged: non-finite {name} at iteration {self.iteration + 1}, "
                    f"rollout step {bad[0]}, env {bad[1]} (the last good checkpoint is kept)"
                )

    # --------------------------------------------------------------------------- test

    @torch.no_grad()
    def test(self, num_episodes: int) -> TestResult:
        """Run deterministic episodes (mean action) until every env finished
        ``ceil(num_episodes / num_envs)`` of them (MimicKit's rule against short-episode bias).

        The envs are left in an arbitrary state: reset them before training again.
        """
        if num_episodes <= 0:
            return TestResult(0.0, 0.0, 0, {})
        env = self.env
        env.set_mode(True)
        tracker = self._test_tracker
        tracker.reset()
        sums: Dict[str, Tensor] = {}
        counts: Dict[str, int] = {}
        min_eps = int(math.ceil(num_episodes / env.num_envs))
        self.actor.eval()
        try:
            obs = env.reset()
            g = self._graphed_step(deterministic=True) if self.graphed else None
            if g is not None:
                g.obs.copy_(obs)
                g.prepare()
            while True:
                if g is None:
                    next_obs, reward, done, info = env.step(self.act(obs, deterministic=True))
                    tracker.update(reward, done)
                    obs = self._reset_done(next_obs, done)
                else:  # the tracker is updated and done envs are reset inside
                    _a, _logp, next_obs, reward, done, info = g.step()
                for k, v in info.items():
                    v = torch.as_tensor(v, device=self.device)
                    sums[k] = (
                        sums.get(k, torch.zeros((), dtype=torch.float64, device=self.device))
                        + v.to(torch.float64).sum()
                    )
                    counts[k] = counts.get(k, 0) + v.numel()
                if bool((tracker.eps_per_env >= min_eps).all()):
                    break
        finally:
            self.actor.train()
            env.set_mode(False)
        mean_ret, mean_len, eps = tracker.summary()
        keys = list(sums)
        means = torch.stack([sums[k] for k in keys]).tolist() if keys else []
        info_means = {k.title(): m / max(counts[k], 1) for k, m in zip(keys, means)}
        if not math.isfinite(mean_ret):
            raise TrainingDivergedError(
                f"training diverged: Test_Return is {mean_ret} at iteration {self.iteration} "
                "(the last good checkpoint is kept)"
            )
        return TestResult(mean_ret, mean_len, eps, info_means)

    # --------------------------------------------------------------------- checkpoints

    @property
    def latest_path(self) -> Path:
        return self.out_dir / "latest.pt"

    def checkpoint_state(self) -> Dict[str, Any]:
        """Everything `save_checkpoint` writes (see `mimictools.rl.checkpoint`)."""
        lt = self.last_test
        return {
            "actor": self.actor.state_dict(),
            "critic": self.critic.state_dict(),
            "obs_normalizer": self.obs_normalizer.state_dict(),
            "optimizers": self.ppo.state_dict(),
            "iteration": self.iteration,
            "samples": self.samples,
            "wall_time_s": self.wall_time_s,
            "best_test_return": self.best_test_return,
            "last_test": None
            if lt is None
            else {
                "mean_return": lt.mean_return,
                "mean_episode_length": lt.mean_episode_length,
                "episodes": lt.episodes,
                "info": dict(lt.info),
            },
            "rng": capture_rng_state(),
            "obs_dim": self.env.obs_dim,
            "action_dim": self.env.action_dim,
            "num_envs": self.env.num_envs,
            "action_low": (self._a_mid - self._a_half).cpu(),
            "action_high": (self._a_mid + self._a_half).cpu(),
            "agent_config": to_dict(self.cfg),
            "config": self.config_record,
        }

    def load(self, path: PathLike, restore_rng: bool = True) -> Dict[str, Any]:
        """Restore networks, optimizers, normalizer, counters (and RNG) from a checkpoint.

        Learning rates and weight decay come from the current config, not the checkpoint, so a
        resumed run can change them.

        Raises:
            CheckpointError: unreadable checkpoint, or one for other observation/action sizes
                or other network shapes.
        """
        state = load_checkpoint(path, map_location=self.device)
        for key in ("obs_dim", "action_dim"):
            if int(state[key]) != getattr(self.env, key):
                raise CheckpointError(
                    f"{path}: checkpoint has {key} {state[key]}, the env has {getattr(self.env, key)}"
                )
        try:
            self.actor.load_state_dict(state["actor"])
            self.critic.load_state_dict(state["critic"])
            self.obs_normalizer.load_state_dict(state["obs_normalizer"])
            self.ppo.load_state_dict(state["optimizers"])
        except (RuntimeError, KeyError, ValueError) as e:
            raise CheckpointError(f"{path}: does not match the configured networks: {e}") from None
        for opt, ocfg in (
            (self.ppo.actor_optimizer, self.cfg.actor_optimizer),
            (self.ppo.critic_optimizer, self.cfg.critic_optimizer),
        ):
            for group in opt.param_groups:
                group["lr"] = ocfg.learning_rate
                group["weight_decay"] = ocfg.weight_decay
        self.obs_normalizer.max_samples = float(self.cfg.normalizer_samples)
        self.iteration = int(state["iteration"])
        self.samples = int(state["samples"])
        self.wall_time_s = float(state["wall_time_s"])
        self.best_test_return = float(state.get("best_test_return", -math.inf))
        lt = state.get("last_test")
        self.last_test = (
            None
            if lt is None
            else TestResult(
                float(lt["mean_return"]),
                float(lt["mean_episode_length"]),
                int(lt["episodes"]),
                dict(lt["info"]),
            )
        )
        if restore_rng:
            restore_rng_state(state["rng"])
        return state

    # -------------------------------------------------------------------------- train

    def train(
        self,
        max_samples: Optional[int] = None,
        max_minutes: Optional[float] = None,
        resume: bool = False,
        progress: Optional[Callable[[IterationReport], None]] = None,
    ) -> TrainResult:
        """Train until `max_samples` training samples (total) or `max_minutes` (this session).

        Raises:
            MimicToolsError: `out_dir` already holds a run and `resume` is False.
            CheckpointError: `resume` without a usable ``latest.pt``.
            TrainingDivergedError: NaN/inf in the rollout or the update (no checkpoint written).
        """
        self.out_dir.mkdir(parents=True, exist_ok=True)
        if resume:
            self.load(self.latest_path)
        elif self.latest_path.exists():
            raise MimicToolsError(
                f"{self.out_dir} already holds a training run (latest.pt); resume it or choose another folder"
            )
        cfg = self.cfg
        writer = self._open_tensorboard(purge_step=self.samples + 1 if resume else None)
        log = _TextLog(self.out_dir / "log.txt", resume_after=self.iteration if resume else None)
        start = time.monotonic()
        wall_base = self.wall_time_s
        stop_reason = "interrupted"
        try:
            self.env.set_mode(False)
            obs = self.env.reset()
            self._train_tracker.reset()
            while True:
                if max_samples is not None and self.samples >= max_samples:
                    stop_reason = "max_samples"
                    break
                t0 = time.monotonic()
                obs = self._rollout(obs)
                self._check_rollout()
                stats = self._update()
                self.obs_normalizer.update()
                it = self.iteration + 1
                self.iteration = it
                self.samples += self.storage.num_samples
                now = time.monotonic()
                session = now - start
                self.wall_time_s = wall_base + session
                hit_samples = max_samples is not None and self.samples >= max_samples
                hit_time = max_minutes is not None and session >= 60.0 * max_minutes
                is_output = it % cfg.iters_per_output == 0 or hit_samples or hit_time
                if is_output:
                    self.last_test = self.test(cfg.test_episodes)
                train_ret, train_len, train_eps = self._train_tracker.summary()
                row = self._row(stats, train_ret, train_len, train_eps)
                self._write_tensorboard(writer, row, is_output)
                if is_output:
                    log.write(row)
                    self._save_output_checkpoints()
                    self._train_tracker.reset()
                    obs = self.env.reset()
                if progress is not None:
                    progress(
                        IterationReport(
                            iteration=it,
                            samples=self.samples,
                            max_samples=max_samples,
                            max_minutes=max_minutes,
                            wall_time_s=self.wall_time_s,
                            session_time_s=session,
                            samples_per_s=self.storage.num_samples / max(now - t0, 1e-9),
                            train_return=train_ret,
                            train_episode_length=train_len,
                            test=self.last_test,
                            is_output=is_output,
                            row=row,
                        )
                    )
                if hit_samples or hit_time:
                    stop_reason = "max_samples" if hit_samples else "max_minutes"
                    break
        except KeyboardInterrupt:
            stop_reason = "interrupted"
            save_checkpoint(self.latest_path, self.checkpoint_state())
        finally:
            if writer is not None:
                writer.close()
        return TrainResult(
            iterations=self.iteration + 1,
            samples=self.samples,
            wall_time_s=self.wall_time_s,
            stop_reason=stop_reason,
            last_test=self.last_test,
            best_test_return=self.best_test_return,
            latest_checkpoint=self.latest_path,
        )

    def _save_output_checkpoints(self) -> None:
        lt = self.last_test
        is_best = lt is not None and lt.episodes > 0 and lt.mean_return > self.best_test_return
        if is_best:
            self.best_test_return = lt.mean_return
        state = self.checkpoint_state()
        if self.save_iter_checkpoints:
            save_checkpoint(self.out_dir / f"iter_{self.iteration:06d}.pt", state)
        if is_best:
            save_checkpoint(self.out_dir / "best.pt", state)
        save_checkpoint(self.latest_path, state)

    def _row(
        self, stats: Mapping[str, float], train_ret: float, train_len: float, train_eps: int
    ) -> Dict[str, Any]:
        lt = self.last_test or TestResult(0.0, 0.0, 0, {})
        row: Dict[str, Any] = {
            "Iteration": self.iteration,
            "Wall_Time": self.wall_time_s / 3600.0,  # hours, as MimicKit
            "Samples": self.samples,
            "Test_Return": lt.mean_return,
            "Test_Episode_Length": lt.mean_episode_length,
            "Test_Episodes": lt.episodes,
            "Train_Return": train_ret,
            "Train_Episode_Length": train_len,
            "Train_Episodes": train_eps,
        }
        row.update(stats)
        row.update(lt.info)
        row["Exp_Prob"] = 1.0  # every training action is sampled (MimicKit's exp_prob)
        return row

    def _open_tensorboard(self, purge_step: Optional[int]) -> Any:
        if not self.tensorboard:
            return None
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as e:  # pragma: no cover - tensorboard is a dependency
            raise MimicToolsError(f"TensorBoard logging needs the tensorboard package ({e})") from None
        return SummaryWriter(log_dir=str(self.out_dir / "tensorboard"), purge_step=purge_step)

    def _write_tensorboard(self, writer: Any, row: Mapping[str, Any], is_output: bool) -> None:
        if writer is None:
            return
        step = self.samples
        test_keys = {"Test_Return", "Test_Episode_Length", "Test_Episodes"}
        info_keys = set(self.last_test.info) if self.last_test is not None else set()
        for key, value in row.items():
            if (key in test_keys or key in info_keys) and not is_output:
                continue
            if key in ("Test_Return", "Test_Episode_Length", "Train_Return", "Train_Episode_Length"):
                tag = "0_Main/" + key
            elif key in info_keys:
                tag = "2_Env/" + key
            elif key in ("Iteration", "Wall_Time", "Samples", "Test_Episodes", "Train_Episodes", "Exp_Prob"):
                tag = "1_Info/" + key
            else:
                tag = "3_Update/" + key
            writer.add_scalar(tag, float(value), global_step=step)
