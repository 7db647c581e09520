"""The collectives on the training device: a process group of one rank (gloo on the CPU; NCCL on a GPU, which
the 2-rank CPU tests cannot reach), the helpers of `mimictools.rl.distributed`, and PPO/Normalizer with
``across_ranks`` against the single-process versions on the same data."""

from __future__ import annotations

import copy
import socket

import pytest
import torch

from mimictools.config.schema import OptimizerConfig
from mimictools.rl import distributed
from mimictools.rl.networks import build_actor_critic
from mimictools.rl.normalizer import Normalizer
from mimictools.rl.ppo import PPO
from mimictools.rl.storage import RolloutStorage

DEVICES = [
    pytest.param("cpu", id="cpu-gloo"),
    pytest.param(
        "cuda",
        id="cuda-nccl",
        marks=[
            pytest.mark.gpu,
            pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
        ],
    ),
]


@pytest.fixture
def one_rank_group(request):
    device = request.param
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    torch.distributed.init_process_group(
        "nccl" if device == "cuda" else "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=0, world_size=1
    )
    try:
        yield torch.device(device)
    finally:
        distributed.teardown()


@pytest.mark.parametrize("one_rank_group", DEVICES, indirect=True)
def test_helpers_on_the_device(one_rank_group):
    dev = one_rank_group
    lin = torch.nn.Linear(3, 2).to(dev)
    distributed.broadcast_parameters([lin])
    lin(torch.ones(4, 3, device=dev)).sum().backward()
    grads = [p.grad.clone() for p in lin.parameters()]
    distributed.average_gradients(list(lin.parameters()))
    assert all(torch.equal(g, p.grad) for g, p in zip(grads, lin.parameters()))
    x = torch.randn(100, device=dev)
    mean, std = distributed.mean_std(x)
    assert mean.device.type == dev.type
    torch.testing.assert_close(mean, x.mean(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(std, x.std(unbiased=False), rtol=1e-5, atol=1e-6)
    m = torch.randn(3, dtype=torch.float64, device=dev)
    count, mean2, m2 = distributed.merge_moments(5, m, m.abs())
    assert count == 5 and torch.equal(mean2, m) and torch.equal(m2, m.abs())
    assert distributed.any_rank([True, False], dev) == [True, False]
    assert distributed.broadcast_object("runs/x") == "runs/x"
    assert distributed.all_gather_objects({"a": 1}) == [{"a": 1}]
    assert torch.equal(distributed.sum_across(x), x)


@pytest.mark.parametrize("one_rank_group", DEVICES, indirect=True)
def test_ppo_and_normalizer_across_one_rank_equal_the_plain_ones(one_rank_group, agent_config):
    """With one rank the distributed update is the plain one (float tolerance: the advantage moments are
    summed in float64 there), and it runs eagerly: no CUDA graph holds a collective."""
    dev = one_rank_group
    opt = OptimizerConfig(type="SGD", learning_rate=0.05, grad_clip=0.5)
    cfg = agent_config(steps_per_iter=8, actor_optimizer=opt, critic_optimizer=opt)
    torch.manual_seed(0)
    actor, critic = build_actor_critic(cfg.model, 2, 1)
    actor, critic = actor.to(dev), critic.to(dev)
    a2, c2 = copy.deepcopy(actor), copy.deepcopy(critic)
    norms = [Normalizer(2, dev, across_ranks=True), Normalizer(2, dev)]
    st = RolloutStorage(8, 16, 2, 1, dev)
    g = torch.Generator().manual_seed(1)
    for _ in range(8):
        obs = (torch.randn(16, 2, generator=g) * 3 + 1).to(dev)
        for n in norms:
            n.record(obs)
        st.add(
            obs,
            torch.randn(16, 1, generator=g).to(dev),
            torch.randn(16, generator=g).to(dev) * 0.1 - 1,
            torch.rand(16, generator=g).to(dev),
            (torch.randn(16, 2, generator=g) * 3 + 1).to(dev),
            torch.zeros(16, dtype=torch.long).to(dev),
        )
    for n in norms:
        n.update()
    torch.testing.assert_close(norms[0].mean, norms[1].mean)
    torch.testing.assert_close(norms[0].std, norms[1].std)
    across = PPO(actor, critic, norms[0], cfg, 16, capture=True, across_ranks=True)
    plain = PPO(a2, c2, norms[1], cfg, 16, capture=False)
    assert not across.capture  # collectives stay out of CUDA graphs
    perms = torch.stack([torch.randperm(128) for _ in range(cfg.critic_epochs + cfg.actor_epochs)]).to(dev)
    for p in (across, plain):
        p._draw_permutations = lambda num_samples, device: perms
    for _ in range(2):
        sa, sp = across.update(st), plain.update(st)
    assert sa["Adv_Std"] == pytest.approx(sp["Adv_Std"], rel=1e-5)
    # the advantage mean/std differ in their last float32 bits (float64 sums vs torch's float32 std); 2 updates of
    # ~30 SGD-momentum steps carry that to ~3e-6 (measured on the CPU): well below any real difference
    for x, y in zip(actor.parameters(), a2.parameters()):
        torch.testing.assert_close(x, y, rtol=1e-4, atol=1e-5)
