"""Rollout storage / minibatch coverage with identifiable data; normalizer against numpy."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mimictools.rl.normalizer import Normalizer
from mimictools.rl.storage import RolloutStorage, iter_minibatches, num_minibatches


def _filled_storage(t: int = 5, n: int = 3) -> RolloutStorage:
    st = RolloutStorage(t, n, obs_dim=2, action_dim=1)
    for step in range(t):
        ident = torch.arange(n, dtype=torch.float32) + step * n  # sample id = step * num_envs + env
        st.add(
            obs=torch.stack([ident, -ident], dim=-1),
            actions=ident[:, None],
            log_probs=ident,
            rewards=ident,
            next_obs=torch.stack([ident, ident], dim=-1),
            dones=torch.zeros(n, dtype=torch.int32),
        )
    return st


def test_storage_layout_and_full():
    st = _filled_storage()
    assert st.full and st.num_samples == 15
    assert st.obs.shape == (5, 3, 2) and st.dones.dtype == torch.long
    assert st.flat("rewards").tolist() == list(range(15))  # row = step * num_envs + env
    with pytest.raises(IndexError):
        st.add(st.obs[0], st.actions[0], st.log_probs[0], st.rewards[0], st.next_obs[0], st.dones[0])
    st.clear()
    assert st.step == 0 and not st.full


@pytest.mark.parametrize("batch", [1, 4, 5, 15, 16])
def test_every_sample_exactly_once_per_epoch(batch):
    st = _filled_storage()
    data = {"obs": st.flat("obs"), "ids": st.flat("rewards")}
    for epoch in range(3):
        seen = []
        sizes = []
        for mb in iter_minibatches(data, batch):
            # fields of one sample stay together
            assert torch.equal(mb["obs"][:, 0], mb["ids"]) and torch.equal(mb["obs"][:, 1], -mb["ids"])
            seen += mb["ids"].long().tolist()
            sizes.append(len(mb["ids"]))
        assert sorted(seen) == list(range(15)), f"epoch {epoch}"
        assert len(sizes) == num_minibatches(15, batch) == math.ceil(15 / batch)
        assert all(s == batch for s in sizes[:-1]) and 0 < sizes[-1] <= batch


def test_minibatch_permutation_is_seeded():
    st = _filled_storage()
    data = {"ids": st.flat("rewards")}
    a = [mb["ids"].tolist() for mb in iter_minibatches(data, 4, torch.Generator().manual_seed(3))]
    b = [mb["ids"].tolist() for mb in iter_minibatches(data, 4, torch.Generator().manual_seed(3))]
    c = [mb["ids"].tolist() for mb in iter_minibatches(data, 4, torch.Generator().manual_seed(4))]
    assert a == b and a != c


def test_normalizer_matches_numpy_over_batches():
    rng = np.random.default_rng(0)
    # large offset + varied scales: float64 accumulation must keep the small variances exact
    batches = [rng.normal(1000.0, [0.01, 1.0, 50.0], size=(int(n), 3)) for n in (7, 100, 1, 33)]
    norm = Normalizer(3)
    for b in batches:
        norm.record(torch.tensor(b, dtype=torch.float32).reshape(-1, 1, 3))  # any leading dims
    everything = np.concatenate(
        [np.asarray(torch.tensor(b, dtype=torch.float32), dtype=np.float64) for b in batches]
    )
    # not published until update()
    assert torch.equal(norm.mean, torch.zeros(3)) and torch.equal(norm.std, torch.ones(3))
    norm.update()
    np.testing.assert_allclose(norm.mean.numpy(), everything.mean(0), rtol=1e-6)
    np.testing.assert_allclose(norm.std.numpy(), everything.std(0), rtol=1e-4)  # float32 publication
    assert norm.count == len(everything)
    x = torch.tensor(everything[:5], dtype=torch.float32)
    want = np.clip((everything[:5] - everything.mean(0)) / everything.std(0), -10, 10)
    np.testing.assert_allclose(norm.normalize(x).numpy(), want, rtol=1e-3, atol=1e-3)
    assert norm.normalize(x).dtype == torch.float32


def test_normalizer_clip_min_std_and_freeze():
    norm = Normalizer(2, clip=3.0, min_std=0.5, max_samples=10)
    norm.record(torch.tensor([[1.0, 5.0]] * 10))  # dim 1 is constant -> std floored at min_std
    norm.update()
    assert norm.std.tolist() == [0.5, 0.5]
    assert norm.normalize(torch.tensor([[100.0, 5.0]])).tolist() == [[3.0, 0.0]]  # clipped
    assert norm.frozen
    norm.record(torch.full((4, 2), 1e6))  # ignored once max_samples were recorded
    norm.update()
    assert norm.count == 10 and norm.mean.tolist() == [1.0, 5.0]


def test_normalizer_state_dict_round_trip():
    a = Normalizer(4)
    a.record(torch.randn(50, 4) * 3 + 1)
    a.update()
    a.record(torch.randn(20, 4))  # recorded, not yet published
    b = Normalizer(4)
    b.load_state_dict(a.state_dict())
    x = torch.randn(8, 4)
    assert torch.equal(a.normalize(x), b.normalize(x))
    a.update()
    b.update()
    assert torch.equal(a.normalize(x), b.normalize(x)) and a.count == b.count == 70
    with pytest.raises(ValueError, match="dim"):
        Normalizer(3).load_state_dict(a.state_dict())
