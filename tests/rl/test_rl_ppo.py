"""Networks and the PPO update: MimicKit's init, losses, batch sizes, divergence errors."""

from __future__ import annotations

import math

import pytest
import torch

from mimictools.config.schema import ModelConfig, OptimizerConfig
from mimictools.errors import ConfigError, NotSupportedError, TrainingDivergedError
from mimictools.rl.networks import build_actor_critic
from mimictools.rl.normalizer import Normalizer
from mimictools.rl.ppo import (
    PPO,
    action_bound_loss,
    adapt_learning_rate_,
    build_optimizer,
    clipped_surrogate_loss,
    gaussian_kl,
    minibatch_size,
    normalize_advantages,
)
from mimictools.rl.storage import RolloutStorage


def test_mimickit_net_shapes_and_init():
    actor, critic = build_actor_critic(ModelConfig(), obs_dim=10, action_dim=4)  # fc_2layers_1024units
    widths = [m.out_features for m in actor.body if isinstance(m, torch.nn.Linear)]
    assert widths == [1024, 512]  # MimicKit's fc_2layers_1024units is 1024 then 512
    assert all(
        float(m.bias.detach().abs().max()) == 0.0 for m in actor.body if isinstance(m, torch.nn.Linear)
    )
    assert float(actor.mean_head.weight.detach().abs().max()) <= 0.01
    assert float(actor.mean_head.bias.detach().abs().max()) == 0
    torch.testing.assert_close(actor.std, torch.full((4,), 0.05))
    assert not any(p is actor.log_std for p in actor.parameters())  # FIXED std is not trained
    assert critic(torch.zeros(7, 10)).shape == (7,)
    three, _ = build_actor_critic(ModelConfig(actor_net="fc_3layers_1024units"), 3, 1)
    assert [m.out_features for m in three.body if isinstance(m, torch.nn.Linear)] == [1024, 1024, 512]
    with pytest.raises(NotSupportedError, match="cnn_3conv_1fc_0"):
        build_actor_critic(ModelConfig(actor_net="cnn_3conv_1fc_0"), 3, 1)


def test_log_prob_matches_torch_normal():
    actor, _ = build_actor_critic(ModelConfig(actor_net="fc_2layers_64units", action_std=0.3), 3, 2)
    mean = torch.randn(5, 2)
    a = torch.randn(5, 2)
    want = torch.distributions.Normal(mean, 0.3).log_prob(a).sum(-1)
    torch.testing.assert_close(actor.log_prob(mean, a), want)
    torch.testing.assert_close(actor.entropy(), torch.distributions.Normal(0.0, 0.3).entropy() * 2)


def test_action_bound_loss_by_hand():
    # violations outside [-1, 1] squared and summed over dims: (1.5-1)^2 + (-3+1)^2 = 0.25 + 4
    mu = torch.tensor([[1.5, -3.0, 0.2], [0.0, 1.0, -1.0]])
    assert action_bound_loss(mu).tolist() == [4.25, 0.0]


def test_clipped_surrogate_by_hand():
    # ratios e^0 = 1, e^ln1.5 = 1.5, e^ln0.5 = 0.5 with advantages 1, 1, -1 and eps = 0.2:
    # min(1*1, 1*1) = 1; min(1.5, 1.2) = 1.2; min(-0.5, -0.8) = -0.8 -> loss = -(1 + 1.2 - 0.8)/3
    logp = torch.log(torch.tensor([1.0, 1.5, 0.5]))
    loss, clip_frac, ratio = clipped_surrogate_loss(logp, torch.zeros(3), torch.tensor([1.0, 1.0, -1.0]), 0.2)
    assert loss.item() == pytest.approx(-1.4 / 3)
    assert clip_frac.item() == pytest.approx(2 / 3)
    assert ratio.item() == pytest.approx(1.0)


def test_advantage_normalization_and_clip():
    adv = torch.tensor([0.0, 0.0, 0.0, 100.0])  # mean 25, std 43.3 -> 100 maps to 1.732
    norm, mean, std = normalize_advantages(adv, clip=1.5)
    assert mean.item() == pytest.approx(25.0) and std.item() == pytest.approx(math.sqrt(1875.0))
    assert norm.tolist() == pytest.approx([-25 / math.sqrt(1875.0)] * 3 + [1.5])


def test_minibatch_size_is_a_multiple_of_num_envs():
    # MimicKit: ceil(actor_batch_size * num_envs); actor_batch_size 4 with 4096 envs = 16384 samples
    assert minibatch_size(4, 4096) == 16384
    assert minibatch_size(0.5, 3) == 2


