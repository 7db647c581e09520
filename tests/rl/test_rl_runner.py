"""The training loop on the toy point-mass env: learning, logs, resume equivalence, Ctrl-C, NaN."""

from __future__ import annotations

import math

import pytest
import torch

from mimictools.errors import MimicToolsError, TrainingDivergedError
from mimictools.eval.logs import read_log
from mimictools.rl.checkpoint import load_checkpoint
from mimictools.rl.runner import Runner


@pytest.mark.slow  # 50 iterations (~6 CPU-s); the default run trains the same Runner in the tests below
def test_ppo_learns_the_toy_task(tmp_path, make_env, agent_config):
    """The one learning test: the trained policy's test return clearly beats the untrained one.

    Untrained, the mean action is the range midpoint (+0.5 m/s^2), so the masses drift off x = 0:
    return ~20 of a possible 40. PPO reaches ~35 within 50 iterations (a few seconds on one CPU core).
    """
    env = make_env(64)
    runner = Runner(env, agent_config(), tmp_path, seed=0, tensorboard=False, save_iter_checkpoints=False)
    untrained = runner.test(64)
    reports = []
    result = runner.train(max_samples=64 * 20 * 50, progress=reports.append)
    assert result.stop_reason == "max_samples" and result.iterations == 50
    assert result.last_test is not None
    assert result.last_test.mean_return > untrained.mean_return + 8.0, (untrained, result.last_test)
    assert result.last_test.info["Pos_Err"] < 0.5 * untrained.info["Pos_Err"]
    assert len(reports) == 50 and reports[-1].samples == 64 * 20 * 50 and reports[-1].is_output


def test_log_columns_tensorboard_and_checkpoints(tmp_path, make_env, agent_config):
    cfg = agent_config(steps_per_iter=8, iters_per_output=2, test_episodes=4)
    runner = Runner(make_env(8), cfg, tmp_path, seed=0, config_record={"note": "x"})
    runner.train(max_samples=8 * 8 * 5)  # iterations 0..4; outputs at 0, 2, 4
    log = read_log(tmp_path / "log.txt")
    assert log["Iteration"].tolist() == [0, 2, 4]
    for col in (
        "Wall_Time",
        "Samples",
        "Test_Return",
        "Test_Episode_Length",
        "Test_Episodes",
        "Train_Return",
        "Train_Episode_Length",
        "Train_Episodes",
        "Loss",
        "Critic_Loss",
        "Actor_Loss",
        "Clip_Frac",
        "Imp_Ratio",
        "Action_Bound_Loss",
        "Actor_KL",  # logged without desired_kl too
        "Adv_Mean",
        "Adv_Std",
        "Pos_Err",  # from env.observe info["pos_err"]
        "Exp_Prob",
    ):
        assert col in log, col
    assert log["Samples"].tolist() == [64, 192, 320]
    assert (log["Test_Episodes"] >= 8).all()  # at least one test episode per env, as MimicKit
    assert "\r" not in (tmp_path / "log.txt").read_text()
    assert sorted(p.name for p in tmp_path.glob("iter_*.pt")) == [
        "iter_000000.pt",
        "iter_000002.pt",
        "iter_000004.pt",
    ]
    assert (tmp_path / "best.pt").is_file()
    assert any((tmp_path / "tensorboard").iterdir())
    assert load_checkpoint(tmp_path / "latest.pt")["config"] == {"note": "x"}
    with pytest.raises(MimicToolsError, match="already holds"):
        Runner(make_env(8), cfg, tmp_path, seed=0).train(max_samples=1000)


def _final_state(runner: Runner):
    return [t.clone() for t in runner.actor.state_dict().values()] + [
        t.clone() for t in runner.critic.state_dict().values()
    ]


