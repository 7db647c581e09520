"""One control step of the policy in the env: the only step path of training and test episodes.

Each step is the env contract's four calls (`mimictools.tasks.env_api`) around the policy::

    act (torch)       obs -> normalize -> actor mean -> sample -> log-prob -> env.apply_actions
    env.step_physics  the engine's physics (on MJWarp its own captured Warp graph)
    post (torch)      env.observe -> episode tracker -> env.reset_where(done) -> next obs

On a CPU the two torch halves are simply called. On a GPU they are captured once as CUDA graphs and replayed
(``capture``): in eager PyTorch every tensor op is a kernel launch from Python, and the DeepMimic task plus
the policy is several hundred small ops per control step (~10 ms of host time on an H100 box at any env
count), as long as the physics of 4096 humanoids; replayed, a step costs three launches. Same Python code,
same results up to the random draws.

What makes the step capturable (and what envs and callers must keep true):
- no host sync on the path: resets are mask-blended on the GPU (`DeepMimicEnv.reset_where`), clip ids are
  drawn by inverse CDF, the engine writes rows with ``set_state_where``; shapes never change;
- every tensor that lives across steps is updated in place at a fixed address: env state, normalizer
  statistics (``Normalizer.update``), network parameters (optimizers), the episode tracker;
- random numbers come from torch's default CUDA generator (graph-safe: each replay draws new ones).

Outputs of a replay are static buffers overwritten by the next replay: copy what you keep.
"""

from __future__ import annotations

import gc
from typing import Any, Callable, Dict, Optional, Tuple

import torch
from torch import Tensor

from mimictools.rl.action_scale import ActionScale
from mimictools.rl.step_clock import StepClock, mark
from mimictools.tasks.env_api import DoneFlag

__all__ = ["PolicyStep"]

WARMUP_STEPS = 2  # eager steps on a side stream before capture (torch's recipe: lazy init, allocator)


class PolicyStep:
    """Steps of ``env`` driven by ``actor``, replayed as CUDA graphs when ``capture`` (and on CUDA).

    Args:
        env: a `VecEnv`.
        actor: the Gaussian actor (``forward``, ``sample``, ``log_prob``).
        normalize: raw obs (n, obs_dim) -> normalized obs.
        actions: the policy's action units <-> env units.
        tracker: episode tracker updated with (reward, done) every step (in place), or None.
        deterministic: act with the mean (test episodes) instead of sampling.
        capture: capture CUDA graphs at ``prepare`` (only on a CUDA device).

    ``obs`` is the current observation buffer (n, obs_dim): write it before the first ``step``;
    after each ``step`` it holds the next observation (done envs already reset).
    """

    def __init__(
        self,
        env: Any,
        actor: Any,
        normalize: Callable[[Tensor], Tensor],
        actions: ActionScale,
        tracker: Any = None,
        *,
        deterministic: bool = False,
        capture: bool = True,
    ) -> None:
        self.env = env
        self.actor = actor
        self.normalize = normalize
        self.actions = actions
        self.tracker = tracker
        self.deterministic = bool(deterministic)
        self.device = torch.device(env.device)
        self.capture = bool(capture) and self.device.type == "cuda"
        self.obs = torch.zeros(env.num_envs, env.obs_dim, dtype=torch.float32, device=self.device)
        self._graphs: Optional[Tuple[Any, Any]] = None
        self._out_act: Optional[Tuple[Tensor, Tensor]] = None
        self._out_post: Optional[Tuple[Tensor, Tensor, Tensor, Dict[str, Tensor]]] = None
        self.capture_error: Optional[str] = None
        """Why capture failed (the steps then run eagerly), or None."""

    # ------------------------------------------------------------------ the two halves around the physics
    @torch.no_grad()
    def _act(self) -> Tuple[Tensor, Tensor]:
        mean = self.actor(self.normalize(self.obs))
        norm_a = mean if self.deterministic else self.actor.sample(mean)
        logp = self.actor.log_prob(mean, norm_a)
        self.env.apply_actions(self.actions.to_env(norm_a))
        return norm_a, logp

    @torch.no_grad()
    def _post(self) -> Tuple[Tensor, Tensor, Tensor, Dict[str, Tensor]]:
        next_obs, reward, done, info = self.env.observe()
        if self.tracker is not None:
            self.tracker.update(reward, done)
        self.obs.copy_(self.env.reset_where(done != int(DoneFlag.NULL), next_obs))
        return next_obs, reward, done, info

    # ---------------------------------------------------------------------------------- public
    def release(self) -> None:
        """Drop the captured graphs and their memory pool (steps run eagerly afterwards, if called)."""
        self._graphs = None
        self._out_act = self._out_post = None
        self.capture = False

    @property
    def captured(self) -> bool:
        return self._graphs is not None

    def prepare(self) -> None:
        """Capture the graphs now if they are due (``capture`` and not yet captured). The warm-up before
        the capture makes ``WARMUP_STEPS`` real steps from ``obs`` (tracked, not returned); ``obs`` then
        holds the current observation. If the capture fails, ``capture_error`` says why and the steps
        run eagerly (same code, same results, launch-bound)."""
        if not self.capture or self._graphs is not None:
            return
        try:
            self._capture()
        except RuntimeError as exc:  # e.g. an op that syncs with the host inside the capture
            self.capture = False
            self.capture_error = f"{type(exc).__name__}: {exc}".splitlines()[0]

    def step(
        self, clock: Optional[StepClock] = None
    ) -> Tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Dict[str, Tensor]]:
        """One control step from ``obs``. Returns (norm_actions, log_probs, next_obs (before resets),
        reward, done, info); ``obs`` then holds the next observation with done envs reset.
        Call ``prepare`` first: a capture inside ``step`` would advance the env before this step.
        ``clock``: marks the ends of act, physics and post (`mimictools.rl.step_clock`; benchmarks only)."""
        if self._graphs is not None:
            graph_act, graph_post = self._graphs
            graph_act.replay()
            mark(clock)
            self.env.step_physics()
            mark(clock)
            graph_post.replay()
            norm_a, logp = self._out_act  # type: ignore[misc]
            out = self._out_post
        else:
            norm_a, logp = self._act()
            mark(clock)
            self.env.step_physics()
            mark(clock)
            out = self._post()
        mark(clock)
        assert out is not None
        next_obs, reward, done, info = out
        return norm_a, logp, next_obs, reward, done, info

    def _capture(self) -> None:
        """Warm up on a side stream (real env steps: the env advances), then capture both halves."""
        dev = self.device
        # Objects of earlier runs (graphs, engines) freed by the garbage collector *during* the capture
        # would call CUDA functions that are illegal while a stream captures (seen: a segfault when a
        # benchmark built a second runner): collect them now.
        gc.collect()
        torch.cuda.synchronize(dev)
        side = torch.cuda.Stream(device=dev)
        side.wait_stream(torch.cuda.current_stream(dev))
        with torch.cuda.stream(side):
            for _ in range(WARMUP_STEPS):
                self._act()
                self.env.step_physics()
                self._post()
        torch.cuda.current_stream(dev).wait_stream(side)
        torch.cuda.synchronize(dev)
        graph_act, graph_post = torch.cuda.CUDAGraph(), torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph_act):
            self._out_act = self._act()
        with torch.cuda.graph(graph_post, pool=graph_act.pool()):
            self._out_post = self._post()
        self._graphs = (graph_act, graph_post)