def test_optimizers_as_mimickit():
    p = [torch.nn.Parameter(torch.zeros(2))]
    sgd = build_optimizer(p, OptimizerConfig(type="SGD", learning_rate=1e-4))
    assert isinstance(sgd, torch.optim.SGD) and sgd.param_groups[0]["momentum"] == 0.9
    assert isinstance(build_optimizer(p, OptimizerConfig(type="Adam", learning_rate=1e-4)), torch.optim.AdamW)


def _rollout(t: int, n: int, obs_dim: int = 3) -> RolloutStorage:
    st = RolloutStorage(t, n, obs_dim, 1)
    g = torch.Generator().manual_seed(1)
    for _ in range(t):
        st.add(
            torch.randn(n, obs_dim, generator=g),
            torch.randn(n, 1, generator=g),
            torch.zeros(n),
            torch.rand(n, generator=g),
            torch.randn(n, obs_dim, generator=g),
            torch.zeros(n, dtype=torch.int32),
        )
    return st


def test_update_stats_and_batch_size_check(agent_config):
    cfg = agent_config(steps_per_iter=4, actor_batch_size=2.0, critic_batch_size=1.0)
    actor, critic = build_actor_critic(cfg.model, 3, 1)
    ppo = PPO(actor, critic, Normalizer(3), cfg, num_envs=5)
    stats = ppo.update(_rollout(4, 5))
    assert list(stats) == [
        "Loss",
        "Critic_Loss",
        "Actor_Loss",
        "Clip_Frac",
        "Imp_Ratio",
        "Action_Bound_Loss",
        "Actor_KL",
        "Adv_Mean",
        "Adv_Std",
    ]
    assert all(math.isfinite(v) for v in stats.values())
    assert stats["Loss"] == pytest.approx(stats["Critic_Loss"] + stats["Actor_Loss"])
    with pytest.raises(ConfigError, match="actor_batch_size"):
        PPO(actor, critic, Normalizer(3), agent_config(steps_per_iter=4, actor_batch_size=8.0), num_envs=5)


def test_nan_critic_raises_diverged_naming_it(agent_config):
    cfg = agent_config(steps_per_iter=4)
    actor, critic = build_actor_critic(cfg.model, 3, 1)
    with torch.no_grad():
        critic.value_head.weight.fill_(float("nan"))
    ppo = PPO(actor, critic, Normalizer(3), cfg, num_envs=5)
    with pytest.raises(TrainingDivergedError, match="critic values"):
        ppo.update(_rollout(4, 5))


def test_update_permutations_are_iter_minibatches_epochs(agent_config):
    """The update draws one permutation per epoch (critic epochs first) from the global RNG, exactly
    as `iter_minibatches` would: the eager CPU results did not change when the update learned to run
    from a permutation buffer (the input a CUDA graph replays with)."""
    from mimictools.rl.storage import iter_minibatches

    cfg = agent_config(steps_per_iter=4, critic_epochs=2, actor_epochs=3)
    actor, critic = build_actor_critic(cfg.model, 3, 1)
    ppo = PPO(actor, critic, Normalizer(3), cfg, num_envs=5)
    torch.manual_seed(7)
    perms = ppo._draw_permutations(20, torch.device("cpu"))
    torch.manual_seed(7)
    ids = torch.arange(20)
    want = [torch.cat([mb["i"] for mb in iter_minibatches({"i": ids}, 6)]) for _ in range(5)]
    assert perms.shape == (5, 20)
    torch.testing.assert_close(perms, torch.stack(want))
    assert all(sorted(p.tolist()) == list(range(20)) for p in perms)