@pytest.mark.parametrize("desired_kl", [0.0, 0.002])
def test_resume_reproduces_an_uninterrupted_run(tmp_path, make_env, agent_config, desired_kl):
    """Bit for bit; with an adaptive learning rate (desired_kl) the resumed run continues from the adapted
    rate, which the log shows (Actor_LR)."""
    cfg = agent_config(steps_per_iter=8, iters_per_output=2, test_episodes=8, desired_kl=desired_kl)
    per_iter = 8 * 8
    full = Runner(make_env(8), cfg, tmp_path / "full", seed=7, tensorboard=False)
    full.train(max_samples=per_iter * 7)  # iterations 0..6

    part = Runner(make_env(8), cfg, tmp_path / "part", seed=7, tensorboard=False)
    part.train(max_samples=per_iter * 5)  # stops after the output of iteration 4
    with open(tmp_path / "part" / "log.txt", "a") as f:  # a row written after the checkpoint, then a crash
        f.write("6" + " 0" * 18 + "\n")
    resumed = Runner(make_env(8), cfg, tmp_path / "part", seed=999, tensorboard=False)  # seed is overridden
    result = resumed.train(max_samples=per_iter * 7, resume=True)
    assert result.iterations == 7 and result.samples == per_iter * 7

    for a, b in zip(_final_state(full), _final_state(resumed)):
        assert torch.equal(a, b)
    log_full = read_log(tmp_path / "full" / "log.txt")
    log_part = read_log(tmp_path / "part" / "log.txt")
    assert log_full["Iteration"].tolist() == log_part["Iteration"].tolist() == [0, 2, 4, 6]
    for col in log_full:
        if col != "Wall_Time":
            assert log_full[col].tolist() == log_part[col].tolist(), col
    if desired_kl:
        rates = log_full["Actor_LR"].tolist()
        assert len(set(rates)) > 1 and rates[-1] == pytest.approx(float(resumed.ppo.actor_lr))
        assert float(full.ppo.actor_lr) == float(resumed.ppo.actor_lr)
    else:
        assert "Actor_LR" not in log_full


def test_ctrl_c_writes_a_checkpoint_and_returns(tmp_path, make_env, agent_config):
    cfg = agent_config(steps_per_iter=8, iters_per_output=100)

    def interrupt(report):
        if report.iteration == 2:
            raise KeyboardInterrupt

    runner = Runner(make_env(8), cfg, tmp_path, seed=0, tensorboard=False)
    result = runner.train(max_samples=10**9, progress=interrupt)
    assert result.stop_reason == "interrupted" and result.iterations == 3
    assert load_checkpoint(tmp_path / "latest.pt")["iteration"] == 2
    again = Runner(make_env(8), cfg, tmp_path, tensorboard=False).train(max_samples=8 * 8 * 5, resume=True)
    assert again.iterations == 5 and again.stop_reason == "max_samples"


def test_nan_reward_raises_and_keeps_the_last_good_checkpoint(tmp_path, make_env, agent_config):
    cfg = agent_config(steps_per_iter=8, iters_per_output=1, test_episodes=8)
    # rollout 0 (8 steps) + its test (one 10-step episode per env), then NaN 3 steps into rollout 1
    env = make_env(8, episode_steps=10, nan_after_steps=8 + 10 + 3)
    runner = Runner(env, cfg, tmp_path, seed=0, tensorboard=False)
    with pytest.raises(TrainingDivergedError, match=r"rewards \(env.observe\).*env 1"):
        runner.train(max_samples=10**6)
    assert load_checkpoint(tmp_path / "latest.pt")["iteration"] == 0


def test_max_minutes_stops_with_an_output(tmp_path, make_env, agent_config):
    runner = Runner(
        make_env(4), agent_config(steps_per_iter=8, iters_per_output=1000), tmp_path, tensorboard=False
    )
    result = runner.train(max_minutes=0.0)
    assert result.stop_reason == "max_minutes" and result.iterations == 1
    assert math.isfinite(result.best_test_return)
    assert read_log(tmp_path / "log.txt")["Iteration"].tolist() == [0]


