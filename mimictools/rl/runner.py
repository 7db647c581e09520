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
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple, Union

import torch
from torch import Tensor

from mimictools.config.schema import AgentConfig
from mimictools.errors import MimicToolsError, TrainingDivergedError
from mimictools.rl.action_scale import ActionScale
from mimictools.rl.checkpoint import restore_runner, runner_state, save_checkpoint, seed_everything
from mimictools.rl.episodes import EpisodeTracker, SuccessCounter
from mimictools.rl.logs import TensorBoardLog, TextLog, log_row
from mimictools.rl.networks import build_actor_critic
from mimictools.rl.normalizer import Normalizer
from mimictools.rl.ppo import PPO
from mimictools.rl.results import IterationReport, IterationStats, TestResult, TrainResult
from mimictools.rl.returns import terminal_value
from mimictools.rl.signals import Terminated, sigterm_raises
from mimictools.rl.step import PolicyStep
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
        seed: seeds python/numpy/torch before the networks are built (None = leave RNGs alone).
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
        if seed is not None:
            seed_everything(seed)
        if tf32 and self.device.type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = True
        self.capture = self.device.type == "cuda" if capture is None else bool(capture)
        if self.capture and self.device.type != "cuda":
            raise ValueError(f"capture=True needs a CUDA device, the env is on {self.device}")

        self.actor, self.critic = build_actor_critic(cfg.model, env.obs_dim, env.action_dim)
        self.actor.to(self.device)
        self.critic.to(self.device)
        self.obs_normalizer = Normalizer(
            env.obs_dim, self.device, clip=OBS_CLIP, min_std=OBS_MIN_STD, max_samples=cfg.normalizer_samples
        )
        # MimicKit's BaseEnv returns 0 for both; an env may define reward_succ / reward_fail.
        succ = terminal_value(float(getattr(env, "reward_succ", 0.0)), cfg.discount)
        fail = terminal_value(float(getattr(env, "reward_fail", 0.0)), cfg.discount)
        self.ppo = PPO(
            self.actor,
            self.critic,
            self.obs_normalizer,
            cfg,
            env.num_envs,
            succ_value=succ,
            fail_value=fail,
            capture=self.capture,
        )
        self.storage = RolloutStorage(
            cfg.steps_per_iter, env.num_envs, env.obs_dim, env.action_dim, self.device
        )
        self.actions = ActionScale(env.action_low, env.action_high, device=self.device)
        self._train_tracker = EpisodeTracker(env.num_envs, self.device)
        self._test_tracker = EpisodeTracker(env.num_envs, self.device)
        self._steps = {  # deterministic -> the step of training (sampled actions) / test episodes (means)
            det: PolicyStep(
                env,
                self.actor,
                self.obs_normalizer.normalize,
                self.actions,
                self._test_tracker if det else self._train_tracker,
                deterministic=det,
                capture=self.capture,
            )
            for det in (False, True)
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
        and its samples. The first call (and the first after test episodes) resets every env."""
        if not self._started:
            self.env.set_mode(False)
            self._reset_all(self._steps[False])
            self._train_tracker.reset()
            self._started = True
        t0 = time.perf_counter()
        self._rollout()
        self._check_rollout()  # ends with a host sync: the rollout time is real
        t1 = time.perf_counter()
        update = self._update()  # its statistics come back to the host: a sync too
        self.obs_normalizer.update()
        t2 = time.perf_counter()
        self.samples += self.storage.num_samples
        self.iteration += 1
        return IterationStats(self.storage.num_samples, t1 - t0, t2 - t1, update)

    @torch.no_grad()
    def _rollout(self) -> None:
        self.storage.clear()
        self.actor.eval()
        step = self._steps[False]
        step.prepare()
        for _ in range(self.cfg.steps_per_iter):
            self.obs_normalizer.record(step.obs)
            obs = step.obs.clone()
            norm_a, logp, next_obs, reward, done, _info = step.step()  # the tracker is updated inside
            self.storage.add(obs, norm_a, logp, reward, next_obs, done)
        self.actor.train()

    def _update(self) -> Dict[str, float]:
        """The PPO update, with ``update_threads`` torch threads when set (restored afterwards)."""
        before = torch.get_num_threads()
        torch.set_num_threads(self.update_threads or before)
        try:
            return self.ppo.update(self.storage)
        finally:
            torch.set_num_threads(before)

    def _check_rollout(self) -> None:
        s = self.storage
        fields = (
            ("observations (env.observe/env.reset_where)", s.obs),
            ("actions (policy output)", s.actions),
            ("rewards (env.observe)", s.rewards),
            ("next observations (env.observe)", s.next_obs),
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

    # ---------------------------------------------------------------------------------- test
    @torch.no_grad()
    def test(self, num_episodes: int) -> TestResult:
        """Run deterministic episodes (mean action) until every env finished ``ceil(num_episodes / num_envs)``
        of them (MimicKit's rule against short-episode bias). The envs are left mid-episode: the next
        training iteration after a test starts from a reset of every env."""
        if num_episodes <= 0:
            return TestResult(0.0, 0.0, 0, {})
        env, tracker = self.env, self._test_tracker
        env.set_mode(True)
        tracker.reset()
        sums: Dict[str, Tensor] = {}
        success: Optional[SuccessCounter] = None
        steps = 0
        min_eps = int(math.ceil(num_episodes / env.num_envs))
        self.actor.eval()
        try:
            step = self._steps[True]
            self._reset_all(step)
            step.prepare()
            while True:
                _a, _logp, _next_obs, _reward, done, info = step.step()  # tracker updated, envs reset inside
                for k, v in info.items():
                    sums[k] = sums.get(k, 0.0) + v.to(torch.float64).sum()
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
        mean_ret, mean_len, eps = tracker.summary()
        keys = list(sums)
        means = torch.stack([sums[k] for k in keys]).tolist() if keys else []
        info_means = {k.title(): m / (steps * env.num_envs) for k, m in zip(keys, means)}
        if not math.isfinite(mean_ret):
            raise TrainingDivergedError(
                f"training diverged: Test_Return is {mean_ret} at iteration {self.iteration} "
                "(the last good checkpoint is kept)"
            )
        return TestResult(mean_ret, mean_len, eps, info_means, success.rate() if success else None)

    # --------------------------------------------------------------------------- checkpoints
    @property
    def latest_path(self) -> Path:
        return self.out_dir / "latest.pt"

    def load(self, path: PathLike, restore_rng: bool = True) -> Dict[str, Any]:
        """Restore from a checkpoint (`mimictools.rl.checkpoint.restore_runner`); returns its dict."""
        return restore_runner(self, path, restore_rng)

    # --------------------------------------------------------------------------------- train
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
        pending: Optional[Mapping[str, Any]] = None
        if resume:
            pending = self.load(self.latest_path).get("pending_output")
        elif self.latest_path.exists():
            raise MimicToolsError(
                f"{self.out_dir} already holds a training run (latest.pt); resume it or choose another folder"
            )
        tb = TensorBoardLog(self.out_dir, self.samples + 1 if resume else None) if self.tensorboard else None
        # rows after the checkpoint were written before a crash: dropped (and an interrupted output's row redone)
        keep_until = (self.iteration - 1 if pending is not None else self.iteration) if resume else None
        log = TextLog(self.out_dir / "log.txt", resume_after=keep_until)
        start = time.monotonic()
        wall_base = self.wall_time_s
        stop_reason = "interrupted"
        try:
            with sigterm_raises():
                if pending is not None:  # an output interrupted during its test episodes: complete it
                    self._output(dict(pending["update"]), tuple(pending["train"]), log, tb)
                    pending = None
                while max_samples is None or self.samples < max_samples:
                    it_stats = self.iterate()
                    session = time.monotonic() - start
                    self.wall_time_s = wall_base + session
                    hit_samples = max_samples is not None and self.samples >= max_samples
                    hit_time = max_minutes is not None and session >= 60.0 * max_minutes
                    train = self._train_tracker.summary()
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
                        args = (self.wall_time_s, session, it_stats.samples_per_s, train[0], train[1])
                        progress(
                            IterationReport(
                                self.iteration,
                                self.samples,
                                max_samples,
                                max_minutes,
                                *args,
                                test=self.last_test,
                                is_output=is_output,
                                row=row,
                            )  # fmt: skip
                        )
                    if hit_samples or hit_time:
                        stop_reason = "max_samples" if hit_samples else "max_minutes"
                        break
                else:
                    stop_reason = "max_samples"
        except (KeyboardInterrupt, Terminated) as exc:
            stop_reason = "terminated" if isinstance(exc, Terminated) else "interrupted"
            save_checkpoint(self.latest_path, runner_state(self, pending))
        finally:
            if tb is not None:
                tb.close()
        return TrainResult(
            iterations=self.iteration + 1,
            samples=self.samples,
            wall_time_s=self.wall_time_s,
            stop_reason=stop_reason,
            last_test=self.last_test,
            best_test_return=self.best_test_return,
            latest_checkpoint=self.latest_path,
        )

    def _output(
        self,
        update: Mapping[str, float],
        train: Tuple[float, float, int],
        log: TextLog,
        tb: Optional[TensorBoardLog],
    ) -> Dict[str, Any]:
        """An output iteration: test episodes, the log row, TensorBoard, checkpoints, training stats reset."""
        self.last_test = self.test(self.cfg.test_episodes)
        row = self._log_row(update, train)
        if tb is not None:
            tb.write(row, self.samples, self._env_keys(), is_output=True)
        log.write(row)
        self._save_output_checkpoints()
        self._train_tracker.reset()
        return row

    def _log_row(self, update: Mapping[str, float], train: Tuple[float, float, int]) -> Dict[str, Any]:
        return log_row(self.iteration, self.wall_time_s, self.samples, self.last_test, train, update)

    def _env_keys(self) -> List[str]:
        return list(self.last_test.info) if self.last_test is not None else []

    def _save_output_checkpoints(self) -> None:
        lt = self.last_test
        is_best = lt is not None and lt.episodes > 0 and lt.mean_return > self.best_test_return
        if is_best:
            self.best_test_return = lt.mean_return
        state = runner_state(self)
        keep = int(self.cfg.keep_checkpoints)
        if self.save_iter_checkpoints and keep != 0:
            save_checkpoint(self.out_dir / f"iter_{self.iteration:06d}.pt", state)
            if keep > 0:  # the newest `keep` (names sort by iteration); -1 keeps all
                for old in sorted(self.out_dir.glob("iter_[0-9]*.pt"))[:-keep]:
                    old.unlink(missing_ok=True)
        if is_best:
            save_checkpoint(self.out_dir / "best.pt", state)
        save_checkpoint(self.latest_path, state)
