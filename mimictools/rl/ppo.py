"""MimicKit's PPO update: critic epochs, then actor epochs, on one rollout.

As in xbpeng/MimicKit ``mimickit/learning/ppo_agent.py`` (``_build_train_data``, ``_update_model``,
``_compute_actor_loss``/``_compute_critic_loss``) and ``mp_optimizer.py``:

- Returns/advantages from `mimictools.rl.returns` with the critic and normalizer *before* the
  update; advantages are normalized with their mean and std (std floored at 1e-5) and clipped to
  ``[-norm_adv_clip, norm_adv_clip]``.
- Minibatch sizes are multiples of the number of envs: ``ceil(actor_batch_size * num_envs)``
  samples (``actor_batch_size: 4`` with 4096 envs = 16384 samples out of 32 * 4096 per iteration,
  i.e. 8 minibatches per epoch); ``ceil(num_samples / batch)`` minibatches per epoch, times
  ``*_epochs``. The critic is updated first (MSE to the TD(lambda) returns), then the actor.
- Actor loss: ``-mean(min(A * ratio, A * clip(ratio, 1 - eps, 1 + eps)))``, plus
  ``action_bound_weight * mean(sum_dims(min(mu + 1, 0)^2 + max(mu - 1, 0)^2))`` on the mean action
  ``mu`` in normalized units (bounds [-1, 1] = the env's [low, high]), minus
  ``action_entropy_weight * entropy`` and plus ``action_reg_weight * mean(sum_dims(mu^2))`` when
  those weights are non-zero. ``Actor_Loss`` in the stats is this total, ``Loss`` = critic + actor.
- Optimizers: ``SGD`` = SGD with momentum 0.9; ``Adam`` = AdamW (MimicKit uses AdamW so that
  ``weight_decay`` is decoupled; with the default 0 it is Adam). Optional ``grad_clip`` on the norm.
- Adaptive actor learning rate (``desired_kl > 0``; not in MimicKit: rsl_rl's / mjlab's 'adaptive' schedule):
  the rollout policy's means are computed once per update (same weights and normalizer as the rollout); on
  every actor minibatch, before its optimizer step, ``kl = mean(KL(rollout || current))`` over the minibatch
  sets the rate of that step and the next ones: ``lr / 1.5`` if ``kl > 2 desired_kl``, ``lr * 1.5`` if
  ``0 < kl < desired_kl / 2``, within ``[min_learning_rate, max_learning_rate]`` (`adapt_learning_rate_`).
  The rate is a 0-d device tensor in the actor optimizer's param group, updated in place with ``torch.where``
  (no host sync: the CUDA graph of the update replays the schedule); fused Adam reads it on the device. The
  stats gain ``Actor_KL`` (mean over the minibatches) and ``Actor_LR`` (the rate after the update); the
  adapted rate is saved in the checkpoint and a resumed run continues from it. The critic keeps its rate.
  ``Actor_KL`` is logged without ``desired_kl`` too (one more actor forward pass over the batch per update), so
  a fixed-rate run shows the per-minibatch KL its steps make: what ``desired_kl`` would have to allow.

A non-finite value raises `TrainingDivergedError` naming the quantity; values are checked once per
update (one device sync), before anything is saved.

Across ranks (``across_ranks``, `mimictools.rl.distributed`): each rank updates on its own rollout with
minibatches of ``ceil(batch_size * its num_envs)`` samples; every minibatch step averages the gradients over
all ranks (one flattened all-reduce, before gradient clipping), so the step is the one a single process would
take on the union of the ranks' minibatches; advantages are normalized with the mean and std over all ranks;
the reported statistics are averaged over ranks (a non-finite value on one rank stops them all). Collectives
stay out of CUDA graphs: the distributed update runs eagerly (the rollout steps are still captured).
"""

from __future__ import annotations

import gc
import inspect
import math
from typing import Any, Callable, Dict, Iterable, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

from mimictools.config.schema import AgentConfig, OptimizerConfig
from mimictools.errors import ConfigError, TrainingDivergedError
from mimictools.rl import distributed
from mimictools.rl.networks import Critic, GaussianActor
from mimictools.rl.normalizer import Normalizer
from mimictools.rl.returns import compute_returns_and_advantages
from mimictools.rl.storage import RolloutStorage, minibatches_of

