"""Training checkpoints: atomic save, safe load, RNG state, and a policy loader for evaluation.

A checkpoint is a plain dict saved with `torch.save` and loaded with
``torch.load(..., weights_only=True)`` (loading executes no code), so it holds only tensors,
numbers, strings, lists, dicts and None:

=====================  ===========================================================
``format``, ``version`` ``"mimictools.ppo"``, `CHECKPOINT_VERSION`
``actor``, ``critic``   network state dicts
``obs_normalizer``      `Normalizer.state_dict`
``optimizers``          ``{"actor_optimizer": ..., "critic_optimizer": ...}``, plus
                        ``actor_learning_rate`` (float) with an adaptive rate (``desired_kl``)
``iteration``           last completed iteration (0-based)
``samples``             training samples so far
``wall_time_s``         training wall time so far (s), over all resumed sessions
``best_test_return``    best Test_Return so far (-inf before the first test)
``rng``                 `capture_rng_state` (torch CPU/CUDA, numpy, python ``random``)
``rank_rng``            distributed runs only: every rank's `capture_rng_state`, by global rank
``obs_dim``...          ``obs_dim``, ``action_dim``, ``num_envs``, ``action_low``/``action_high``
``agent_config``        the agent config as a plain dict (MimicKit keys)
``config``              the run's resolved config as given by the caller (plain dict or None)
``pending_output``      None, or the update stats / training returns of an output iteration whose test
                        episodes were interrupted: a resumed run first completes that output
=====================  ===========================================================

Writes are atomic: a temp file in the same folder, fsync, then `os.replace`.
"""

from __future__ import annotations

import math
import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

import numpy as np
import torch
from torch import Tensor

from mimictools.config.load import to_dict
from mimictools.errors import CheckpointError
from mimictools.io_util import atomic_open, remove_stale_temps
from mimictools.rl.action_scale import ActionScale

__all__ = [
    "runner_state",
    "restore_runner",
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_VERSION",
    "Policy",
    "capture_rng_state",
    "load_checkpoint",
    "load_policy",
    "restore_rng_state",
    "save_checkpoint",
    "seed_everything",
]

CHECKPOINT_FORMAT = "mimictools.ppo"
CHECKPOINT_VERSION = 1
_REQUIRED = (
    "actor",
    "critic",
    "obs_normalizer",
    "optimizers",
    "iteration",
    "samples",
    "wall_time_s",
    "rng",
    "obs_dim",
    "action_dim",
    "action_low",
    "action_high",
    "agent_config",
)

# What evaluation needs; a policy-only checkpoint (critic and optimizer state stripped, e.g. to ship
# a trained policy) has these and loads with ``load_policy`` but cannot resume training.
_POLICY_REQUIRED = (
    "actor",
    "obs_normalizer",
    "obs_dim",
    "action_dim",
    "action_low",
    "action_high",
    "agent_config",
)

PathLike = Union[str, "os.PathLike[str]"]


def save_checkpoint(path: PathLike, state: Mapping[str, Any]) -> Path:
    """Write `state` (plus format/version tags) to `path` atomically; returns the path."""
    p = Path(path)
    payload = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION}
    payload.update(state)
    with atomic_open(p, "wb") as f:
        torch.save(payload, f)
    return p


def load_checkpoint(
    path: PathLike, map_location: Union[str, torch.device] = "cpu", required: Sequence[str] = _REQUIRED
) -> Dict[str, Any]:
    """Load and check a checkpoint written by `save_checkpoint` (``required``: entries that must be present).

    Raises:
        CheckpointError: missing file, unreadable/corrupt/truncated file, not a mimictools
            checkpoint, a newer format version, or missing entries.
    """
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"{p}: checkpoint not found")
    try:
        state = torch.load(str(p), map_location=map_location, weights_only=True)
    except Exception as e:  # corrupt zip, truncated pickle, disallowed global...
        raise CheckpointError(
            f"{p}: not a readable checkpoint (corrupt or truncated?): {type(e).__name__}: {e}"
        ) from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"{p}: not a mimictools training checkpoint (format tag {CHECKPOINT_FORMAT!r} missing)"
        )
    version = state.get("version")
    if not isinstance(version, int) or version > CHECKPOINT_VERSION:
        raise CheckpointError(
            f"{p}: checkpoint version {version!r} is newer than this mimictools reads ({CHECKPOINT_VERSION})"
        )
    missing = [k for k in required if k not in state]
    if missing:
        raise CheckpointError(f"{p}: checkpoint lacks {', '.join(missing)}")
    return state


