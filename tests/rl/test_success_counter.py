"""Test_Success: the training log's count of test episodes that tracked the clip (hand-worked values)."""

from __future__ import annotations

import math

import torch

from mimictools.rl import results
from mimictools.rl.episodes import SuccessCounter
from mimictools.rl.logs import log_row
from mimictools.tasks.env_api import DoneFlag, episode_tracked

N, F, T = int(DoneFlag.NULL), int(DoneFlag.FAIL), int(DoneFlag.TIME)


def test_rule_is_mean_error_and_no_early_termination():
    err = torch.tensor([0.05, 0.075, 0.08, 0.01])
    early = torch.tensor([False, False, False, True])
    assert episode_tracked(err, early).tolist() == [True, True, False, False]
    assert episode_tracked(0.05, False) is True and episode_tracked(0.05, True) is False


def test_counter_judges_each_episode_on_its_own_mean():
    """env 0: errors 0.05, 0.09 -> mean 0.07, ends by time: success; then 0.2 -> ends by time: failure.
    env 1: errors 0.01, 0.01 -> ends by FAIL (early termination): failure.
    env 2: never ends: not counted. Rate = 1/3."""
    c = SuccessCounter(3, torch.device("cpu"))
    assert math.isnan(c.rate())
    c.update(torch.tensor([0.05, 0.01, 0.5]), torch.tensor([N, N, N]))
    c.update(torch.tensor([0.09, 0.01, 0.5]), torch.tensor([T, F, N]))
    c.update(torch.tensor([0.2, 0.0, 0.5]), torch.tensor([T, N, N]))
    assert c.rate() == 1.0 / 3.0


def test_log_row_has_test_success_column():
    row = log_row(
        0, 0.0, 10, results.TestResult(1.0, 2.0, 3, {"Body_Pos_Err": 0.1}, success_rate=0.25), (0, 0, 0), {}
    )
    assert row["Test_Success"] == 0.25
    assert "Test_Success" not in log_row(0, 0.0, 10, results.TestResult(1.0, 2.0, 3, {}), (0, 0, 0), {})
