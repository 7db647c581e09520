"""Running mean/std observation normalizer (MimicKit ``learning/normalizer.py`` semantics).

- `record` accumulates statistics (float64, Chan's parallel update, so large offsets do not lose
  precision); `update` publishes them. Between two `update` calls `normalize` keeps using the
  published values, so a whole rollout and the PPO update after it see one normalizer (MimicKit
  records during the rollout and updates after the model update).
- Before the first `update` the normalizer is the identity (mean 0, std 1).
- ``std = sqrt(max(var, min_std**2))`` with MimicKit's ``min_std = 1e-4``; the normalized value is
  clipped to ``[-clip, clip]`` (MimicKit uses 10 for observations).
- Recording stops once `max_samples` samples have been recorded (agent ``normalizer_samples``).
- ``across_ranks`` (distributed training, `mimictools.rl.distributed`): `record` accumulates this rank's
  samples apart and `update` merges every rank's into the statistics (one all-gather), so all ranks publish
  the same values: those of all ranks' samples together. Recording stops at `max_samples` over all ranks.
"""

from __future__ import annotations

import math
from typing import Any, Dict, Tuple, Union

import torch
from torch import Tensor

from mimictools.rl.distributed import merge_moments

__all__ = ["Normalizer"]


class Normalizer:
    """Per-dimension running mean/std of vectors of size `dim`.

    Args:
        dim: vector size.
        device: where the statistics live.
        clip: normalized values are clipped to [-clip, clip].
        min_std: lower bound of the std (avoids dividing by ~0 for constant dimensions).
        max_samples: stop recording after this many samples (math.inf = never stop).
        across_ranks: statistics over every rank of a running process group (see the module docstring).
    """

    def __init__(
        self,
        dim: int,
        device: Union[str, torch.device] = "cpu",
        clip: float = 10.0,
        min_std: float = 1e-4,
        max_samples: float = math.inf,
        across_ranks: bool = False,
    ) -> None:
        if dim < 1:
            raise ValueError(f"Normalizer dim must be >= 1, got {dim}")
        self.dim = int(dim)
        self.device = torch.device(device)
        self.clip = float(clip)
        self.min_std = float(min_std)
        self.max_samples = float(max_samples)
        self._count = 0  # samples recorded (python int, exact)
        self._mean = torch.zeros(dim, dtype=torch.float64, device=self.device)
        self._m2 = torch.zeros(dim, dtype=torch.float64, device=self.device)  # sum of squared deviations
        self._pub_mean = torch.zeros(dim, dtype=torch.float32, device=self.device)
        self._pub_std = torch.ones(dim, dtype=torch.float32, device=self.device)
        self.across_ranks = bool(across_ranks)
        # this rank's samples since the last update (across_ranks only): count, mean, m2
        self._new = (0, torch.zeros_like(self._mean), torch.zeros_like(self._m2))

    @property
    def count(self) -> int:
        """Samples recorded so far."""
        return self._count

    @property
    def frozen(self) -> bool:
        """True once `max_samples` samples have been recorded: `record` is then a no-op."""
        return self._count >= self.max_samples

    @property
    def mean(self) -> Tensor:
        """Published mean, Shape (dim,), float32."""
        return self._pub_mean

    @property
    def std(self) -> Tensor:
        """Published std, Shape (dim,), float32."""
        return self._pub_std

    def record(self, x: Tensor) -> None:
        """Accumulate samples `x`, Shape (..., dim). Not visible to `normalize` until `update`."""
        if self.frozen:
            return
        if x.shape[-1] != self.dim:
            raise ValueError(f"Normalizer expected vectors of size {self.dim}, got Shape {tuple(x.shape)}")
        x = x.reshape(-1, self.dim).to(dtype=torch.float64)
        n = x.shape[0]
        if n == 0:
            return
        b_mean = x.mean(dim=0)
        b_m2 = torch.square(x - b_mean).sum(dim=0)
        if self.across_ranks:
            self._new = _merge(self._new, (n, b_mean, b_m2))
        else:
            self._count, self._mean, self._m2 = _merge((self._count, self._mean, self._m2), (n, b_mean, b_m2))

    def update(self) -> None:
        """Publish the recorded statistics (used by `normalize` from now on); with ``across_ranks`` first
        merge every rank's new samples (a collective: every rank must call it)."""
        if self.across_ranks:
            merged = merge_moments(*self._new)
            self._new = (0, torch.zeros_like(self._mean), torch.zeros_like(self._m2))
            if merged[0] > 0:
                self._count, self._mean, self._m2 = _merge((self._count, self._mean, self._m2), merged)
        if self._count == 0:
            return
        var = torch.clamp_min(self._m2 / self._count, self.min_std**2)
        # in place: a captured CUDA graph (`mimictools.rl.step`) reads these very buffers
        self._pub_mean.copy_(self._mean)
        self._pub_std.copy_(torch.sqrt(var))

    def normalize(self, x: Tensor) -> Tensor:
        """``clip((x - mean) / std)``, Shape like `x` (..., dim), float32."""
        return torch.clamp((x.to(torch.float32) - self._pub_mean) / self._pub_std, -self.clip, self.clip)

    def unnormalize(self, y: Tensor) -> Tensor:
        """Inverse of `normalize` (for unclipped values), Shape like `y`."""
        return y * self._pub_std + self._pub_mean

    def state_dict(self) -> Dict[str, Any]:
        """Plain dict of tensors and numbers (loads with ``torch.load(weights_only=True)``)."""
        return {
            "dim": self.dim,
            "clip": self.clip,
            "min_std": self.min_std,
            "max_samples": self.max_samples,
            "count": self._count,
            "mean": self._mean.detach().cpu(),
            "m2": self._m2.detach().cpu(),
            "published_mean": self._pub_mean.detach().cpu(),
            "published_std": self._pub_std.detach().cpu(),
        }

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        """Restore from `state_dict`; the vector size must match."""
        if int(state["dim"]) != self.dim:
            raise ValueError(f"normalizer state has dim {state['dim']}, expected {self.dim}")
        self.clip = float(state["clip"])
        self.min_std = float(state["min_std"])
        self.max_samples = float(state["max_samples"])
        self._count = int(state["count"])
        self._mean = state["mean"].to(device=self.device, dtype=torch.float64)
        self._m2 = state["m2"].to(device=self.device, dtype=torch.float64)
        self._pub_mean.copy_(state["published_mean"])  # in place, as update()
        self._pub_std.copy_(state["published_std"])


def _merge(a: Tuple[int, Tensor, Tensor], b: Tuple[int, Tensor, Tensor]) -> Tuple[int, Tensor, Tensor]:
    """Chan's parallel update: the (count, mean, sum of squared deviations) of the samples of ``a`` and ``b``."""
    (na, mean_a, m2_a), (nb, mean_b, m2_b) = a, b
    total = na + nb
    delta = mean_b - mean_a
    mean = mean_a + delta * (nb / total)
    m2 = m2_a + m2_b + torch.square(delta) * (na * nb / total)
    return total, mean, m2
