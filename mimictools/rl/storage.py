"""Rollout storage with tensors ``(num_steps, num_envs, ...)`` and a minibatch iterator.

MimicKit's experience buffer draws minibatches from one endless stream of random permutations
(a minibatch can straddle two permutations). Here each epoch is one fresh permutation of the
flattened ``num_steps * num_envs`` samples, cut into minibatches in order: every sample is used
exactly once per epoch, and the last minibatch is smaller when the size does not divide.
The number of minibatches per epoch, ``ceil(num_samples / batch_size)``, is MimicKit's.
"""

from __future__ import annotations

from typing import Dict, Iterator, Mapping, Optional, Union

import torch
from torch import Tensor

__all__ = ["RolloutStorage", "iter_minibatches", "minibatches_of", "num_minibatches"]


class RolloutStorage:
    """One iteration of experience, Shape (num_steps, num_envs, ...) per field.

    Fields: ``obs`` and ``next_obs`` (raw env observations, (T, N, obs_dim)), ``actions``
    (normalized units, (T, N, action_dim)), ``log_probs`` (of the normalized actions, (T, N)),
    ``rewards`` (T, N) and ``dones`` ((T, N), int `DoneFlag` values). ``next_obs`` of a done env is
    its terminal observation (before the reset).
    """

    def __init__(
        self,
        num_steps: int,
        num_envs: int,
        obs_dim: int,
        action_dim: int,
        device: Union[str, torch.device] = "cpu",
    ) -> None:
        self.num_steps = int(num_steps)
        self.num_envs = int(num_envs)
        self.device = torch.device(device)
        t, n = self.num_steps, self.num_envs
        kw = {"device": self.device}
        self.obs = torch.zeros(t, n, obs_dim, dtype=torch.float32, **kw)
        self.next_obs = torch.zeros(t, n, obs_dim, dtype=torch.float32, **kw)
        self.actions = torch.zeros(t, n, action_dim, dtype=torch.float32, **kw)
        self.log_probs = torch.zeros(t, n, dtype=torch.float32, **kw)
        self.rewards = torch.zeros(t, n, dtype=torch.float32, **kw)
        self.dones = torch.zeros(t, n, dtype=torch.long, **kw)
        self.step = 0

    @property
    def num_samples(self) -> int:
        """Samples per full rollout, ``num_steps * num_envs``."""
        return self.num_steps * self.num_envs

    @property
    def full(self) -> bool:
        return self.step == self.num_steps

    def clear(self) -> None:
        """Start a new rollout (data is overwritten, not zeroed)."""
        self.step = 0

    def add(
        self,
        obs: Tensor,
        actions: Tensor,
        log_probs: Tensor,
        rewards: Tensor,
        next_obs: Tensor,
        dones: Tensor,
    ) -> None:
        """Write one control step for all envs (each argument has leading Shape (num_envs,))."""
        if self.step >= self.num_steps:
            raise IndexError(f"rollout storage is full ({self.num_steps} steps); call clear()")
        i = self.step
        self.obs[i] = obs
        self.actions[i] = actions
        self.log_probs[i] = log_probs
        self.rewards[i] = rewards
        self.next_obs[i] = next_obs
        self.dones[i] = dones
        self.step += 1

    def flat(self, name: str) -> Tensor:
        """Field `name` viewed as Shape (num_steps * num_envs, ...); row index = step * num_envs + env."""
        t = getattr(self, name)
        return t.reshape((self.num_samples,) + tuple(t.shape[2:]))

    def check_finite(self, iteration: int) -> None:
        """Raise `TrainingDivergedError` naming the first non-finite field, rollout step and env (one host sync)."""
        from mimictools.errors import TrainingDivergedError

        fields = (
            ("observations (env.observe/env.reset_where)", self.obs),
            ("actions (policy output)", self.actions),
            ("rewards (env.observe)", self.rewards),
            ("next observations (env.observe)", self.next_obs),
        )
        ok = torch.stack([torch.isfinite(t).all() for _, t in fields]).tolist()
        for (name, t), good in zip(fields, ok):
            if not good:
                bad = (
                    (~torch.isfinite(t)).reshape(t.shape[0], t.shape[1], -1).any(dim=-1).nonzero()[0].tolist()
                )
                raise TrainingDivergedError(
                    f"training diverged: non-finite {name} at iteration {iteration}, "
                    f"rollout step {bad[0]}, env {bad[1]} (the last good checkpoint is kept)"
                )


def num_minibatches(num_samples: int, batch_size: int) -> int:
    """``ceil(num_samples / batch_size)``: minibatches per epoch (MimicKit's count)."""
    return -(-num_samples // batch_size)


def iter_minibatches(
    data: Mapping[str, Tensor],
    batch_size: int,
    generator: Optional[torch.Generator] = None,
) -> Iterator[Dict[str, Tensor]]:
    """One epoch of shuffled minibatches over tensors sharing a leading dimension.

    Args:
        data: name -> tensor, each Shape (num_samples, ...), all on one device.
        batch_size: samples per minibatch; the last minibatch holds the remainder.
        generator: RNG for the permutation (the global torch RNG when None).

    Yields:
        name -> Shape (batch, ...) slices; every sample appears in exactly one minibatch.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    tensors = list(data.values())
    if not tensors:
        return
    n = tensors[0].shape[0]
    for name, t in data.items():
        if t.shape[0] != n:
            raise ValueError(f"minibatch field {name!r} has {t.shape[0]} rows, expected {n}")
    device = tensors[0].device
    if generator is not None and generator.device.type != device.type:
        perm = torch.randperm(n, generator=generator, device=generator.device).to(device)
    else:
        perm = torch.randperm(n, generator=generator, device=device)
    yield from minibatches_of(data, perm, batch_size)


def minibatches_of(data: Mapping[str, Tensor], perm: Tensor, batch_size: int) -> Iterator[Dict[str, Tensor]]:
    """The minibatches of one epoch for a given permutation (``iter_minibatches`` draws it).

    Args:
        data: name -> tensor, each Shape (num_samples, ...).
        perm: a permutation of ``range(num_samples)``, Shape (num_samples,), on the data's device.
        batch_size: samples per minibatch; the last one holds the remainder.

    Yields:
        name -> Shape (batch, ...) gathered rows ``t[perm[start:start + batch_size]]``. Only fixed slices
        and gathers: no host sync, so a CUDA graph can capture the loop with ``perm`` as a static buffer.
    """
    for start in range(0, perm.shape[0], batch_size):
        idx = perm[start : start + batch_size]
        yield {name: t[idx] for name, t in data.items()}
