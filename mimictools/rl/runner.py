"""The PPO training loop, written against `mimictools.tasks.env_api.VecEnv` (any engine, any device).

`Runner.iterate` is the one training iteration (MimicKit's ``_train_iter``): roll out ``steps_per_iter`` steps
with sampled actions (`mimictools.rl.step`; done envs are reset inside the step), check them for NaN/inf, PPO
update (`mimictools.rl.ppo`), publish the normalizer statistics; it times its own phases (`IterationStats`).
`Runner.train`, ``mimic bench`` and the GPU scripts all call it. `Runner.train` adds the outputs: every
``iters_per_output`` iterations (0 included) and at the end, test episodes with the mean action (at least one
per env, as MimicKit), a ``log.txt`` row and TensorBoard scalars (`mimictools.rl.logs`), ``latest.pt``,
``best.pt`` and ``iter_XXXXXX.pt`` (`mimictools.rl.checkpoint`, atomic writes); then every env is reset.

Stopping: ``max_samples`` and/or ``max_minutes`` (this session). Ctrl-C and SIGTERM save ``latest.pt`` and return
(an output whose test was interrupted is completed first by the resumed run: no log row is lost). Resuming from
an output checkpoint reproduces an uninterrupted seeded CPU run, because every env is reset right after each
output and the RNG state is saved before that reset. NaN/inf raises `TrainingDivergedError` naming it, and
nothing is written after it.

Distributed (`mimictools.rl.distributed`): every rank runs this loop on its own envs with identical networks;
samples and returns are totals/means over all ranks; rank 0 alone writes (checkpoints keep every rank's RNG
state); the ranks agree on stopping at the end of each iteration, and a dead rank makes the others raise.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple, Union

import torch

from mimictools.config.schema import AgentConfig
from mimictools.errors import MimicToolsError, TrainingDivergedError
from mimictools.rl import distributed
from mimictools.rl.action_scale import ActionScale
from mimictools.rl.checkpoint import (
    restore_runner,
    runner_state,
    save_checkpoint,
    save_runner,
    seed_everything,
)
from mimictools.rl.episodes import EpisodeTracker, InfoMeans, SuccessCounter
from mimictools.rl.logs import TensorBoardLog, TextLog, log_row
from mimictools.rl.networks import build_actor_critic
from mimictools.rl.normalizer import Normalizer
from mimictools.rl.ppo import PPO
from mimictools.rl.results import IterationReport, IterationStats, TestResult, TrainResult
from mimictools.rl.returns import terminal_value
from mimictools.rl.signals import Terminated, deferred_stop, sigterm_raises
from mimictools.rl.step import PolicyStep
from mimictools.rl.step_clock import StepClock, mark
from mimictools.rl.storage import RolloutStorage
from mimictools.tasks.env_api import SUCCESS_ERR_KEY, VecEnv, check_env

__all__ = ["Runner"]

OBS_CLIP = 10.0  # MimicKit's observation normalizer clip
OBS_MIN_STD = 1e-4  # MimicKit's normalizer std floor

PathLike = Union[str, "os.PathLike[str]"]


class Runner:
    """Trains a PPO policy on a `VecEnv`.

    Args:
        env: the vectorized env; every tensor lives on ``env.device``.
        cfg: agent config (MimicKit ``*_ppo_agent.yaml``).
        out_dir: folder for the log, TensorBoard events and checkpoints (created).
        seed: seeds python/numpy/torch before the networks are built (None = leave RNGs alone); rank r of a
            process group uses ``seed + r``.
        config_record: the run's resolved config as a plain dict, stored in every checkpoint.
        tensorboard: write TensorBoard scalars.
        save_iter_checkpoints: keep an ``iter_XXXXXX.pt`` per output iteration.
        update_threads: torch intra-op threads for the PPO update only (None = the caller's setting).
        capture: replay the steps (`PolicyStep`) and the PPO update (`PPO` ``capture``) as CUDA graphs.
            None = on a CUDA device. On a CPU the same calls simply run.
        tf32: on a GPU, float32 matmuls on TF32 tensor cores (process-wide ``allow_tf32``; float32
            accumulation), ~2-4x faster network updates on an H100. False leaves torch's setting alone.
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
        capture: Optional[bool] = None,
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
        self.ranks = distributed.current()  # this process's place in a process group (rank 0 of 1 alone)
        across = self.ranks.distributed
        self._reduce = distributed.sum_across if across else None
        if seed is not None:
            seed_everything(distributed.rank_seed(seed, self.ranks.rank))
        if tf32 and self.device.type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = True
        self.capture = self.device.type == "cuda" if capture is None else bool(capture)
        if self.capture and self.device.type != "cuda":
            raise ValueError(f"capture=True needs a CUDA device, the env is on {self.device}")

        self.actor, self.critic = build_actor_critic(cfg.model, env.obs_dim, env.action_dim)
        self.actor.to(self.device)
        self.critic.to(self.device)
        if across:
            distributed.broadcast_parameters([self.actor, self.critic])
        norm_kw = dict(clip=OBS_CLIP, min_std=OBS_MIN_STD, max_samples=cfg.normalizer_samples)
        self.obs_normalizer = Normalizer(env.obs_dim, self.device, across_ranks=across, **norm_kw)
        # MimicKit's BaseEnv returns 0 for both; an env may define reward_succ / reward_fail.
        succ = terminal_value(float(getattr(env, "reward_succ", 0.0)), cfg.discount)
        fail = terminal_value(float(getattr(env, "reward_fail", 0.0)), cfg.discount)
        nets = (self.actor, self.critic, self.obs_normalizer)
        ppo_kw = dict(succ_value=succ, fail_value=fail, capture=self.capture, across_ranks=across)
        self.ppo = PPO(*nets, cfg, env.num_envs, **ppo_kw)
        self.storage = RolloutStorage(
            cfg.steps_per_iter, env.num_envs, env.obs_dim, env.action_dim, self.device
        )
        self.actions = ActionScale(env.action_low, env.action_high, device=self.device)
        # engines that expose their solver's iterations per env (MuJoCo Warp): sampled after every rollout step
        self._solver_iters = getattr(getattr(env, "engine", None), "solver_iterations", None)
        self._solver_iters_buf: Optional[torch.Tensor] = None
        if self._solver_iters is not None:
            self._solver_iters_buf = torch.zeros(
                cfg.steps_per_iter, env.num_envs, dtype=torch.int32, device=self.device
            )
        self._train_tracker = EpisodeTracker(env.num_envs, self.device)
        self._test_tracker = EpisodeTracker(env.num_envs, self.device)
        # deterministic -> the step of training (sampled actions) / of test episodes (mean actions)
        policy, trackers = (
            (self.actor, self.obs_normalizer.normalize, self.actions),
            {False: self._train_tracker, True: self._test_tracker},
        )
        self._steps = {
            d: PolicyStep(env, *policy, t, deterministic=d, capture=self.capture) for d, t in trackers.items()
        }

        self.iteration = -1  # last completed iteration
        self.samples = 0
        self.wall_time_s = 0.0
        self.best_test_return = -math.inf
        self.last_test: Optional[TestResult] = None
        self._started = False

    # --------------------------------------------------------------------------- the step path
    def _reset_all(self, step: PolicyStep) -> None:
        """Reset every env (the masked reset with an all-true mask) into ``step``'s observation buffer."""
        mask = torch.ones(self.env.num_envs, dtype=torch.bool, device=self.device)
        step.obs.copy_(self.env.reset_where(mask, step.obs))

    def release_graphs(self) -> None:
        """Free the captured CUDA graphs (before building another runner in the same process)."""
        for s in self._steps.values():
            s.release()
        self.ppo.release()

    @property
    def capture_errors(self) -> List[str]:
        """Why CUDA-graph capture failed (those steps ran eagerly); empty when all went well."""
        errors = [s.capture_error for s in self._steps.values() if s.capture_error]
        return errors + ([self.ppo.capture_error] if self.ppo.capture_error else [])

    # ------------------------------------------------------------------------------ iteration
    def iterate(self) -> IterationStats:
        """One training iteration: rollout -> checks -> PPO update -> normalizer update; counts the iteration
        and its samples (of all ranks). The first call (and the first after test episodes) resets every env.
        The returned stats are this rank's."""
        self._start_training_steps()
        t0 = time.perf_counter()
        self._rollout()
        self.storage.check_finite(self.iteration + 1)  # ends with a host sync: the rollout time is real
        t1 = time.perf_counter()
        update = self._update()  # its statistics come back to the host: a sync too
        self.obs_normalizer.update()
        if self._solver_iters_buf is not None:
            update = {**update, **solver_iteration_stats(self._solver_iters_buf)}
        t2 = time.perf_counter()
        self.samples += self.storage.num_samples * self.ranks.world_size
        self.iteration += 1
        return IterationStats(self.storage.num_samples, t1 - t0, t2 - t1, update)

    def time_rollout_phases(self) -> Dict[str, float]:
        """One rollout of training steps, timed by phase (`mimictools.rl.step_clock`): mean milliseconds per step
        of record / act / physics / post / storage. A real rollout (the envs advance, the normalizer records it, the
        episode statistics count it) whose samples no update uses: for benchmarks, not counted as an iteration."""
        self._start_training_steps()
        clock = StepClock(self.device)
        self._rollout(clock)
        return clock.phase_ms()

    def _start_training_steps(self) -> None:
        """The first training step (and the first after test episodes) starts from a reset of every env."""
        if not self._started:
            self.env.set_mode(False)
            self._reset_all(self._steps[False])
            self._train_tracker.reset()
            self._started = True

    @torch.no_grad()
    def _rollout(self, clock: Optional[StepClock] = None) -> None:
        self.storage.clear()
        self.actor.eval()
        step = self._steps[False]
        step.prepare()
        mark(clock)
        for i in range(self.cfg.steps_per_iter):
            self.obs_normalizer.record(step.obs)
            obs = step.obs.clone()
            mark(clock)
            norm_a, logp, next_obs, reward, done, _info = step.step(clock)  # the tracker is updated inside
            self.storage.add(obs, norm_a, logp, reward, next_obs, done)
            if self._solver_iters_buf is not None:
                self._solver_iters_buf[i].copy_(self._solver_iters())  # one device copy, no sync
            mark(clock)
        self.actor.train()

    def _update(self) -> Dict[str, float]:
        """The PPO update, with ``update_threads`` torch threads when set (restored afterwards)."""
        before = torch.get_num_threads()
        torch.set_num_threads(self.update_threads or before)
        try:
            return self.ppo.update(self.storage)
        finally:
            torch.set_num_threads(before)

    # ---------------------------------------------------------------------------------- test
    @torch.no_grad()
    def test(self, num_episodes: int) -> TestResult:
        """Run deterministic episodes (mean action) until every env finished ``ceil(num_episodes / num_envs)``
        of them (MimicKit's rule against short-episode bias; num_envs of all ranks, whose results are merged).
        The envs are left mid-episode: the next
        training iteration after a test starts from a reset of every env."""
        if num_episodes <= 0:
            return TestResult(0.0, 0.0, 0, {})
        env, tracker = self.env, self._test_tracker
        env.set_mode(True)
        tracker.reset()
        info_means = InfoMeans()
        success: Optional[SuccessCounter] = None
        steps = 0
        min_eps = int(math.ceil(num_episodes / (env.num_envs * self.ranks.world_size)))
        self.actor.eval()
        try:
            step = self._steps[True]
            self._reset_all(step)
            step.prepare()
            while True:
                _a, _logp, _next_obs, _reward, done, info = step.step()  # tracker updated, envs reset inside
                info_means.add(info)
                if SUCCESS_ERR_KEY in info:
                    success = success or SuccessCounter(env.num_envs, self.device)
                    success.update(info[SUCCESS_ERR_KEY], done)
                steps += 1
                if bool((tracker.eps_per_env >= min_eps).all()):
                    break
        finally:
            self.actor.train()
            env.set_mode(False)
            self._started = False  # training resumes from a reset of every env
        mean_ret, mean_len, eps = tracker.summary(self._reduce)
        info = info_means.means(steps * env.num_envs, self._reduce)
        if not math.isfinite(mean_ret):
            raise TrainingDivergedError(
                f"training diverged: Test_Return is {mean_ret} at iteration {self.iteration} "
                "(the last good checkpoint is kept)"
            )
        return TestResult(mean_ret, mean_len, eps, info, success.rate() if success else None)

    # --------------------------------------------------------------------------- checkpoints
    latest_path = property(
        lambda self: self.out_dir / "latest.pt", doc="The checkpoint a resumed run starts from."
    )

    def load(self, path: PathLike, restore_rng: bool = True) -> Dict[str, Any]:
        """Restore from a checkpoint (`mimictools.rl.checkpoint.restore_runner`; each rank its own RNG state)."""
        return restore_runner(self, path, restore_rng)

    # --------------------------------------------------------------------------------- train
    def train(
        self,
        max_samples: Optional[int] = None,
        max_minutes: Optional[float] = None,
        resume: bool = False,
        progress: Optional[Callable[[IterationReport], None]] = None,
    ) -> TrainResult:
        """Train until `max_samples` training samples (total, all ranks) or `max_minutes` (this session).

        Raises:
            MimicToolsError: `out_dir` already holds a run and `resume` is False.
            CheckpointError: `resume` without a usable ``latest.pt``.
            TrainingDivergedError: NaN/inf in the rollout or the update (no checkpoint written).
            DistributedError: another rank died or timed out; rank 0 first saves ``latest.pt`` (its networks,
                optimizer and normalizer as they are, counters of the last completed iteration).
        """
        writer, across = self.ranks.is_writer, self.ranks.distributed
        self.out_dir.mkdir(parents=True, exist_ok=True)
        pending: Optional[Mapping[str, Any]] = None
        if resume:
            pending = self.load(self.latest_path).get("pending_output")
        elif self.latest_path.exists():
            raise MimicToolsError(
                f"{self.out_dir} already holds a training run (latest.pt); resume it or choose another folder"
            )
        use_tb = self.tensorboard and writer
        tb = TensorBoardLog(self.out_dir, self.samples + 1 if resume else None) if use_tb else None
        # rows after the checkpoint were written before a crash: dropped (and an interrupted output's row redone)
        keep_until = (self.iteration - 1 if pending is not None else self.iteration) if resume else None
        log = TextLog(self.out_dir / "log.txt", resume_after=keep_until) if writer else None
        start = time.monotonic()
        wall_base = self.wall_time_s
        stop_reason = "interrupted"
        stop = deferred_stop() if across else None
        try:
            with stop if stop is not None else sigterm_raises():
                if pending is not None:  # an output interrupted during its test episodes: complete it
                    self._output(dict(pending["update"]), tuple(pending["train"]), log, tb)
                    pending = None
                while max_samples is None or self.samples < max_samples:
                    it_stats = self.iterate()
                    session = time.monotonic() - start
                    self.wall_time_s = wall_base + session
                    hit_samples = max_samples is not None and self.samples >= max_samples
                    hit_time = max_minutes is not None and session >= 60.0 * max_minutes
                    requested = False
                    if stop is not None:  # the ranks agree: one stops on time or on a signal, all stop
                        hit_time, requested = distributed.any_rank(
                            [hit_time, stop.requested is not None], self.device
                        )
                    train = self._train_tracker.summary(self._reduce)
                    is_output = self.iteration % self.cfg.iters_per_output == 0 or hit_samples or hit_time
                    if is_output:
                        pending = {"update": dict(it_stats.update), "train": list(train)}
                        row = self._output(it_stats.update, train, log, tb)
                        pending = None
                    else:
                        row = self._log_row(it_stats.update, train)
                        if tb is not None:
                            tb.write(row, self.samples, self._env_keys(), is_output=False)
                    if progress is not None:
                        progress(
                            self._report(it_stats, session, train, max_samples, max_minutes, is_output, row)
                        )
                    if hit_samples or hit_time:
                        stop_reason = "max_samples" if hit_samples else "max_minutes"
                        break
                    if requested and stop is not None:
                        stop_reason = stop.requested or "terminated"
                        save_runner(self, self.latest_path)
                        break
                else:
                    stop_reason = "max_samples"
        except (KeyboardInterrupt, Terminated) as exc:
            stop_reason = "terminated" if isinstance(exc, Terminated) else "interrupted"
            if not across:  # distributed: a second signal stops at once, the ranks not in step: no save
                save_checkpoint(self.latest_path, runner_state(self, pending))
        except (
            distributed.DistributedError
        ):  # a peer died or hung: rank 0 keeps its own state (not the others' RNG)
            if writer:
                save_checkpoint(self.latest_path, runner_state(self, pending))
            raise
        finally:
            if tb is not None:
                tb.close()
        counts = (self.iteration + 1, self.samples, self.wall_time_s, stop_reason)
        return TrainResult(*counts, self.last_test, self.best_test_return, self.latest_path)

    def _output(
        self,
        update: Mapping[str, float],
        train: Tuple[float, float, int],
        log: Optional[TextLog],
        tb: Optional[TensorBoardLog],
    ) -> Dict[str, Any]:
        """An output iteration: test episodes, the log row, TensorBoard, checkpoints, training stats reset."""
        self.last_test = self.test(self.cfg.test_episodes)
        row = self._log_row(update, train)
        if tb is not None:
            tb.write(row, self.samples, self._env_keys(), is_output=True)
        if log is not None:
            log.write(row)
        self._save_output_checkpoints()
        self._train_tracker.reset()
        return row

    def _report(self, it_stats, session, train, max_samples, max_minutes, is_output, row) -> IterationReport:
        rate = it_stats.samples_per_s * self.ranks.world_size  # all ranks
        counts = (self.iteration, self.samples, max_samples, max_minutes, self.wall_time_s, session, rate)
        return IterationReport(*counts, train[0], train[1], self.last_test, is_output, row)

    def _log_row(self, update: Mapping[str, float], train: Tuple[float, float, int]) -> Dict[str, Any]:
        return log_row(self.iteration, self.wall_time_s, self.samples, self.last_test, train, update)

    def _env_keys(self) -> List[str]:
        return list(self.last_test.info) if self.last_test is not None else []

    def _save_output_checkpoints(self) -> None:
        lt = self.last_test
        is_best = lt is not None and lt.episodes > 0 and lt.mean_return > self.best_test_return
        if is_best:
            self.best_test_return = lt.mean_return
        keep = int(self.cfg.keep_checkpoints)
        save_iter = self.save_iter_checkpoints and keep != 0
        also = [self.out_dir / f"iter_{self.iteration:06d}.pt"] if save_iter else []
        if is_best:
            also.append(self.out_dir / "best.pt")
        save_runner(self, self.latest_path, also=also)
        if save_iter and keep > 0 and self.ranks.is_writer:  # the newest `keep` (names sort by iteration)
            for old in sorted(self.out_dir.glob("iter_[0-9]*.pt"))[:-keep]:
                old.unlink(missing_ok=True)


def solver_iteration_stats(iters: torch.Tensor) -> Dict[str, float]:
    """The log's solver columns from ``iters`` (steps, num_envs) int: each env's solver iterations at the last
    physics step of each rollout step (a sample of one substep in ``substeps``). Solver_Iters_Mean: the mean over
    envs and steps; Solver_Iters_Slowest: the mean over steps of the slowest env's count, which is what a GPU
    batch waits for (MuJoCo Warp iterates until every env has converged). One host sync."""
    per_step_max = iters.max(dim=1).values.float()
    mean, slowest = torch.stack([iters.float().mean(), per_step_max.mean()]).tolist()
    return {"Solver_Iters_Mean": mean, "Solver_Iters_Slowest": slowest}
