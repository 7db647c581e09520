"""The policy's action units: the actor works in [-1, 1] per action, the env in [low, high] (MimicKit's
action normalisation). The one place that maps between them (training, test episodes, evaluation)."""

from __future__ import annotations

from typing import Union

import torch
from torch import Tensor

__all__ = ["ActionScale"]


class ActionScale:
    """``env action = mid + half * normalized action`` with mid/half of the bounds ``low``/``high``, Shape (action_dim,).

    The two tensors are made once (fixed addresses: safe to use inside captured CUDA graphs).
    """

    def __init__(self, low: Tensor, high: Tensor, device: Union[str, torch.device, None] = None) -> None:
        low = torch.as_tensor(low, dtype=torch.float32, device=device)
        high = torch.as_tensor(high, dtype=torch.float32, device=device)
        self.mid = 0.5 * (high + low)
        self.half = 0.5 * (high - low)

    @property
    def low(self) -> Tensor:
        return self.mid - self.half

    @property
    def high(self) -> Tensor:
        return self.mid + self.half

    def to_env(self, norm_actions: Tensor) -> Tensor:
        """Normalized actions ([-1, 1] = [low, high]), Shape (..., action_dim), to env units."""
        return self.mid + self.half * norm_actions
