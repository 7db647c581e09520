"""What training reports: one iteration, a test, the progress callback's view, the whole run."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Optional

__all__ = ["IterationReport", "IterationStats", "TestResult", "TrainResult"]


@dataclass(frozen=True)
class IterationStats:
    """One `Runner.iterate`: rollout -> checks -> PPO update -> normalizer update, timed by the runner itself.

    Attributes:
        samples: training samples this iteration collected (steps_per_iter x num_envs).
        rollout_s: wall time of the rollout and its finiteness checks (s; ends with a device sync).
        update_s: wall time of the PPO update and the normalizer update (s; ends with a device sync).
        update: the update's statistics (losses, clip fraction, ...: log columns).
    """

    samples: int
    rollout_s: float
    update_s: float
    update: Mapping[str, float] = field(default_factory=dict)

    @property
    def samples_per_s(self) -> float:
        """Training throughput of this iteration (rollout + update)."""
        return self.samples / max(self.rollout_s + self.update_s, 1e-9)


@dataclass(frozen=True)
class TestResult:
    """Deterministic test episodes.

    Attributes:
        mean_return: mean undiscounted episode return.
        mean_episode_length: mean episode length (control steps).
        episodes: number of episodes completed.
        info: mean over test env-steps of each ``env.observe`` info entry, Title_Cased
            (``root_pos_err`` -> ``Root_Pos_Err``).
        success_rate: fraction of the episodes that tracked the clip (`tasks.env_api.episode_tracked`;
            None when the env reports no ``Body_Pos_Err``).
    """

    mean_return: float
    mean_episode_length: float
    episodes: int
    info: Mapping[str, float] = field(default_factory=dict)
    success_rate: Optional[float] = None


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
        stop_reason: "max_samples", "max_minutes", "interrupted" (Ctrl-C) or "terminated" (SIGTERM).
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