__all__ = [
    "KL_LR_FACTOR",
    "PPO",
    "action_bound_loss",
    "adapt_learning_rate_",
    "build_optimizer",
    "clipped_surrogate_loss",
    "gaussian_kl",
    "minibatch_size",
    "normalize_advantages",
]

ADV_STD_MIN = 1e-5  # MimicKit's floor on the advantage std
KL_LR_FACTOR = 1.5  # rsl_rl's factor of the adaptive learning rate
_CHECK_NAMES = ("critic values V(obs)", "critic values V(next_obs)", "TD(lambda) returns", "advantages")


def minibatch_size(multiple_of_num_envs: float, num_envs: int) -> int:
    """MimicKit's minibatch size: ``ceil(multiple * num_envs)`` samples."""
    return max(1, int(math.ceil(multiple_of_num_envs * num_envs)))


def build_optimizer(
    params: Iterable[nn.Parameter], cfg: OptimizerConfig, lr: Optional[Tensor] = None
) -> torch.optim.Optimizer:
    """SGD (momentum 0.9) or AdamW, as MimicKit's ``MPOptimizer``; the fused CUDA kernels when the
    parameters are on a GPU (same update, one launch instead of one per tensor).

    Args:
        lr: a 0-d tensor on the parameters' device to use as the (adaptive) learning rate instead of
            ``cfg.learning_rate``; Adam only (fused Adam reads it on the device).
    """
    params = [p for p in params if p.requires_grad]
    on_gpu = bool(params) and all(p.is_cuda for p in params)
    if lr is not None:
        if cfg.type != "Adam":
            raise ConfigError(
                f"a tensor (adaptive) learning rate needs optimizer type 'Adam', not {cfg.type!r}"
            )
        kw = _fused_if(torch.optim.AdamW, on_gpu)
        return torch.optim.AdamW(params, lr=lr, weight_decay=cfg.weight_decay, **kw)
    if cfg.type == "SGD":
        kw = _fused_if(torch.optim.SGD, on_gpu)
        return torch.optim.SGD(
            params, lr=cfg.learning_rate, momentum=0.9, weight_decay=cfg.weight_decay, **kw
        )
    if cfg.type == "Adam":
        kw = _fused_if(torch.optim.AdamW, on_gpu)
        return torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay, **kw)
    raise ConfigError(f"optimizer type {cfg.type!r}: must be 'SGD' or 'Adam'")


def _fused_if(optimizer_cls: type, on_gpu: bool) -> Dict[str, bool]:
    """``{"fused": True}`` on a GPU when this torch's optimizer has the option (SGD since torch 2.3)."""
    return {"fused": True} if on_gpu and "fused" in inspect.signature(optimizer_cls).parameters else {}


def normalize_advantages(
    adv: Tensor, clip: float, moments: Optional[Callable[[Tensor], Tuple[Tensor, Tensor]]] = None
) -> Tuple[Tensor, Tensor, Tensor]:
    """``clip((adv - mean) / max(std, 1e-5))`` over all samples; ``moments(adv) -> (mean, std)`` replaces the
    local mean and population std (`mimictools.rl.distributed.mean_std`: over all ranks).

    Returns:
        (normalized advantages Shape like `adv`, mean, std) with mean/std 0-d tensors.
    """
    if moments is not None:
        mean, std = moments(adv)
    else:
        mean = adv.mean()
        std = adv.std(unbiased=False) if adv.numel() > 1 else torch.zeros_like(mean)
    norm = (adv - mean) / torch.clamp_min(std, ADV_STD_MIN)
    return torch.clamp(norm, -clip, clip), mean, std


def clipped_surrogate_loss(
    log_probs: Tensor, old_log_probs: Tensor, advantages: Tensor, clip_ratio: float
) -> Tuple[Tensor, Tensor, Tensor]:
    """PPO clipped surrogate, all inputs Shape (B,).

    Returns:
        (loss = -mean(min(A r, A clip(r))), clip fraction = mean(|r - 1| > eps), mean ratio r).
    """
    ratio = torch.exp(log_probs - old_log_probs)
    surr = torch.minimum(
        advantages * ratio, advantages * torch.clamp(ratio, 1.0 - clip_ratio, 1.0 + clip_ratio)
    )
    clip_frac = (torch.abs(ratio - 1.0) > clip_ratio).to(ratio.dtype).mean()
    return -surr.mean(), clip_frac.detach(), ratio.mean().detach()


