"""Returns and lengths of finished episodes, counted on the device without a host sync per step."""

from __future__ import annotations

from typing import Callable, Dict, Optional, Tuple

import torch
from torch import Tensor

from mimictools.tasks.env_api import DoneFlag, episode_tracked

__all__ = ["EpisodeTracker", "SuccessCounter"]


class EpisodeTracker:
    """Running returns/lengths of ``num_envs`` envs and the sums over the episodes that ended (in place:
    safe inside captured CUDA graphs)."""

    def __init__(self, num_envs: int, device: torch.device) -> None:
        self._ret = torch.zeros(num_envs, dtype=torch.float64, device=device)
        self._len = torch.zeros(num_envs, dtype=torch.long, device=device)
        self.eps_per_env = torch.zeros(num_envs, dtype=torch.long, device=device)
        """Episodes each env finished. Shape (num_envs,)."""
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

    def summary(self, reduce: Optional[Callable[[Tensor], Tensor]] = None) -> Tuple[float, float, int]:
        """(mean return, mean length, episodes); means are 0 when no episode ended (as MimicKit). One host sync.
        ``reduce`` maps the sums [return, length, episodes] first (`mimictools.rl.distributed.sum_across`:
        the episodes of every rank)."""
        sums = torch.stack([self._sum_ret, self._sum_len, self.eps_per_env.sum().to(torch.float64)])
        s_ret, s_len, n = (sums if reduce is None else reduce(sums)).tolist()
        n = int(n)
        return (s_ret / n, s_len / n, n) if n > 0 else (0.0, 0.0, 0)


class SuccessCounter:
    """Episodes that tracked the clip (`mimictools.tasks.env_api.episode_tracked`): each env's running sum of a
    per-step error (the info entry ``SUCCESS_ERR_KEY``) over its episode, judged when the episode ends. In place."""

    def __init__(self, num_envs: int, device: torch.device) -> None:
        self._err = torch.zeros(num_envs, dtype=torch.float64, device=device)
        self._len = torch.zeros(num_envs, dtype=torch.float64, device=device)
        self._episodes = torch.zeros((), dtype=torch.float64, device=device)
        self._successes = torch.zeros((), dtype=torch.float64, device=device)

    def update(self, err_m: Tensor, done: Tensor) -> None:
        """Add one step: ``err_m`` Shape (num_envs,) (m), ``done`` Shape (num_envs,) DoneFlag values."""
        self._err += err_m.to(torch.float64)
        self._len += 1.0
        ended = done != int(DoneFlag.NULL)
        ok = episode_tracked(self._err / self._len, done == int(DoneFlag.FAIL)) & ended
        self._episodes += ended.sum()
        self._successes += ok.sum()
        self._err.masked_fill_(ended, 0.0)
        self._len.masked_fill_(ended, 0.0)

    def rate(self) -> float:
        """Fraction of the ended episodes that tracked the clip (nan when none ended). One host sync."""
        n, k = torch.stack([self._episodes, self._successes]).tolist()
        return k / n if n > 0 else float("nan")


class InfoMeans:
    """Means over env-steps of an env's per-step ``info`` entries (test episodes), Title_Cased for the log."""

    def __init__(self) -> None:
        self._sums: Dict[str, Tensor] = {}

    def add(self, info: Dict[str, Tensor]) -> None:
        """One step's ``info``: each entry Shape (num_envs,)."""
        for k, v in info.items():
            s = v.to(torch.float64).sum()
            self._sums[k] = s if k not in self._sums else self._sums[k] + s

    def means(self, env_steps: int, reduce: Optional[Callable[[Tensor], Tensor]] = None) -> Dict[str, float]:
        """``{"Root_Pos_Err": mean, ...}`` over ``env_steps`` env-steps; ``reduce`` sums across ranks (each rank's
        sums and step counts), one host sync."""
        keys = list(self._sums)
        if not keys:
            return {}
        vals = torch.stack([self._sums[k] for k in keys])
        dev, dt = vals.device, vals.dtype
        vals = torch.cat([vals, torch.tensor([float(env_steps)], dtype=dt, device=dev)])
        totals = (reduce(vals) if reduce is not None else vals).tolist()
        return {k.title(): m / totals[-1] for k, m in zip(keys, totals)}