@pytest.mark.parametrize("optimizer", ["SGD", "Adam", "Adam+KL"])
def test_update_body_makes_no_host_syncs(agent_config, host_sync_spy, optimizer):
    """What the CUDA graph of the update replays (returns, advantages, every minibatch step of both
    optimizers, stats, the adaptive learning rate) holds no host transfer or sync: checked op by op on
    the CPU, after one update has made the optimizer state (as the capture does)."""
    adaptive = optimizer == "Adam+KL"
    opt = OptimizerConfig(type=optimizer.split("+")[0], learning_rate=1e-3, grad_clip=1.0)
    cfg = agent_config(
        steps_per_iter=4,
        actor_optimizer=opt,
        critic_optimizer=opt,
        action_entropy_weight=0.01,
        desired_kl=0.01 if adaptive else 0.0,
    )
    actor, critic = build_actor_critic(cfg.model, 3, 1)
    ppo = PPO(actor, critic, Normalizer(3), cfg, num_envs=5)
    if opt.type == "Adam":  # as on a GPU (`build_optimizer`): fused, step counts kept as tensors
        lr = ppo.actor_lr if adaptive else 1e-3
        ppo.actor_optimizer = torch.optim.AdamW(actor.parameters(), lr=lr, fused=True)
        ppo.critic_optimizer = torch.optim.AdamW(critic.parameters(), lr=1e-3, fused=True)
    st = _rollout(4, 5)
    ppo.update(st)
    perms = ppo._draw_permutations(st.num_samples, st.device)
    before = [p.detach().clone() for p in actor.parameters()]
    lr_before = None if ppo.actor_lr is None else ppo.actor_lr.clone()
    with host_sync_spy() as spy:
        report = ppo._update_tensors(st, perms)
    assert spy.bad == [], f"ops that a CUDA graph cannot capture: {sorted(set(spy.bad))}"
    # checks, critic loss, 6 actor stats (Action_Entropy; Actor_KL with or without desired_kl), adv mean/std,
    # param sums (+ actor lr)
    assert "Actor_KL" in ppo._actor_keys
    assert report.shape == (4 + 1 + 6 + 4 + (1 if adaptive else 0),)
    if adaptive:
        assert float(report[-1]) == float(ppo.actor_lr) != float(lr_before)  # the rate moved, in place
    assert any(not torch.equal(a, b.detach()) for a, b in zip(before, actor.parameters()))


def test_gaussian_kl_matches_torch():
    old, new = torch.randn(6, 3), torch.randn(6, 3)
    log_std = torch.log(torch.tensor([0.05, 0.2, 1.0]))
    p = torch.distributions.Normal(old, torch.exp(log_std))
    q = torch.distributions.Normal(new, torch.exp(log_std))
    torch.testing.assert_close(
        gaussian_kl(old, new, log_std), torch.distributions.kl_divergence(p, q).sum(-1)
    )


@pytest.mark.parametrize(
    "kl, want",
    [
        (0.05, 1e-3 / 1.5),  # > 2 x desired: falls
        (0.021, 1e-3 / 1.5),
        (0.02, 1e-3),  # the band [desired / 2, 2 desired] keeps it
        (0.005, 1e-3),
        (0.004, 1e-3 * 1.5),  # < desired / 2: rises
        (0.0, 1e-3),  # no change measured (rsl_rl: kl > 0 to rise)
        (float("nan"), 1e-3),
    ],
)
def test_adapt_learning_rate_rule(kl, want):
    lr = torch.tensor(1e-3)
    out = adapt_learning_rate_(lr, torch.tensor(kl), desired_kl=0.01, min_lr=1e-5, max_lr=1e-2)
    assert out is lr and float(lr) == pytest.approx(want, rel=1e-6)


def test_adapt_learning_rate_is_clamped():
    lr = torch.tensor(1.2e-5)
    adapt_learning_rate_(lr, torch.tensor(1.0), 0.01, 1e-5, 1e-2)
    assert float(lr) == pytest.approx(1e-5)
    lr = torch.tensor(9e-3)
    adapt_learning_rate_(lr, torch.tensor(1e-9), 0.01, 1e-5, 1e-2)
    assert float(lr) == pytest.approx(1e-2)