def gaussian_kl(old_mean: Tensor, new_mean: Tensor, log_std: Tensor) -> Tensor:
    """KL(N(old_mean, std^2) || N(new_mean, std^2)) of diagonal Gaussians with the same std, summed over
    action dims: ``sum((old - new)^2 / (2 std^2))``, Shape (B,) for means Shape (B, A), log_std Shape (A,)."""
    diff = old_mean - new_mean
    return torch.sum(diff * diff * (0.5 * torch.exp(-2.0 * log_std)), dim=-1)


def adapt_learning_rate_(lr: Tensor, kl: Tensor, desired_kl: float, min_lr: float, max_lr: float) -> Tensor:
    """rsl_rl's adaptive schedule, in place on the 0-d tensor ``lr`` (no host sync): ``lr / 1.5`` if
    ``kl > 2 desired_kl``, ``lr * 1.5`` if ``0 < kl < desired_kl / 2``, else unchanged; clamped to
    ``[min_lr, max_lr]``. A non-finite ``kl`` leaves ``lr`` unchanged. Returns ``lr``."""
    down = torch.clamp(lr / KL_LR_FACTOR, min_lr, max_lr)
    up = torch.clamp(lr * KL_LR_FACTOR, min_lr, max_lr)
    rise = (kl < 0.5 * desired_kl) & (kl > 0)
    with torch.no_grad():
        lr.copy_(torch.where(kl > 2.0 * desired_kl, down, torch.where(rise, up, lr)))
    return lr


def action_bound_loss(norm_mean: Tensor) -> Tensor:
    """Squared violation of [-1, 1] by the normalized mean action, summed over dims: Shape (B,)."""
    below = torch.clamp_max(norm_mean + 1.0, 0.0)
    above = torch.clamp_min(norm_mean - 1.0, 0.0)
    return torch.sum(below * below + above * above, dim=-1)


