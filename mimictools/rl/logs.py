"""Where training writes its numbers: MimicKit's fixed-width ``log.txt`` and TensorBoard scalars."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Collection, Dict, List, Mapping, Optional, Tuple

from mimictools.errors import MimicToolsError
from mimictools.io_util import atomic_write_text

__all__ = ["LOG_COLUMN_WIDTH", "TensorBoardLog", "TextLog", "log_row"]

LOG_COLUMN_WIDTH = 25  # MimicKit's log column width


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


class TextLog:
    """MimicKit-style fixed-width text log (``\\n`` line ends); the whole file is rewritten atomically per row."""

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


_MAIN = ("Test_Return", "Test_Episode_Length", "Test_Success", "Train_Return", "Train_Episode_Length")
_INFO = (
    "Iteration",
    "Wall_Time",
    "Samples",
    "Test_Episodes",
    "Train_Episodes",
    "Exp_Prob",
    "Solver_Iters_Mean",
    "Solver_Iters_Slowest",
)
_TEST = ("Test_Return", "Test_Episode_Length", "Test_Episodes", "Test_Success")


class TensorBoardLog:
    """TensorBoard scalars under ``<out_dir>/tensorboard`` (step = training samples), grouped as MimicKit:
    0_Main (returns, lengths), 1_Info (counters), 2_Env (tracking errors), 3_Update (losses)."""

    def __init__(self, out_dir: Path, purge_step: Optional[int]) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as e:  # pragma: no cover - tensorboard is a dependency
            raise MimicToolsError(f"TensorBoard logging needs the tensorboard package ({e})") from None
        self._writer = SummaryWriter(log_dir=str(out_dir / "tensorboard"), purge_step=purge_step)

    def write(self, row: Mapping[str, Any], samples: int, env_keys: Collection[str], is_output: bool) -> None:
        """One iteration's ``row``; test values and the env's tracking errors (``env_keys``) only at outputs."""
        for key, value in row.items():
            if (key in _TEST or key in env_keys) and not is_output:
                continue
            if key in _MAIN:
                tag = "0_Main/" + key
            elif key in env_keys:
                tag = "2_Env/" + key
            elif key in _INFO:
                tag = "1_Info/" + key
            else:
                tag = "3_Update/" + key
            self._writer.add_scalar(tag, float(value), global_step=samples)

    def close(self) -> None:
        self._writer.close()


def log_row(
    iteration: int,
    wall_time_s: float,
    samples: int,
    test: Any,
    train: Tuple[float, float, int],
    update: Mapping[str, float],
) -> Dict[str, Any]:
    """One row of MimicKit's log: counters, the latest test (`TestResult` or None), the training returns
    ``(mean return, mean length, episodes)`` since the last output, the update's statistics, the test's
    tracking errors, ``Exp_Prob``."""
    train_ret, train_len, train_eps = train
    row: Dict[str, Any] = {
        "Iteration": iteration,
        "Wall_Time": wall_time_s / 3600.0,  # hours, as MimicKit
        "Samples": samples,
        "Test_Return": test.mean_return if test is not None else 0.0,
        "Test_Episode_Length": test.mean_episode_length if test is not None else 0.0,
        "Test_Episodes": test.episodes if test is not None else 0,
        "Train_Return": train_ret,
        "Train_Episode_Length": train_len,
        "Train_Episodes": train_eps,
    }
    row.update(update)
    if test is not None:
        if test.success_rate is not None:
            row["Test_Success"] = test.success_rate  # episodes that tracked the clip (tasks.env_api)
        row.update(test.info)
    row["Exp_Prob"] = 1.0  # every training action is sampled (MimicKit's exp_prob)
    return row
