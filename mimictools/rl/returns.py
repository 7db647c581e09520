"""TD(lambda) returns and advantages with MimicKit's done flags.

What MimicKit does (read in xbpeng/MimicKit ``mimickit/learning/ppo_agent.py`` ``_build_train_data``,
``base_agent.py`` ``_compute_succ_val``/``_compute_fail_val`` and ``learning/rl_util.py``
``compute_td_lambda_return``); the same facts are implemented here:

1. ``next_values[t] = V(next_obs[t])`` for every step, where ``next_obs`` is the observation the
   env returned *before* any reset (the terminal observation of a finished episode).
2. Then, by the done flag of step t (`mimictools.tasks.env_api.DoneFlag`):

   - NULL (0): keep ``V(next_obs)``.
   - FAIL (1): replace by ``r_fail / (1 - gamma)``, the value of receiving the env's fail reward
     forever. DeepMimic's ``get_reward_fail()`` is 0, so a failure bootstraps 0.
   - SUCC (2): replace by ``r_succ / (1 - gamma)``. DeepMimic's ``get_reward_succ()`` is also 0
     ("avoids the local minimum of a character just standing still until the end of the motion").
   - TIME (3): keep ``V(next_obs)``: a truncated episode bootstraps with the critic.

3. Backward recursion over the rollout, per env, with ``lambda_t = td_lambda * (1 - reset_t)`` and
   ``reset_t = (done_t != NULL)``::

       G[T-1] = r[T-1] + gamma * next_values[T-1]
       G[t]   = r[t] + gamma * ((1 - lambda_t) * next_values[t] + lambda_t * G[t+1])

   so at any done step ``G[t] = r[t] + gamma * next_values[t]`` (no trace crosses an episode
   boundary) and the last step of the rollout always bootstraps with ``next_values``.
4. ``advantage = G - V(obs)``; the critic regresses to ``G``. (Normalizing and clipping the
   advantages is the PPO update's job, `mimictools.rl.ppo`.)

All functions take Shape (num_steps, num_envs) tensors and loop over steps only.
"""

from __future__ import annotations

from typing import Tuple

import torch
from torch import Tensor

from mimictools.tasks.env_api import DoneFlag

__all__ = ["bootstrap_next_values", "compute_returns_and_advantages", "td_lambda_returns", "terminal_value"]


def terminal_value(reward: float, discount: float) -> float:
    """Value of receiving `reward` at every step forever: ``reward / (1 - discount)``."""
    return reward / (1.0 - discount)


def bootstrap_next_values(
    next_values: Tensor,
    dones: Tensor,
    succ_value: float = 0.0,
    fail_value: float = 0.0,
) -> Tensor:
    """Replace the critic's ``V(next_obs)`` at SUCC and FAIL steps by the fixed terminal values.

    Args:
        next_values: ``V(next_obs)``, Shape (num_steps, num_envs).
        dones: `DoneFlag` values, Shape (num_steps, num_envs).
        succ_value: value after SUCC, ``r_succ / (1 - gamma)`` (0 for DeepMimic).
        fail_value: value after FAIL, ``r_fail / (1 - gamma)`` (0 for DeepMimic).

    Returns:
        Bootstrapped next values, Shape (num_steps, num_envs); NULL and TIME keep ``V(next_obs)``.
    """
    out = torch.where(dones == int(DoneFlag.SUCC), torch.full_like(next_values, succ_value), next_values)
    return torch.where(dones == int(DoneFlag.FAIL), torch.full_like(next_values, fail_value), out)


def td_lambda_returns(
    rewards: Tensor,
    next_values: Tensor,
    dones: Tensor,
    discount: float,
    td_lambda: float,
) -> Tensor:
    """TD(lambda) returns, MimicKit's recursion (see the module docstring).

    Args:
        rewards: Shape (num_steps, num_envs).
        next_values: already bootstrapped (`bootstrap_next_values`), Shape (num_steps, num_envs).
        dones: `DoneFlag` values, Shape (num_steps, num_envs).
        discount: gamma in [0, 1).
        td_lambda: lambda in [0, 1].

    Returns:
        Returns G, Shape (num_steps, num_envs).
    """
    if rewards.shape != next_values.shape or rewards.shape != dones.shape:
        raise ValueError(
            f"rewards {tuple(rewards.shape)}, next_values {tuple(next_values.shape)} and dones "
            f"{tuple(dones.shape)} must have the same Shape (num_steps, num_envs)"
        )
    num_steps = rewards.shape[0]
    reset = (dones != int(DoneFlag.NULL)).to(rewards.dtype)
    lam = td_lambda * (1.0 - reset)
    returns = torch.empty_like(rewards)
    returns[-1] = rewards[-1] + discount * next_values[-1]
    for t in range(num_steps - 2, -1, -1):
        returns[t] = rewards[t] + discount * ((1.0 - lam[t]) * next_values[t] + lam[t] * returns[t + 1])
    return returns


def compute_returns_and_advantages(
    rewards: Tensor,
    values: Tensor,
    next_values: Tensor,
    dones: Tensor,
    discount: float,
    td_lambda: float,
    succ_value: float = 0.0,
    fail_value: float = 0.0,
) -> Tuple[Tensor, Tensor]:
    """Bootstrap, TD(lambda) returns and raw advantages in one call.

    Args:
        rewards: Shape (num_steps, num_envs).
        values: ``V(obs)``, Shape (num_steps, num_envs).
        next_values: ``V(next_obs)`` before bootstrapping, Shape (num_steps, num_envs).
        dones: `DoneFlag` values, Shape (num_steps, num_envs).
        discount, td_lambda: gamma and lambda.
        succ_value, fail_value: terminal values of SUCC and FAIL (`terminal_value`).

    Returns:
        (returns, advantages), each Shape (num_steps, num_envs); ``advantages = returns - values``.
    """
    boot = bootstrap_next_values(next_values, dones, succ_value=succ_value, fail_value=fail_value)
    returns = td_lambda_returns(rewards, boot, dones, discount, td_lambda)
    return returns, returns - values