class PPO:
    """The PPO update for one actor/critic pair.

    Args:
        actor, critic: networks (on the env device).
        obs_normalizer: normalizer of raw observations (not updated here).
        cfg: agent config.
        num_envs: envs per rollout (minibatch sizes are multiples of it).
        succ_value, fail_value: terminal values of SUCC/FAIL steps (`returns.terminal_value`).
        capture: on a CUDA device, replay the whole update (returns, advantages, every minibatch step
            of both optimizers, the stats) as one CUDA graph from the second update on: ~150 kernel
            launches per minibatch step become one replay per update. The graph reads the rollout
            storage, normalizer and parameters in place; only the permutations are copied in. It is
            recaptured after `load_state_dict`. If capture fails, ``capture_error`` says why and the
            updates run eagerly (same code). Ignored on the CPU and with ``across_ranks``.
        across_ranks: the update of one rank of a process group (module docstring): gradients averaged over
            ranks at every minibatch step, advantages normalized over all ranks, statistics averaged.

    The update is written as tensor ops with one host sync at the end (`_read_report`): the
    non-finite checks run after the update, so a diverged update still raises before anything is
    saved, but the in-memory networks then hold the diverged values.
    """

    def __init__(
        self,
        actor: GaussianActor,
        critic: Critic,
        obs_normalizer: Normalizer,
        cfg: AgentConfig,
        num_envs: int,
        succ_value: float = 0.0,
        fail_value: float = 0.0,
        capture: bool = False,
        across_ranks: bool = False,
    ) -> None:
        self.actor = actor
        self.critic = critic
        self.obs_normalizer = obs_normalizer
        self.cfg = cfg
        self.num_envs = int(num_envs)
        self.succ_value = float(succ_value)
        self.fail_value = float(fail_value)
        self.across_ranks = bool(across_ranks)
        on_cuda = torch.device(next(actor.parameters()).device).type == "cuda"
        self.capture = bool(capture) and on_cuda and not self.across_ranks  # collectives stay out of graphs
        self.capture_error: Optional[str] = None
        """Why the update graph could not be captured (updates then run eagerly), or None."""
        self._eager_updates = 0
        self._graph: Any = None
        self._graph_perms: Optional[Tensor] = None
        self._graph_report: Optional[Tensor] = None
        self._graph_storage: Optional[RolloutStorage] = None
        self._actor_keys = ["Actor_Loss", "Clip_Frac", "Imp_Ratio", "Action_Bound_Loss", "Actor_KL"]
        if cfg.action_entropy_weight != 0:
            self._actor_keys.append("Action_Entropy")
        if cfg.action_reg_weight != 0:
            self._actor_keys.append("Action_Reg_Loss")
        self.actor_lr: Optional[Tensor] = None
        """The adaptive actor learning rate, a 0-d float32 tensor on the actor's device (None when off)."""
        if cfg.desired_kl > 0:
            device = next(actor.parameters()).device
            self.actor_lr = torch.tensor(float(cfg.actor_optimizer.learning_rate), device=device)
        self.actor_optimizer = build_optimizer(actor.parameters(), cfg.actor_optimizer, lr=self.actor_lr)
        self.critic_optimizer = build_optimizer(critic.parameters(), cfg.critic_optimizer)
        samples = cfg.steps_per_iter * self.num_envs
        self.actor_batch = minibatch_size(cfg.actor_batch_size, self.num_envs)
        self.critic_batch = minibatch_size(cfg.critic_batch_size, self.num_envs)
        for key, batch in (("actor_batch_size", self.actor_batch), ("critic_batch_size", self.critic_batch)):
            if batch > samples:
                raise ConfigError(
                    f"{key} = {getattr(cfg, key)} x {self.num_envs} envs = {batch} samples per minibatch, more "
                    f"than the {samples} samples of an iteration (steps_per_iter x num_envs)"
                )

    # ------------------------------------------------------------------ critic evaluation

    def _values(self, norm_obs: Tensor) -> Tensor:
        return self._chunked(self.critic, norm_obs)

    def _chunked(self, net: nn.Module, norm_obs: Tensor) -> Tensor:
        """``net`` over the rollout in chunks of ``critic_eval_batch_size`` samples (0 = all at once)."""
        chunk = self.cfg.critic_eval_batch_size
        if chunk <= 0 or norm_obs.shape[0] <= chunk:
            return net(norm_obs)
        return torch.cat([net(norm_obs[i : i + chunk]) for i in range(0, norm_obs.shape[0], chunk)])

    # ------------------------------------------------------------------------ the update

    def update(self, storage: RolloutStorage) -> Dict[str, float]:
        """One PPO update on a full rollout.

        With ``capture`` (CUDA only) the first update runs eagerly (it creates the optimizer state) and
        the second captures the whole update as one CUDA graph; later updates replay it with fresh
        minibatch permutations (see `capture` in the class docstring).

        Returns:
            Scalar stats: Loss, Critic_Loss, Actor_Loss, Clip_Frac, Imp_Ratio, Action_Bound_Loss, Actor_KL,
            (Action_Entropy, Action_Reg_Loss when their weights are non-zero),
            Adv_Mean, Adv_Std (and Actor_LR, the adapted rate after the update, with ``desired_kl``).

        Raises:
            TrainingDivergedError: a value, return, advantage, loss or parameter is NaN/inf.
        """
        if not storage.full:
            raise ValueError(f"rollout has {storage.step}/{storage.num_steps} steps; PPO needs a full one")
        perms = self._draw_permutations(storage.num_samples, storage.device)
        if self.capture and self._graph is None and self._eager_updates > 0:
            self._try_capture(storage)
        if self._graph is not None and self._graph_storage is storage:
            assert self._graph_perms is not None and self._graph_report is not None
            self._graph_perms.copy_(perms)
            self._graph.replay()
            report = self._graph_report
        else:
            report = self._warm_up(storage, perms) if self.capture else self._update_tensors(storage, perms)
            self._eager_updates += 1
        if self.across_ranks:
            report = distributed.sum_across(report) / torch.distributed.get_world_size()
        return self._read_report(report)

    def _draw_permutations(self, num_samples: int, device: torch.device) -> Tensor:
        """One random permutation per epoch, critic epochs first: Shape (critic_epochs + actor_epochs,
        num_samples), drawn from the global torch RNG in the order ``iter_minibatches`` would draw them."""
        epochs = self.cfg.critic_epochs + self.cfg.actor_epochs
        if epochs == 0:
            return torch.empty((0, num_samples), dtype=torch.long, device=device)
        return torch.stack([torch.randperm(num_samples, device=device) for _ in range(epochs)])

    def _update_tensors(self, storage: RolloutStorage, perms: Tensor) -> Tensor:
        """The update as tensor ops only (no host sync: capturable). Returns the report vector
        ``[checks (4), Critic_Loss, actor stats (self._actor_keys), Adv_Mean, Adv_Std, actor param sum,
        critic param sum (, actor lr with desired_kl)]`` that `_read_report` turns into numbers."""
        cfg = self.cfg
        t, n = storage.num_steps, storage.num_envs
        with torch.no_grad():
            norm_obs = self.obs_normalizer.normalize(storage.flat("obs"))
            norm_next_obs = self.obs_normalizer.normalize(storage.flat("next_obs"))
            values = self._values(norm_obs).reshape(t, n)
            next_values = self._values(norm_next_obs).reshape(t, n)
            returns, adv = compute_returns_and_advantages(
                storage.rewards,
                values,
                next_values,
                storage.dones,
                cfg.discount,
                cfg.td_lambda,
                succ_value=self.succ_value,
                fail_value=self.fail_value,
            )
            moments = distributed.mean_std if self.across_ranks else None
            norm_adv, adv_mean, adv_std = normalize_advantages(adv.reshape(-1), cfg.norm_adv_clip, moments)
        checks = [values.sum(), next_values.sum(), returns.sum(), adv_std]
        critic_epochs = cfg.critic_epochs
        critic_loss = self._update_critic(norm_obs, returns.reshape(-1), perms[:critic_epochs])
        with torch.no_grad():  # the rollout policy's means: same weights and normalizer as the rollout
            old_mean = self._chunked(self.actor, norm_obs)
        actor_stats = self._update_actor(
            norm_obs,
            storage.flat("actions"),
            storage.flat("log_probs"),
            norm_adv,
            perms[critic_epochs:],
            old_mean,
        )
        with torch.no_grad():
            param_sums = [
                sum(p.detach().sum() for p in self.actor.parameters()),
                sum(p.detach().sum() for p in self.critic.parameters()),
            ]
            parts = checks + [critic_loss] + [actor_stats[k] for k in self._actor_keys]
            parts += [adv_mean, adv_std] + param_sums
            if self.actor_lr is not None:
                parts.append(self.actor_lr.clone())
            return torch.stack([x.detach().float().reshape(()) for x in parts])

    def _read_report(self, report: Tensor) -> Dict[str, float]:
        """Numbers of a report vector (the update's one device sync); raises on the first non-finite one."""
        numbers = report.tolist()
        names = ["Critic_Loss"] + self._actor_keys
        k = len(_CHECK_NAMES)
        stats = dict(zip(names, numbers[k : k + len(names)]))
        adv_mean, adv_std, p_actor, p_critic = numbers[k + len(names) : k + len(names) + 4]
        _raise_if_nonfinite_numbers(
            list(zip(_CHECK_NAMES, numbers[:k]))
            + list(stats.items())
            + [("actor parameters", p_actor), ("critic parameters", p_critic)]
        )
        out = {"Loss": stats["Critic_Loss"] + stats["Actor_Loss"]}
        out.update(stats)
        out["Adv_Mean"], out["Adv_Std"] = adv_mean, adv_std
        if self.actor_lr is not None:
            out["Actor_LR"] = numbers[-1]
        return out

    def _step(
        self, optimizer: torch.optim.Optimizer, loss: Tensor, params: Sequence[nn.Parameter], clip: float
    ) -> None:
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.across_ranks:
            distributed.average_gradients(params)
        if clip > 0:
            torch.nn.utils.clip_grad_norm_(params, clip)
        optimizer.step()

    def _update_critic(self, norm_obs: Tensor, returns: Tensor, perms: Tensor) -> Tensor:
        cfg = self.cfg
        params = [p for p in self.critic.parameters() if p.requires_grad]
        total = torch.zeros((), device=norm_obs.device)
        steps = 0
        for perm in perms:
            for mb in minibatches_of({"obs": norm_obs, "ret": returns}, perm, self.critic_batch):
                loss = torch.mean(torch.square(mb["ret"] - self.critic(mb["obs"])))
                self._step(self.critic_optimizer, loss, params, cfg.critic_optimizer.grad_clip)
                total = total + loss.detach()
                steps += 1
        return total / max(steps, 1)

    def _update_actor(
        self,
        norm_obs: Tensor,
        actions: Tensor,
        old_log_probs: Tensor,
        norm_adv: Tensor,
        perms: Tensor,
        old_mean: Tensor,
    ) -> Dict[str, Tensor]:
        """Actor epochs. ``old_mean``: the rollout policy's means, Shape like ``actions``: every minibatch's
        KL(rollout || current) before its step is logged (``Actor_KL``) and, with ``desired_kl``, sets the adaptive
        learning rate (module docstring)."""
        cfg = self.cfg
        params = [p for p in self.actor.parameters() if p.requires_grad]
        keys = self._actor_keys
        sums = {k: torch.zeros((), device=norm_obs.device) for k in keys}
        steps = 0
        data = {"obs": norm_obs, "a": actions, "logp": old_log_probs, "adv": norm_adv, "mu": old_mean}
        for perm in perms:
            for mb in minibatches_of(data, perm, self.actor_batch):
                mean = self.actor(mb["obs"])
                logp = self.actor.log_prob(mean, mb["a"])
                loss, clip_frac, imp_ratio = clipped_surrogate_loss(
                    logp, mb["logp"], mb["adv"], cfg.ppo_clip_ratio
                )
                bound = action_bound_loss(mean).mean()
                if cfg.action_bound_weight != 0:
                    loss = loss + cfg.action_bound_weight * bound
                parts = {"Clip_Frac": clip_frac, "Imp_Ratio": imp_ratio, "Action_Bound_Loss": bound.detach()}
                if cfg.action_entropy_weight != 0:
                    ent = self.actor.entropy()
                    loss = loss - cfg.action_entropy_weight * ent
                    parts["Action_Entropy"] = ent.detach()
                if cfg.action_reg_weight != 0:
                    reg = torch.sum(mean * mean, dim=-1).mean()
                    loss = loss + cfg.action_reg_weight * reg
                    parts["Action_Reg_Loss"] = reg.detach()
                parts["Actor_Loss"] = loss.detach()
                parts["Actor_KL"] = self._minibatch_kl(mb["mu"], mean.detach())
                self._step(self.actor_optimizer, loss, params, cfg.actor_optimizer.grad_clip)
                for k in keys:
                    sums[k] = sums[k] + parts[k]
                steps += 1
        return {k: v / max(steps, 1) for k, v in sums.items()}

    def _minibatch_kl(self, old_mean: Tensor, new_mean: Tensor) -> Tensor:
        """Mean KL(rollout || current) of one minibatch. With ``desired_kl`` it is averaged over ranks when
        distributed (so every rank keeps the same rate) and sets the adaptive actor rate in place; without, it is
        only logged (this rank's). Returns the KL (0-d)."""
        with torch.no_grad():
            kl = gaussian_kl(old_mean, new_mean, self.actor.log_std).mean()
            if self.actor_lr is None:
                return kl
            if self.across_ranks:
                kl = distributed.sum_across(kl) / torch.distributed.get_world_size()
            cfg = self.cfg
            adapt_learning_rate_(
                self.actor_lr, kl, cfg.desired_kl, cfg.min_learning_rate, cfg.max_learning_rate
            )
        return kl

    # ------------------------------------------------------------------------ CUDA graph

    def _warm_up(self, storage: RolloutStorage, perms: Tensor) -> Tensor:
        """An eager update on a side stream (torch's recipe before a capture: lazy initialisation and
        the optimizer state happen outside the graph)."""
        dev = storage.device
        side = torch.cuda.Stream(device=dev)
        side.wait_stream(torch.cuda.current_stream(dev))
        with torch.cuda.stream(side):
            report = self._update_tensors(storage, perms)
        torch.cuda.current_stream(dev).wait_stream(side)
        return report

    def _try_capture(self, storage: RolloutStorage) -> None:
        """Capture `_update_tensors` on ``storage`` (its tensors are the graph's inputs, read in place)
        with a static permutation buffer. On failure ``capture_error`` says why; updates stay eager."""
        dev = storage.device
        gc.collect()  # see PolicyStep._capture: no CUDA frees by the collector during a capture
        torch.cuda.synchronize(dev)
        for opt in (self.actor_optimizer, self.critic_optimizer):
            for group in opt.param_groups:
                if "capturable" in group:
                    group["capturable"] = True  # Adam(W): fused, so its step counts are on the device
        perms = torch.zeros(
            (self.cfg.critic_epochs + self.cfg.actor_epochs, storage.num_samples),
            dtype=torch.long,
            device=dev,
        )
        graph = torch.cuda.CUDAGraph()
        try:
            with torch.cuda.graph(graph):
                report = self._update_tensors(storage, perms)
        except RuntimeError as exc:
            self.capture = False
            self.capture_error = f"{type(exc).__name__}: {exc}".splitlines()[0]
            for opt in (self.actor_optimizer, self.critic_optimizer):
                opt.zero_grad(set_to_none=True)
            return
        self._graph, self._graph_perms, self._graph_report = graph, perms, report
        self._graph_storage = storage

    def release(self) -> None:
        """Drop the captured update graph and its memory (later updates run eagerly)."""
        self._drop_graph()
        for opt in (self.actor_optimizer, self.critic_optimizer):
            opt.zero_grad(set_to_none=True)  # the gradients lived in the graph's memory pool
        self.capture = False

    def _drop_graph(self) -> None:
        self._graph = self._graph_perms = self._graph_report = self._graph_storage = None

    @property
    def captured(self) -> bool:
        return self._graph is not None

    # ---------------------------------------------------------------------------- state

    def state_dict(self) -> Dict[str, object]:
        """The optimizers' states, and the adapted actor rate (``actor_learning_rate``, a float) with
        ``desired_kl``."""
        state: Dict[str, object] = {
            "actor_optimizer": self.actor_optimizer.state_dict(),
            "critic_optimizer": self.critic_optimizer.state_dict(),
        }
        if self.actor_lr is not None:
            state["actor_learning_rate"] = float(self.actor_lr)
        return state

    def load_state_dict(self, state: Dict[str, object]) -> None:
        """Load optimizer state; a captured graph (which holds the old state tensors) is recaptured.

        Learning rates and weight decay come from the config, not the checkpoint (a resumed run can change
        them), except the adaptive actor rate: it continues from the checkpoint's ``actor_learning_rate``
        (clamped to the configured bounds), or starts at the configured rate when the checkpoint has none."""
        self.actor_optimizer.load_state_dict(state["actor_optimizer"])  # type: ignore[arg-type]
        self.critic_optimizer.load_state_dict(state["critic_optimizer"])  # type: ignore[arg-type]
        cfg = self.cfg
        for opt, ocfg in (
            (self.actor_optimizer, cfg.actor_optimizer),
            (self.critic_optimizer, cfg.critic_optimizer),
        ):
            for group in opt.param_groups:
                group["lr"] = ocfg.learning_rate
                group["weight_decay"] = ocfg.weight_decay
        if self.actor_lr is not None:
            saved = state.get("actor_learning_rate", cfg.actor_optimizer.learning_rate)
            rate = min(max(float(saved), cfg.min_learning_rate), cfg.max_learning_rate)  # type: ignore[arg-type]
            self.actor_lr.fill_(rate)  # in place: the same tensor the update (and its graph) reads
            for group in self.actor_optimizer.param_groups:
                group["lr"] = self.actor_lr
        if self._graph is not None:
            self._drop_graph()
            self._eager_updates = 0


def _raise_if_nonfinite_numbers(items: Sequence[Tuple[str, float]]) -> None:
    for name, x in items:
        if not math.isfinite(x):
            raise TrainingDivergedError(
                f"training diverged: {name} became {x} in the PPO update "
                "(try a lower learning rate; the last good checkpoint is kept)"
            )
