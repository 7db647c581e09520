"""The vectorized-environment contract the RL code is written against, and MimicKit's done flags.

Any env (DeepMimic on MuJoCo, MJWarp or Isaac Gym, or a toy env in a test) with these attributes and methods
can be trained by `mimictools.rl.runner.Runner`. One control step is always the same four calls::

    env.apply_actions(actions)      act: PD targets (clipped) into the engine
    env.step_physics()              physics: ``substeps`` physics steps
    obs, reward, done, info = env.observe()            observe (``obs`` is the terminal one for done envs)
    obs = env.reset_where(done != DoneFlag.NULL, obs)  masked auto-reset

On a GPU each call is free of host syncs with fixed shapes, so the runner captures them into CUDA graphs
(`mimictools.rl.step`); on a CPU it simply calls them. Nothing here imports an engine.
"""

from __future__ import annotations

import enum
from typing import Dict, Protocol, Tuple

import torch
from torch import Tensor

from mimictools.errors import MimicToolsError

__all__ = [
    "SUCCESS_ERR_KEY",
    "SUCCESS_MAX_ERR_M",
    "DoneFlag",
    "VecEnv",
    "check_env",
    "episode_tracked",
]


class DoneFlag(enum.IntEnum):
    """Per-env episode status after a step, as MimicKit's ``envs/base_env.py`` ``DoneFlags``.

    How each is bootstrapped is documented in `mimictools.rl.returns`.
    """

    NULL = 0
    """Running."""
    FAIL = 1
    """Early termination (fell or drifted from the reference): no bootstrapping."""
    SUCC = 2
    """Task completed, e.g. the end of a clamp (non-looping) clip."""
    TIME = 3
    """Episode length reached (truncation): the runner bootstraps from the next state's value."""


#: The info entry an episode's success is judged on: MimicKit's ``Body_Pos_Err`` (mean over bodies of the
#: root-relative body position error, m; `mimictools.tasks.tracking`).
SUCCESS_ERR_KEY = "Body_Pos_Err"

#: An episode "tracked the clip" when its mean ``Body_Pos_Err`` over its frames is at most this (m) and the env
#: did not end it early. 7.5 cm = 2.5x what MimicKit's published spinkick run converges to (3.0 cm), and under
#: half of what a policy that stands still scores on the bundled squat (docs/eval.md#success).
SUCCESS_MAX_ERR_M = 0.075


def episode_tracked(mean_err_m, early_termination, max_err_m: float = SUCCESS_MAX_ERR_M):
    """Success of episodes (the one rule of ``mimic eval`` and the training log's ``Test_Success``).

    ``mean_err_m``: each episode's mean ``Body_Pos_Err`` over its frames (m); ``early_termination``: the env
    ended it with `DoneFlag.FAIL` (fall or pose termination). Tensors, arrays or floats; elementwise.
    """
    if isinstance(early_termination, bool):
        return (mean_err_m <= max_err_m) and not early_termination
    return (mean_err_m <= max_err_m) & ~early_termination


class VecEnv(Protocol):
    """A batch of `num_envs` environments stepped together, all tensors on `device`.

    Attributes:
        num_envs: number of parallel envs.
        obs_dim: observation size.
        action_dim: action size.
        device: where every tensor in and out lives.
        action_low, action_high: action bounds, Shape (action_dim,), finite with low < high.
            The policy works in normalized units: [low, high] maps to [-1, 1].
    """

    num_envs: int
    obs_dim: int
    action_dim: int
    device: torch.device
    action_low: Tensor
    action_high: Tensor

    def apply_actions(self, actions: Tensor) -> None:
        """Act: set the actions, Shape (num_envs, action_dim), for the next ``step_physics``."""
        ...

    def step_physics(self) -> None:
        """Physics: advance every env one control step."""
        ...

    def observe(self) -> Tuple[Tensor, Tensor, Tensor, Dict[str, Tensor]]:
        """Observe after ``step_physics``.

        Returns:
            obs: Shape (num_envs, obs_dim); for envs that are done this is the terminal observation.
            reward: Shape (num_envs,).
            done: Shape (num_envs,), integer `DoneFlag` values.
            info: per-env diagnostics for logging, e.g. tracking errors ``{"root_pos_err": (num_envs,)}``;
                may be empty. Keys become log columns (``root_pos_err`` -> ``Root_Pos_Err``).
        """
        ...

    def reset_where(self, mask: Tensor, obs: Tensor) -> Tensor:
        """Reset the envs where ``mask`` (num_envs,) bool is True; returns ``obs`` (num_envs, obs_dim) with
        their rows replaced by the reset observations (the other rows unchanged)."""
        ...

    def set_mode(self, test: bool) -> None:
        """Switch between training (False) and deterministic evaluation (True), e.g. rand_reset off."""
        ...


def check_env(env: VecEnv) -> None:
    """Validate the static parts of an env before training.

    Raises:
        MimicToolsError: a missing attribute, a bad dimension, or action bounds that are not
            finite with low < high (a joint without limits in the character model, typically).
    """
    for name in ("num_envs", "obs_dim", "action_dim", "device", "action_low", "action_high"):
        if not hasattr(env, name):
            raise MimicToolsError(
                f"env {type(env).__name__} has no attribute {name!r} (see tasks.env_api.VecEnv)"
            )
    for name in ("apply_actions", "step_physics", "observe", "reset_where", "set_mode"):
        if not callable(getattr(env, name, None)):
            raise MimicToolsError(
                f"env {type(env).__name__} has no method {name}() (see tasks.env_api.VecEnv)"
            )
    for name in ("num_envs", "obs_dim", "action_dim"):
        v = getattr(env, name)
        if not isinstance(v, int) or v < 1:
            raise MimicToolsError(f"env.{name} must be a positive int, got {v!r}")
    low = torch.as_tensor(env.action_low).detach().cpu().double()
    high = torch.as_tensor(env.action_high).detach().cpu().double()
    if low.shape != (env.action_dim,) or high.shape != (env.action_dim,):
        raise MimicToolsError(
            f"env.action_low/high must have Shape ({env.action_dim},), got {tuple(low.shape)} and {tuple(high.shape)}"
        )
    bad = ~(torch.isfinite(low) & torch.isfinite(high) & (high > low))
    if bool(bad.any()):
        i = int(bad.nonzero()[0])
        raise MimicToolsError(
            f"action bounds of action {i} are [{low[i].item()}, {high[i].item()}]: need finite low < high "
            "(joints must have limits in the character model)"
        )
