"""Actor and critic MLPs built from MimicKit net names (``fc_2layers_1024units``...).

As MimicKit (``learning/nets/fc_*.py``, ``ppo_model.py``, ``distribution_gaussian_diag.py``):

- hidden layers are Linear + ReLU with zero bias and PyTorch's default weight init; widths from
  `mimictools.config.schema.mlp_hidden_sizes` (``fc_2layers_1024units`` = 1024 then 512 units);
- the actor is a diagonal Gaussian over *normalized* actions (the env's [low, high] mapped to
  [-1, 1]): mean head Linear with weights uniform in ``[-actor_init_output_scale, +scale]`` and zero
  bias, FIXED log-std ``log(action_std)`` (a buffer, not trained);
- the critic is the same kind of MLP followed by Linear(hidden, 1), zero bias; it returns Shape (B,).
"""

from __future__ import annotations

import math
from typing import Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

from mimictools.config.schema import ModelConfig, mlp_hidden_sizes
from mimictools.errors import NotSupportedError

__all__ = ["Critic", "GaussianActor", "build_actor_critic", "build_mlp"]


def build_mlp(in_dim: int, hidden: Sequence[int]) -> nn.Sequential:
    """Linear+ReLU layers of widths `hidden` (zero bias, default weight init), input size `in_dim`."""
    layers = []
    size = int(in_dim)
    for width in hidden:
        lin = nn.Linear(size, int(width))
        nn.init.zeros_(lin.bias)
        layers += [lin, nn.ReLU()]
        size = int(width)
    return nn.Sequential(*layers)


class GaussianActor(nn.Module):
    """Diagonal Gaussian policy with a fixed std, in normalized action units.

    Args:
        obs_dim: input size (normalized observations).
        action_dim: action size.
        hidden: hidden layer widths.
        init_output_scale: output weights start uniform in [-scale, scale].
        action_std: fixed standard deviation (normalized units).
    """

    def __init__(
        self,
        obs_dim: int,
        action_dim: int,
        hidden: Sequence[int],
        init_output_scale: float = 0.01,
        action_std: float = 0.05,
    ) -> None:
        super().__init__()
        self.body = build_mlp(obs_dim, hidden)
        self.mean_head = nn.Linear(int(hidden[-1]) if hidden else int(obs_dim), int(action_dim))
        nn.init.uniform_(self.mean_head.weight, -init_output_scale, init_output_scale)
        nn.init.zeros_(self.mean_head.bias)
        self.register_buffer("log_std", torch.full((int(action_dim),), math.log(action_std)))
        self.action_dim = int(action_dim)

    def forward(self, norm_obs: Tensor) -> Tensor:
        """Mean action, Shape (B, action_dim), for normalized observations Shape (B, obs_dim)."""
        return self.mean_head(self.body(norm_obs))

    @property
    def std(self) -> Tensor:
        """Shape (action_dim,)."""
        return torch.exp(self.log_std)

    def sample(self, mean: Tensor, generator: Optional[torch.Generator] = None) -> Tensor:
        """Draw ``mean + std * N(0, 1)``, Shape like `mean`."""
        noise = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
        return mean + self.std * noise

    def log_prob(self, mean: Tensor, actions: Tensor) -> Tensor:
        """Log density of `actions` under N(mean, std^2), summed over action dims: Shape (B,)."""
        z = (actions - mean) / self.std
        return (
            -0.5 * torch.sum(z * z, dim=-1)
            - torch.sum(self.log_std)
            - 0.5 * self.action_dim * math.log(2.0 * math.pi)
        )

    def entropy(self) -> Tensor:
        """Entropy of the (state-independent) distribution, a scalar."""
        return torch.sum(self.log_std) + 0.5 * self.action_dim * math.log(2.0 * math.pi * math.e)


class Critic(nn.Module):
    """State-value MLP: normalized observations Shape (B, obs_dim) -> values Shape (B,)."""

    def __init__(self, obs_dim: int, hidden: Sequence[int]) -> None:
        super().__init__()
        self.body = build_mlp(obs_dim, hidden)
        self.value_head = nn.Linear(int(hidden[-1]) if hidden else int(obs_dim), 1)
        nn.init.zeros_(self.value_head.bias)

    def forward(self, norm_obs: Tensor) -> Tensor:
        return self.value_head(self.body(norm_obs)).squeeze(-1)


def build_actor_critic(model: ModelConfig, obs_dim: int, action_dim: int) -> Tuple[GaussianActor, Critic]:
    """Actor and critic for `model` (agent ``model:`` section).

    Raises:
        NotSupportedError: a net name that is not ``fc_<n>layers_<u>units``, or a std type other
            than FIXED.
    """
    if model.actor_std_type != "FIXED":
        raise NotSupportedError(
            f"actor_std_type {model.actor_std_type!r} is not supported yet (built: 'FIXED')"
        )
    actor = GaussianActor(
        obs_dim,
        action_dim,
        mlp_hidden_sizes(model.actor_net),
        init_output_scale=model.actor_init_output_scale,
        action_std=model.action_std,
    )
    critic = Critic(obs_dim, mlp_hidden_sizes(model.critic_net))
    return actor, critic
