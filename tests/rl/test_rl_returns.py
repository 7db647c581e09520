"""TD(lambda) returns with MimicKit's done flags, against values worked out by hand."""

from __future__ import annotations

import pytest
import torch

from mimictools.rl.returns import (
    bootstrap_next_values,
    compute_returns_and_advantages,
    td_lambda_returns,
    terminal_value,
)
from mimictools.tasks.env_api import DoneFlag

N, F, S, T = int(DoneFlag.NULL), int(DoneFlag.FAIL), int(DoneFlag.SUCC), int(DoneFlag.TIME)


def test_hand_worked_returns_for_each_done_flag():
    # gamma = 0.5, lambda = 0.5, r = 1 everywhere, V(next_obs) = 4 unless stated; succ_value = 10,
    # fail_value = 0. Recursion: G[3] = r + g V'[3];  G[t] = r + g((1 - l_t) V'[t] + l_t G[t+1]),
    # l_t = 0 at done steps.
    # env 0, no done:   G3 = 1 + .5*4 = 3
    #                   G2 = 1 + .5*(.5*4 + .5*3)      = 2.75
    #                   G1 = 1 + .5*(2 + .5*2.75)      = 2.6875
    #                   G0 = 1 + .5*(2 + .5*2.6875)    = 2.671875
    # env 1, FAIL at 1: V'[1] := 0;  G3 = 3, G2 = 2.75, G1 = 1 + .5*0 = 1
    #                   G0 = 1 + .5*(2 + .5*1)         = 2.25
    # env 2, SUCC at 2: V'[2] := 10; G3 = 3, G2 = 1 + .5*10 = 6
    #                   G1 = 1 + .5*(2 + .5*6)         = 3.5
    #                   G0 = 1 + .5*(2 + .5*3.5)       = 2.875
    # env 3, TIME at 0 with V'[0] = 8 (critic bootstrap, no trace into the next episode):
    #                   G3..G1 as env 0, G0 = 1 + .5*8 = 5
    # env 4, FAIL on the last step: G3 = 1 + .5*0 = 1
    #                   G2 = 1 + .5*(2 + .5*1)         = 2.25
    #                   G1 = 1 + .5*(2 + .5*2.25)      = 2.5625
    #                   G0 = 1 + .5*(2 + .5*2.5625)    = 2.640625
    rewards = torch.ones(4, 5, dtype=torch.float64)
    next_v = torch.full((4, 5), 4.0, dtype=torch.float64)
    next_v[0, 3] = 8.0
    dones = torch.tensor(
        [
            [N, N, N, T, N],
            [N, F, N, N, N],
            [N, N, S, N, N],
            [N, N, N, N, F],
        ]
    )
    values = torch.ones(4, 5, dtype=torch.float64)
    ret, adv = compute_returns_and_advantages(
        rewards, values, next_v, dones, discount=0.5, td_lambda=0.5, succ_value=10.0, fail_value=0.0
    )
    expected = torch.tensor(
        [
            [2.671875, 2.25, 2.875, 5.0, 2.640625],
            [2.6875, 1.0, 3.5, 2.6875, 2.5625],
            [2.75, 2.75, 6.0, 2.75, 2.25],
            [3.0, 3.0, 3.0, 3.0, 1.0],
        ],
        dtype=torch.float64,
    )
    torch.testing.assert_close(ret, expected, rtol=0, atol=1e-12)
    torch.testing.assert_close(adv, expected - 1.0, rtol=0, atol=1e-12)


def test_bootstrap_replaces_only_succ_and_fail():
    next_v = torch.tensor([[1.0, 2.0, 3.0, 4.0]])
    dones = torch.tensor([[N, F, S, T]])
    out = bootstrap_next_values(next_v, dones, succ_value=-7.0, fail_value=-9.0)
    assert out.tolist() == [[1.0, -9.0, -7.0, 4.0]]  # TIME keeps V(next_obs)


def test_terminal_value_is_reward_forever():
    # MimicKit: r / (1 - gamma); DeepMimic's fail and succ rewards are 0.
    assert terminal_value(0.0, 0.99) == 0.0
    assert terminal_value(1.0, 0.5) == pytest.approx(2.0)


def test_lambda_zero_is_one_step_td_and_lambda_one_is_monte_carlo():
    g = torch.Generator().manual_seed(0)
    r = torch.rand(6, 3, generator=g, dtype=torch.float64)
    v = torch.rand(6, 3, generator=g, dtype=torch.float64)
    d = torch.zeros(6, 3, dtype=torch.long)
    torch.testing.assert_close(td_lambda_returns(r, v, d, 0.9, 0.0), r + 0.9 * v)
    # lambda = 1 without dones: discounted reward sum + gamma^(T-t) V'[T-1]
    mc = td_lambda_returns(r, v, d, 0.9, 1.0)
    for t in range(6):
        want = sum(0.9**k * r[t + k] for k in range(6 - t)) + 0.9 ** (6 - t) * v[-1]
        torch.testing.assert_close(mc[t], want)


def test_shape_mismatch_raises():
    with pytest.raises(ValueError, match="same Shape"):
        td_lambda_returns(torch.zeros(3, 2), torch.zeros(3, 2), torch.zeros(2, 2, dtype=torch.long), 0.9, 0.9)