@pytest.mark.parametrize("start_lr, direction", [(1e-1, "falls"), (1e-6, "rises")])
def test_adaptive_lr_follows_the_kl_of_the_update(agent_config, start_lr, direction):
    """One actor epoch of 2 minibatches: a large first step (Adam at 1e-1, the upper bound, on a 64-unit actor,
    std 0.05) moves the policy far from the rollout's, the second minibatch measures a KL above 2 x desired
    and the rate falls; a tiny one (1e-6) barely moves it and the rate rises. The optimizer's param group
    holds the very tensor the update adapts."""
    from mimictools.config.schema import ModelConfig

    cfg = agent_config(
        steps_per_iter=8,
        model=ModelConfig(actor_net="fc_2layers_64units", critic_net="fc_2layers_64units", action_std=0.05),
        actor_optimizer=OptimizerConfig(type="Adam", learning_rate=start_lr),
        actor_epochs=1,
        actor_batch_size=4.0,
        desired_kl=0.01,
        min_learning_rate=1e-7,
        max_learning_rate=1e-1,
    )
    torch.manual_seed(0)
    actor, critic = build_actor_critic(cfg.model, 3, 1)
    ppo = PPO(actor, critic, Normalizer(3), cfg, num_envs=16)
    assert ppo.actor_optimizer.param_groups[0]["lr"] is ppo.actor_lr
    stats = ppo.update(_rollout(8, 16))
    assert stats["Actor_LR"] == pytest.approx(float(ppo.actor_lr))
    if direction == "falls":
        assert stats["Actor_KL"] > 0.01 and stats["Actor_LR"] == pytest.approx(start_lr / 1.5, rel=1e-6)
    else:
        assert 0 < stats["Actor_KL"] < 0.01 / 2 and stats["Actor_LR"] > start_lr
    plain = PPO(actor, critic, Normalizer(3), agent_config(steps_per_iter=8), num_envs=16)
    assert "Actor_LR" not in plain.update(_rollout(8, 16))  # off by default: MimicKit's columns


def test_adaptive_lr_state_round_trip(agent_config):
    """The adapted rate is saved with the optimizers and loaded into the same tensor (the one a captured
    update reads); a checkpoint without one starts at the configured rate."""
    cfg = agent_config(steps_per_iter=4, desired_kl=0.01)
    actor, critic = build_actor_critic(cfg.model, 3, 1)
    ppo = PPO(actor, critic, Normalizer(3), cfg, num_envs=5)
    ppo.actor_lr.fill_(3e-4)
    state = ppo.state_dict()
    assert state["actor_learning_rate"] == pytest.approx(3e-4)
    other = PPO(*build_actor_critic(cfg.model, 3, 1), Normalizer(3), cfg, num_envs=5)
    tensor = other.actor_lr
    other.load_state_dict(state)
    assert other.actor_lr is tensor and float(tensor) == pytest.approx(3e-4)
    assert other.actor_optimizer.param_groups[0]["lr"] is tensor
    del state["actor_learning_rate"]
    other.load_state_dict(state)
    assert float(tensor) == pytest.approx(cfg.actor_optimizer.learning_rate)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("optimizer", ["SGD", "Adam", "Adam+KL"])
def test_cuda_graphed_update_equals_eager_update(agent_config, optimizer):
    """The captured update (second update on) replays what the eager update computes: two PPOs from
    the same weights and rollouts, same permutations, full float32 matmuls. ``Adam+KL``: with the adaptive
    learning rate (a device tensor updated inside the graph), whose value must also follow the eager one."""
    import copy

    opt = OptimizerConfig(type=optimizer.split("+")[0], learning_rate=1e-3)
    kl = 0.002 if optimizer == "Adam+KL" else 0.0  # small: the rate moves in the first updates
    cfg = agent_config(steps_per_iter=8, actor_optimizer=opt, critic_optimizer=opt, desired_kl=kl)
    torch.manual_seed(0)
    actor, critic = build_actor_critic(cfg.model, 3, 1)
    actor, critic = actor.cuda(), critic.cuda()
    a2, c2 = copy.deepcopy(actor), copy.deepcopy(critic)
    graphed = PPO(actor, critic, Normalizer(3, "cuda"), cfg, num_envs=64, capture=True)
    eager = PPO(a2, c2, Normalizer(3, "cuda"), cfg, num_envs=64, capture=False)
    st = RolloutStorage(8, 64, 3, 1, "cuda")
    tf32 = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        for it in range(4):
            src = _rollout(8, 64)
            for name in ("obs", "next_obs", "actions", "log_probs", "rewards", "dones"):
                getattr(st, name).copy_(getattr(src, name))
            st.step = st.num_steps
            torch.manual_seed(100 + it)
            s_g = graphed.update(st)
            torch.manual_seed(100 + it)
            s_e = eager.update(st)
            assert s_g == pytest.approx(s_e, rel=1e-4, abs=1e-6)
        assert graphed.captured, graphed.capture_error
        if kl:
            rates = (float(graphed.actor_lr), float(eager.actor_lr))
            assert rates[0] == pytest.approx(rates[1], rel=1e-5) and rates[0] != 1e-3, rates
        for p, q in zip(
            list(actor.parameters()) + list(critic.parameters()),
            list(a2.parameters()) + list(c2.parameters()),
        ):
            torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-6)
    finally:
        torch.backends.cuda.matmul.allow_tf32 = tf32