# ----------------------------------------------------------------------------------- RNG


def seed_everything(seed: int) -> None:
    """Seed python ``random``, numpy's global RNG and torch (CPU and all CUDA devices)."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def capture_rng_state() -> Dict[str, Any]:
    """RNG states as tensors/numbers (weights_only-loadable)."""
    np_state = np.random.get_state(legacy=True)
    py_version, py_state, py_gauss = random.getstate()
    out: Dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "keys": torch.from_numpy(np.asarray(np_state[1], dtype=np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "python": {
            "version": int(py_version),
            "state": torch.tensor(py_state, dtype=torch.int64),
            "gauss_next": py_gauss,
        },
        "cuda": [],
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        out["cuda"] = [s.cpu() for s in torch.cuda.get_rng_state_all()]
    return out


def restore_rng_state(state: Mapping[str, Any]) -> None:
    """Inverse of `capture_rng_state`."""
    torch.set_rng_state(state["torch"].cpu().to(torch.uint8))
    npst = state["numpy"]
    np.random.set_state(
        (
            "MT19937",
            npst["keys"].cpu().numpy().astype(np.uint32),
            int(npst["pos"]),
            int(npst["has_gauss"]),
            float(npst["cached_gaussian"]),
        )
    )
    py = state["python"]
    random.setstate((int(py["version"]), tuple(int(x) for x in py["state"].tolist()), py["gauss_next"]))
    cuda: List[Tensor] = list(state.get("cuda", []))
    if cuda and torch.cuda.is_available():
        n = min(len(cuda), torch.cuda.device_count())
        for i in range(n):
            torch.cuda.set_rng_state(cuda[i].cpu().to(torch.uint8), device=i)  # must be a CPU ByteTensor


# -------------------------------------------------------------------------------- policy


@dataclass
class Policy:
    """A trained policy for evaluation: raw observations in, env actions out.

    Attributes:
        actor: the Gaussian actor (normalized action units).
        obs_normalizer: the training run's observation normalizer.
        actions: the policy's action units <-> env units (the env's bounds at training time).
    """

    actor: Any
    obs_normalizer: Any
    actions: ActionScale

    @property
    def action_low(self) -> Tensor:
        return self.actions.low

    @property
    def action_high(self) -> Tensor:
        return self.actions.high

    @torch.no_grad()
    def __call__(self, obs: Tensor, deterministic: bool = True) -> Tensor:
        """Actions in env units, Shape (B, action_dim), for observations Shape (B, obs_dim)."""
        mean = self.actor(self.obs_normalizer.normalize(obs))
        return self.actions.to_env(mean if deterministic else self.actor.sample(mean))


def load_policy(path: PathLike, device: Union[str, torch.device] = "cpu") -> Policy:
    """Build the actor and observation normalizer of a checkpoint, on `device`, in eval mode.

    Raises:
        CheckpointError: unreadable checkpoint or networks that do not match its config.
    """
    from mimictools.config.load import config_from_dict
    from mimictools.config.schema import AgentConfig
    from mimictools.errors import MimicToolsError
    from mimictools.rl.networks import build_actor_critic
    from mimictools.rl.normalizer import Normalizer

    state = load_checkpoint(path, map_location=device, required=_POLICY_REQUIRED)
    try:
        agent = config_from_dict(AgentConfig, state["agent_config"], f"{path} (agent_config)")
        actor, _ = build_actor_critic(agent.model, int(state["obs_dim"]), int(state["action_dim"]))
        actor.load_state_dict(state["actor"])
        norm = Normalizer(int(state["obs_dim"]), device=device)
        norm.load_state_dict(state["obs_normalizer"])
    except (MimicToolsError, RuntimeError, KeyError, ValueError) as e:
        raise CheckpointError(f"{path}: cannot rebuild the policy: {e}") from None
    actor.to(device).eval()
    return Policy(
        actor=actor,
        obs_normalizer=norm,
        actions=ActionScale(state["action_low"], state["action_high"], device=device),
    )


# ------------------------------------------------------------------------------- a runner's state


def runner_state(runner: Any, pending_output: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
    """Everything `save_checkpoint` writes for a `mimictools.rl.runner.Runner` (module docstring's table)."""
    lt = runner.last_test
    return {
        "actor": runner.actor.state_dict(),
        "critic": runner.critic.state_dict(),
        "obs_normalizer": runner.obs_normalizer.state_dict(),
        "optimizers": runner.ppo.state_dict(),
        "iteration": runner.iteration,
        "samples": runner.samples,
        "wall_time_s": runner.wall_time_s,
        "best_test_return": runner.best_test_return,
        "last_test": None if lt is None else _test_dict(lt),
        "pending_output": None if pending_output is None else dict(pending_output),
        "rng": capture_rng_state(),
        "obs_dim": runner.env.obs_dim,
        "action_dim": runner.env.action_dim,
        "num_envs": runner.env.num_envs,
        "action_low": runner.actions.low.cpu(),
        "action_high": runner.actions.high.cpu(),
        "agent_config": to_dict(runner.cfg),
        "config": runner.config_record,
    }


def restore_runner(runner: Any, path: PathLike, restore_rng: bool = True) -> Dict[str, Any]:
    """Restore a runner's networks, optimizers, normalizer, counters (and RNG) from checkpoint ``path``.

    Learning rates and weight decay come from the runner's config, not the checkpoint, so a resumed run can
    change them; an adaptive actor rate (``desired_kl``) continues from the checkpoint (`PPO.load_state_dict`).
    Returns the checkpoint dict.

    Raises:
        CheckpointError: unreadable checkpoint, or one for other observation/action sizes or other networks.
    """
    from mimictools.rl.results import TestResult

    state = load_checkpoint(path, map_location=runner.device)
    for key in ("obs_dim", "action_dim"):
        if int(state[key]) != getattr(runner.env, key):
            raise CheckpointError(
                f"{path}: checkpoint has {key} {state[key]}, the env has {getattr(runner.env, key)}"
            )
    try:
        runner.actor.load_state_dict(state["actor"])
        runner.critic.load_state_dict(state["critic"])
        runner.obs_normalizer.load_state_dict(state["obs_normalizer"])
        runner.ppo.load_state_dict(state["optimizers"])
    except (RuntimeError, KeyError, ValueError) as e:
        raise CheckpointError(f"{path}: does not match the configured networks: {e}") from None
    cfg = runner.cfg
    runner.obs_normalizer.max_samples = float(cfg.normalizer_samples)
    runner.iteration = int(state["iteration"])
    runner.samples = int(state["samples"])
    runner.wall_time_s = float(state["wall_time_s"])
    runner.best_test_return = float(state.get("best_test_return", -math.inf))
    lt = state.get("last_test")
    runner.last_test = (
        None
        if lt is None
        else TestResult(
            float(lt["mean_return"]), float(lt["mean_episode_length"]), int(lt["episodes"]), dict(lt["info"])
        )
    )
    if restore_rng:
        ranks = getattr(runner, "ranks", None)
        rank_rng = state.get("rank_rng") or []
        if ranks is None or not ranks.distributed:
            restore_rng_state(state["rng"])
        elif len(rank_rng) == ranks.world_size:
            restore_rng_state(rank_rng[ranks.rank])
        else:  # saved by a run of other ranks: rank 0's state, offset by the rank
            from mimictools.rl import distributed

            restore_rng_state(state["rng"])
            seed_everything(distributed.rank_seed(int(torch.randint(2**31 - 1, ())), ranks.rank))
    return state


def save_runner(
    runner: Any, path: PathLike, pending: Optional[Mapping[str, Any]] = None, also: Sequence[Any] = ()
) -> None:
    """Write a runner's state to ``path`` (and the paths ``also``): on rank 0 only, with every rank's RNG state
    (``rank_rng``) when distributed, which makes this a collective: every rank calls it."""
    state = runner_state(runner, pending)
    ranks = getattr(runner, "ranks", None)
    if ranks is not None and ranks.distributed:
        from mimictools.rl import distributed

        state["rank_rng"] = distributed.all_gather_objects(state["rng"])
    if ranks is None or ranks.is_writer:
        for p in list(also) + [path]:
            save_checkpoint(p, state)
        remove_stale_temps(Path(path).parent)  # temp files of an earlier writer killed mid-write


def _test_dict(t: Any) -> Dict[str, Any]:
    return {
        "mean_return": t.mean_return,
        "mean_episode_length": t.mean_episode_length,
        "episodes": t.episodes,
        "info": dict(t.info),
    }
