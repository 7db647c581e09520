"""Checkpoints: round trip with weights_only, corrupt/missing files, RNG state, policy loading."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from mimictools.errors import CheckpointError
from mimictools.rl.checkpoint import (
    capture_rng_state,
    load_checkpoint,
    load_policy,
    restore_rng_state,
    save_checkpoint,
)
from mimictools.rl.runner import Runner


@pytest.fixture
def trained(tmp_path, make_env, agent_config):
    env = make_env(8)
    runner = Runner(
        env, agent_config(steps_per_iter=8, iters_per_output=1), tmp_path / "run", seed=0, tensorboard=False
    )
    runner.train(max_samples=64)
    return runner


def test_round_trip_restores_everything(trained, make_env, agent_config, tmp_path):
    state = load_checkpoint(trained.latest_path)  # weights_only=True inside
    assert state["format"] == "mimictools.ppo" and state["iteration"] == 0 and state["samples"] == 64
    assert state["agent_config"]["model"]["actor_net"] == "fc_2layers_64units"
    other = Runner(make_env(8), agent_config(steps_per_iter=8, iters_per_output=1), tmp_path / "b", seed=123)
    other.load(trained.latest_path)
    for a, b in zip(trained.actor.state_dict().values(), other.actor.state_dict().values()):
        assert torch.equal(a, b)
    for a, b in zip(trained.critic.state_dict().values(), other.critic.state_dict().values()):
        assert torch.equal(a, b)
    assert torch.equal(trained.obs_normalizer.mean, other.obs_normalizer.mean)
    assert other.samples == 64 and other.iteration == 0
    opt_a = trained.ppo.actor_optimizer.state_dict()["state"]
    opt_b = other.ppo.actor_optimizer.state_dict()["state"]
    assert all(torch.equal(opt_a[k]["exp_avg"], opt_b[k]["exp_avg"]) for k in opt_a)


def test_no_temp_files_left(trained):
    names = sorted(p.name for p in trained.out_dir.iterdir() if p.is_file())
    assert names == ["best.pt", "iter_000000.pt", "latest.pt", "log.txt"]


def test_missing_and_corrupt_files_raise_checkpoint_error(trained, tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "nope.pt")
    data = trained.latest_path.read_bytes()
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(truncated)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"\x00not a checkpoint" * 10)
    with pytest.raises(CheckpointError):
        load_checkpoint(garbage)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(2)}, foreign)
    with pytest.raises(CheckpointError, match="not a mimictools"):
        load_checkpoint(foreign)
    newer = tmp_path / "newer.pt"
    save_checkpoint(newer, {"version": 99})
    with pytest.raises(CheckpointError, match="newer"):
        load_checkpoint(newer)


def test_rng_state_round_trip():
    random.seed(1)
    np.random.seed(1)
    torch.manual_seed(1)
    torch.rand(3)
    np.random.randn()  # leaves a cached gaussian in numpy's legacy state
    state = capture_rng_state()
    want = (torch.rand(4), np.random.randn(4), random.random())
    torch.rand(10)
    np.random.rand(10)
    random.random()
    restore_rng_state(state)
    got = (torch.rand(4), np.random.randn(4), random.random())
    assert torch.equal(want[0], got[0]) and np.array_equal(want[1], got[1]) and want[2] == got[2]


def test_load_policy_acts_like_the_runner(trained):
    policy = load_policy(trained.latest_path)
    obs = torch.randn(6, 2)
    with torch.no_grad():
        expect = trained.actions.to_env(trained.actor(trained.obs_normalizer.normalize(obs)))
    torch.testing.assert_close(policy(obs), expect)
    assert policy.action_low.tolist() == [-1.5] and policy.action_high.tolist() == [2.5]


def test_policy_only_checkpoint_loads_for_eval_but_not_for_resume(tmp_path, make_env, agent_config):
    """A checkpoint stripped of critic and optimizer state (how trained policies are shipped) evaluates,
    and resuming from it is refused with a message naming what is missing."""
    import torch

    from mimictools.errors import CheckpointError
    from mimictools.rl.checkpoint import load_checkpoint, load_policy
    from mimictools.rl.runner import Runner

    runner = Runner(
        make_env(4),
        agent_config(steps_per_iter=8, iters_per_output=1, test_episodes=2),
        tmp_path / "run",
        seed=0,
        tensorboard=False,
    )
    runner.train(max_samples=4 * 8)
    state = torch.load(str(tmp_path / "run" / "latest.pt"), weights_only=True)
    for k in ("critic", "optimizers"):
        state.pop(k)
    stripped = tmp_path / "policy.pt"
    torch.save(state, str(stripped))
    policy = load_policy(stripped)
    assert policy(torch.zeros(3, int(state["obs_dim"]))).shape == (3, int(state["action_dim"]))
    with pytest.raises(CheckpointError, match="critic, optimizers"):
        load_checkpoint(stripped)
