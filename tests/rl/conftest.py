"""A toy vectorized env for the RL tests: 1-D point masses that must reach and hold x = 0."""

from __future__ import annotations

from typing import Dict, Optional, Tuple

import pytest
import torch
from torch import Tensor

from mimictools.config.schema import AgentConfig, ModelConfig, OptimizerConfig
from mimictools.tasks.env_api import DoneFlag


class PointMassEnv:
    """`num_envs` point masses on a line; implements `mimictools.tasks.env_api.VecEnv`.

    State x (m), v (m/s); obs = [x, v]; action = acceleration (m/s^2) in [-1.5, 2.5] (asymmetric on
    purpose: the runner's [-1, 1] <-> [low, high] mapping is exercised). v <- 0.9 v + a dt,
    x <- x + v dt with dt = 0.1 s. Reward exp(-x^2) per step. FAIL when |x| > 4 m, TIME after
    `episode_steps` steps. Resets draw x ~ U(-2, 2) m from the global torch RNG.
    An untrained policy (mean action = range midpoint, +0.5 m/s^2) drifts away from 0.
    """

    def __init__(self, num_envs: int, episode_steps: int = 40, nan_after_steps: Optional[int] = None) -> None:
        self.num_envs = num_envs
        self.obs_dim = 2
        self.action_dim = 1
        self.device = torch.device("cpu")
        self.action_low = torch.tensor([-1.5])
        self.action_high = torch.tensor([2.5])
        self.episode_steps = episode_steps
        self.nan_after_steps = nan_after_steps
        self.test_mode = False
        self.steps_taken = 0
        self.x = torch.zeros(num_envs)
        self.v = torch.zeros(num_envs)
        self.t = torch.zeros(num_envs, dtype=torch.long)
        self._a = torch.zeros(num_envs)

    def _obs(self) -> Tensor:
        return torch.stack([self.x, self.v], dim=-1)

    def reset_where(self, mask: Tensor, obs: Tensor) -> Tensor:
        m = mask.to(torch.bool)
        draw = torch.rand(self.num_envs) * 4.0 - 2.0  # one draw per env, reset or not
        self.x = torch.where(m, draw, self.x)
        self.v = torch.where(m, torch.zeros_like(self.v), self.v)
        self.t = torch.where(m, torch.zeros_like(self.t), self.t)
        return torch.where(m.unsqueeze(-1), self._obs(), obs)

    def apply_actions(self, actions: Tensor) -> None:
        self._a = torch.clamp(actions[:, 0], -1.5, 2.5)

    def step_physics(self) -> None:
        self.v = 0.9 * self.v + 0.1 * self._a
        self.x = self.x + 0.1 * self.v

    def observe(self) -> Tuple[Tensor, Tensor, Tensor, Dict[str, Tensor]]:
        self.t += 1
        self.steps_taken += 1
        reward = torch.exp(-self.x * self.x)
        if self.nan_after_steps is not None and self.steps_taken > self.nan_after_steps:
            reward = reward.clone()
            reward[1] = float("nan")
        done = torch.full((self.num_envs,), int(DoneFlag.NULL), dtype=torch.int32)
        done = torch.where(self.t >= self.episode_steps, torch.full_like(done, int(DoneFlag.TIME)), done)
        done = torch.where(self.x.abs() > 4.0, torch.full_like(done, int(DoneFlag.FAIL)), done)
        return self._obs(), reward, done, {"pos_err": self.x.abs()}

    def set_mode(self, test: bool) -> None:
        self.test_mode = test


def toy_agent_config(**overrides) -> AgentConfig:
    """Small, fast PPO settings for the toy env (MimicKit's structure, Adam, 64-unit nets)."""
    base = dict(
        model=ModelConfig(
            actor_net="fc_2layers_64units",
            critic_net="fc_2layers_64units",
            actor_init_output_scale=0.01,
            action_std=0.3,
        ),
        actor_optimizer=OptimizerConfig(type="Adam", learning_rate=1e-3),
        critic_optimizer=OptimizerConfig(type="Adam", learning_rate=3e-3),
        discount=0.95,
        steps_per_iter=20,
        iters_per_output=10,
        test_episodes=32,
        actor_epochs=5,
        actor_batch_size=4.0,
        critic_epochs=2,
        critic_batch_size=4.0,
    )
    base.update(overrides)
    return AgentConfig(**base)


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Tiny networks: one thread is fastest, and robust on a loaded machine (no thread spinning)."""
    prev = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(prev)


@pytest.fixture
def make_env():
    return PointMassEnv


@pytest.fixture
def agent_config():
    return toy_agent_config


class HostSyncSpy:
    """Records the ops a CUDA graph cannot capture, run on the CPU: tensors made from host data (a
    host->device copy on a GPU), explicit device moves, ``nonzero`` and ``.item()`` (host syncs).

    Use ``with HostSyncSpy() as spy: ...`` then check ``spy.bad == []``.
    """

    def __init__(self) -> None:
        from torch.utils._python_dispatch import TorchDispatchMode

        bad = self.bad = []

        class _Mode(TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                out = func(*args, **(kwargs or {}))
                name = str(func)
                if (
                    ("lift_fresh" in name and isinstance(out, torch.Tensor) and out.dim() > 0)
                    or ("_to_copy" in name and "device" in (kwargs or {}))
                    or "nonzero" in name
                    or "_local_scalar_dense" in name
                ):
                    bad.append(name)
                return out

        self._mode = _Mode()

    def __enter__(self) -> HostSyncSpy:
        self._mode.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._mode.__exit__(*exc)


@pytest.fixture
def host_sync_spy():
    """The `HostSyncSpy` class (a context manager)."""
    return HostSyncSpy