def test_sigterm_saves_latest_and_a_resumed_run_goes_on(tmp_path, make_env, agent_config):
    """SIGTERM (what SLURM and ``timeout`` send) stops like Ctrl-C: latest.pt written, train() returns."""
    import os
    import signal

    cfg = agent_config(steps_per_iter=8, iters_per_output=100)

    def terminate(report):
        if report.iteration == 2:
            os.kill(os.getpid(), signal.SIGTERM)

    before = signal.getsignal(signal.SIGTERM)
    result = Runner(make_env(8), cfg, tmp_path, seed=0, tensorboard=False).train(
        max_samples=10**9, progress=terminate
    )
    assert result.stop_reason == "terminated" and result.iterations == 3
    assert load_checkpoint(tmp_path / "latest.pt")["iteration"] == 2
    assert signal.getsignal(signal.SIGTERM) == before  # the handler is the caller's again
    again = Runner(make_env(8), cfg, tmp_path, tensorboard=False).train(max_samples=8 * 8 * 5, resume=True)
    assert again.iterations == 5 and again.stop_reason == "max_samples"


def test_ctrl_c_during_an_outputs_test_episodes_loses_no_log_row(tmp_path, make_env, agent_config):
    """Interrupted while testing at output iteration 2: the resumed run first completes that output (its log
    row and iter_000002.pt), then goes on; the log has every output row once."""
    cfg = agent_config(steps_per_iter=8, iters_per_output=2, test_episodes=8)
    env = make_env(8, episode_steps=10)
    observe = env.observe
    calls = {"test_steps": 0}

    def observe_then_interrupt():
        out = observe()
        if env.test_mode:
            calls["test_steps"] += 1
            if calls["test_steps"] == 10 + 5:  # the second test (iteration 2), 5 steps in
                raise KeyboardInterrupt
        return out

    env.observe = observe_then_interrupt
    result = Runner(env, cfg, tmp_path, seed=0, tensorboard=False).train(max_samples=10**9)
    assert result.stop_reason == "interrupted" and result.iterations == 3
    state = load_checkpoint(tmp_path / "latest.pt")
    assert state["iteration"] == 2 and state["pending_output"] is not None
    assert read_log(tmp_path / "log.txt")["Iteration"].tolist() == [0]
    assert not (tmp_path / "iter_000002.pt").exists()

    again = Runner(make_env(8, episode_steps=10), cfg, tmp_path, tensorboard=False)
    result = again.train(max_samples=8 * 8 * 5, resume=True)
    assert result.stop_reason == "max_samples" and result.iterations == 5
    assert read_log(tmp_path / "log.txt")["Iteration"].tolist() == [0, 2, 4]
    assert (tmp_path / "iter_000002.pt").exists() and (tmp_path / "iter_000004.pt").exists()
    assert load_checkpoint(tmp_path / "latest.pt")["pending_output"] is None


@pytest.mark.parametrize("keep, expected", [(2, [6, 8]), (0, []), (-1, [0, 2, 4, 6, 8])])
def test_keep_checkpoints_keeps_the_newest(tmp_path, make_env, agent_config, keep, expected):
    """Outputs at iterations 0, 2, ..., 8: keep_checkpoints=2 leaves the last two iter_*.pt, 0 none, -1 all;
    latest.pt and best.pt always stay."""
    cfg = agent_config(steps_per_iter=8, iters_per_output=2, test_episodes=4, keep_checkpoints=keep)
    Runner(make_env(8), cfg, tmp_path, seed=0, tensorboard=False).train(max_samples=8 * 8 * 9)
    assert sorted(p.name for p in tmp_path.glob("iter_*.pt")) == [f"iter_{i:06d}.pt" for i in expected]
    assert (tmp_path / "latest.pt").is_file() and (tmp_path / "best.pt").is_file()
