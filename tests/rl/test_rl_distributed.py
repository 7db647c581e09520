"""Distributed training (torch.distributed, gloo on the CPU, 2 ranks started as torchrun starts them).

The ranks are `dist_worker.py` subprocesses with RANK/WORLD_SIZE/MASTER_ADDR/MASTER_PORT set, so the tests run
what torchrun runs (`mimictools.rl.distributed.init_from_env`). One `mimic train --nproc 2` runs through the
real launcher (torch.distributed.run) in tests/cli/test_train_cli.py.

Default suite: the single-process parts (rank variables, seeds, torchrun's 1-process case, the stop signals).
`slow`: every 2-rank test (the update's gradient all-reduce, training and resume, a dead rank, SIGTERM on one
rank): each starts 2-4 processes that import torch, ~10-20 s each on a quiet 2-core machine.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from mimictools.rl import distributed
from mimictools.rl.checkpoint import load_checkpoint
from mimictools.rl.normalizer import Normalizer
from mimictools.rl.signals import Terminated, deferred_stop

sys.path.insert(0, str(Path(__file__).resolve().parent))
import dist_worker  # noqa: E402

WORKER = Path(__file__).resolve().parent / "dist_worker.py"
REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_ranks(args, world: int = 2, timeout_s: float = 30.0):
    """``world`` worker processes with torchrun's environment; returns the Popen objects (rank order).
    ``{rank}`` in an argument becomes the rank."""
    port = str(_free_port())
    procs = []
    for rank in range(world):
        env = dict(os.environ)
        env.update(
            RANK=str(rank),
            LOCAL_RANK=str(rank),
            WORLD_SIZE=str(world),
            LOCAL_WORLD_SIZE=str(world),
            MASTER_ADDR="127.0.0.1",
            MASTER_PORT=port,
            OMP_NUM_THREADS="1",
            TEST_DIST_TIMEOUT=str(timeout_s),
            PYTHONPATH=str(REPO) + os.pathsep + env.get("PYTHONPATH", ""),
        )
        procs.append(
            subprocess.Popen(
                [sys.executable, str(WORKER)] + [str(a).replace("{rank}", str(rank)) for a in args],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    return procs


def _assert_group_threads_ended(out: str) -> None:
    """The worker's "threads after teardown:" line names no gloo thread: the process group really ended in
    `distributed.teardown`. One kept alive (torch._dynamo imported after joining, torch 2.13) ran its threads
    into interpreter exit, where they aborted the process about 1 run in 500 (docs/testing.md)."""
    (line,) = [ln for ln in out.splitlines() if ln.startswith("threads after teardown:")]
    names = json.loads(line.split(":", 1)[1])
    assert not [n for n in names if "gloo" in n], names


def _wait_all(procs, timeout: float = 120.0):
    outs = []
    for p in procs:
        try:
            out, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            raise
        outs.append((p.returncode, out, err))
    return outs


# --------------------------------------------------------------------------------- single process


def test_one_process_means_no_process_group(monkeypatch):
    """WORLD_SIZE unset or 1 (torchrun --nproc-per-node 1): no process group, nothing changes."""
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE"):
        monkeypatch.delenv(k, raising=False)
    assert distributed.init_from_env("cpu") == distributed.RankInfo()
    monkeypatch.setenv("WORLD_SIZE", "1")
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("LOCAL_RANK", "0")
    info = distributed.init_from_env("cpu")
    assert info.world_size == 1 and info.is_writer and not info.distributed
    assert not torch.distributed.is_initialized() and not distributed.active()


def test_rank_variables_are_checked(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "2")
    with pytest.raises(distributed.DistributedError, match="RANK=2"):
        distributed.rank_info_from_env()
    monkeypatch.setenv("RANK", "x")
    with pytest.raises(distributed.DistributedError, match="RANK='x'"):
        distributed.rank_info_from_env()
    monkeypatch.setenv("RANK", "1")
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    with pytest.raises(distributed.DistributedError, match="MASTER_ADDR"):
        distributed.init_from_env("cpu")


def test_rank_seed_and_device():
    assert distributed.rank_seed(7, 0) == 7 and distributed.rank_seed(7, 3) == 10
    two = distributed.RankInfo(rank=3, local_rank=1, world_size=4, local_world_size=2)
    assert distributed.rank_device("cuda", two) == "cuda:1"
    assert distributed.rank_device("cpu", two) == "cpu"
    assert distributed.rank_device("cuda", distributed.RankInfo()) == "cuda"


def test_single_process_runs_are_bit_identical_under_torchrun_variables(
    tmp_path, monkeypatch, make_env, agent_config
):
    """``torchrun --nproc-per-node 1`` sets RANK=0/WORLD_SIZE=1: the run is bit-for-bit the plain one."""
    from mimictools.rl.runner import Runner

    def run(folder):
        distributed.init_from_env("cpu")
        r = Runner(make_env(8), agent_config(iters_per_output=2), folder, seed=5, tensorboard=False)
        r.train(max_samples=8 * 20 * 4)
        return r

    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE"):
        monkeypatch.delenv(k, raising=False)
    a = run(tmp_path / "a")
    monkeypatch.setenv("WORLD_SIZE", "1")
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("LOCAL_RANK", "0")
    b = run(tmp_path / "b")
    for x, y in zip(list(a.actor.state_dict().values()), list(b.actor.state_dict().values())):
        assert torch.equal(x, y)
    assert torch.equal(a.obs_normalizer._m2, b.obs_normalizer._m2)
    assert (tmp_path / "a" / "log.txt").read_text().split("\n")[1].split()[2:] == (
        tmp_path / "b" / "log.txt"
    ).read_text().split("\n")[1].split()[2:]  # all but Iteration, Wall_Time


def test_normalizer_single_process_update_is_unchanged():
    """The one-process normalizer keeps its running update (Chan's formula per `record`), as before."""
    torch.manual_seed(0)
    xs = [torch.randn(16, 3) * 5 + 2 for _ in range(4)]
    n = Normalizer(3)
    for x in xs:
        n.record(x)
    n.update()
    allx = torch.cat(xs).double()
    assert n.count == 64
    torch.testing.assert_close(n._mean, allx.mean(0), rtol=0, atol=1e-12)
    torch.testing.assert_close(n.std.double(), allx.std(0, unbiased=False), rtol=1e-6, atol=0)


def test_teardown_barrier_only_when_asked_and_the_group_is_left_even_if_it_fails(monkeypatch):
    """``teardown(barrier=True)`` (a clean exit) waits for the peers first; a barrier that fails (a peer already
    gone) still leaves the group; ``teardown()`` (after an error) never waits. One gloo rank posing as one of two."""
    dist, calls = torch.distributed, []

    def failing_barrier(*args, **kwargs):
        calls.append("barrier")
        raise RuntimeError("Connection closed by peer")

    for barrier, want in ((True, ["barrier"]), (False, [])):
        calls.clear()
        dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{_free_port()}", rank=0, world_size=1)
        with monkeypatch.context() as m:
            m.setattr(dist, "get_world_size", lambda *a, **k: 2)
            m.setattr(dist, "barrier", failing_barrier)
            distributed.teardown(barrier=barrier)
        assert calls == want and not dist.is_initialized()


def test_deferred_stop_records_then_raises_on_a_second_signal():
    with deferred_stop() as stop:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.05)
        assert stop.requested == "terminated"
        with pytest.raises(Terminated):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(1.0)
    with deferred_stop() as stop:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)
        assert stop.requested == "interrupted"


# ----------------------------------------------------------------------------------------- 2 ranks


@pytest.mark.slow
def test_two_rank_update_equals_the_one_process_update(tmp_path):
    """Same samples split over 2 ranks, minibatch k of the single process = the union of the ranks' minibatch k:
    the averaged-gradient steps give the parameters of one process with all samples (float tolerance), and the
    normalizer merged over ranks has the statistics of all samples."""
    procs = _start_ranks(["update", str(tmp_path / "rank{rank}.pt")])
    for code, out, err in _wait_all(procs):
        assert code == 0, err[-3000:]
        _assert_group_threads_ended(out)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in range(2)]

    cfg = dist_worker.update_agent()
    epochs = cfg.critic_epochs + cfg.actor_epochs
    n, t = dist_worker.ENVS_PER_RANK, dist_worker.T_STEPS
    local = [dist_worker.local_perms(r, epochs, t * n) for r in range(2)]

    def to_global(r, idx):  # rank r's sample (step, env) -> the single process's (step, r * n + env)
        return (idx // n) * (2 * n) + r * n + idx % n

    glob = []
    for e in range(epochs):
        batch = cfg.critic_batch_size if e < cfg.critic_epochs else cfg.actor_batch_size
        b = int(batch * n)
        parts = []
        for k in range(0, t * n, b):
            parts += [to_global(r, local[r][e, k : k + b]) for r in range(2)]
        glob.append(torch.cat(parts))
    single = dist_worker.run_update(1, 0, 2 * n, torch.stack(glob))

    for key in ("actor", "critic"):
        for name, ref in single[key].items():
            assert torch.equal(ranks[0][key][name], ranks[1][key][name]), name  # ranks stay identical
            torch.testing.assert_close(ranks[0][key][name], ref, rtol=1e-5, atol=1e-6, msg=f"{key}.{name}")
    assert ranks[0]["norm_count"] == single["norm_count"] == 2 * n * t
    torch.testing.assert_close(ranks[0]["norm_mean"], single["norm_mean"], rtol=0, atol=1e-12)
    torch.testing.assert_close(ranks[0]["norm_m2"], single["norm_m2"], rtol=1e-12, atol=1e-10)
    torch.testing.assert_close(ranks[0]["pub_std"], single["pub_std"])
    # advantages normalised over all ranks: the same mean/std as the single process's
    for k in ("Adv_Mean", "Adv_Std", "Critic_Loss"):
        assert ranks[0]["stats"][k] == pytest.approx(single["stats"][k], rel=1e-4, abs=1e-6), k
    # and the parameters moved: the comparison is not between two untouched networks
    torch.manual_seed(0)
    from mimictools.rl.networks import build_actor_critic

    actor0, _ = build_actor_critic(cfg.model, dist_worker.OBS_DIM, dist_worker.ACT_DIM)
    moved = [not torch.allclose(v, single["actor"][k]) for k, v in actor0.state_dict().items()]
    assert any(moved)


@pytest.mark.slow
def test_two_rank_training_keeps_ranks_identical_writes_once_and_resumes(tmp_path):
    """2 ranks train: rank 1 writes nothing, rank 0 one log and one set of checkpoints; the ranks' parameters,
    optimizer and normalizer state are bit-identical after several updates; a resumed job restores every rank."""
    out = tmp_path / "run"
    per_iter = 2 * 8 * 20  # ranks x envs x steps_per_iter
    procs = _start_ranks(["train", out, str(tmp_path / "r{rank}.pt"), 5 * per_iter, "split"])
    for code, stdout, err in _wait_all(procs):
        assert code == 0, err[-3000:]
        _assert_group_threads_ended(stdout)  # the training path (Runner.train) leaves no gloo thread behind
    res = [torch.load(tmp_path / f"r{r}.pt", weights_only=False) for r in range(2)]
    assert res[0]["iterations"] == 5 and res[0]["samples"] == 5 * per_iter
    for key in ("actor", "critic"):
        for name, v in res[0][key].items():
            assert torch.equal(v, res[1][key][name]), f"{key}.{name}"
    assert torch.equal(res[0]["norm_m2"], res[1]["norm_m2"])
    adam0, adam1 = res[0]["optim"]["actor_optimizer"]["state"], res[1]["optim"]["actor_optimizer"]["state"]
    assert all(torch.equal(adam0[i]["exp_avg_sq"], adam1[i]["exp_avg_sq"]) for i in adam0)
    assert not torch.equal(res[0]["rng"], res[1]["rng"])  # seeds offset by rank: the ranks' envs differ
    assert [p.name for p in (out / "rank1").iterdir()] == []  # rank 1 wrote nothing
    names = {p.name for p in out.iterdir() if p.suffix == ".pt"}
    outputs = {"iter_000000.pt", "iter_000003.pt", "iter_000004.pt", "latest.pt"}
    assert outputs <= names <= outputs | {"best.pt"}
    rows = [ln.split() for ln in (out / "log.txt").read_text().splitlines()[1:]]
    assert [int(r[0]) for r in rows] == [0, 3, 4]
    ck = load_checkpoint(out / "latest.pt")
    assert len(ck["rank_rng"]) == 2 and ck["samples"] == 5 * per_iter

    # resume: both ranks load rank 0's latest.pt (same folder now) and go on
    procs = _start_ranks(["train", out, str(tmp_path / "s{rank}.pt"), 8 * per_iter, "resume"])
    for code, _out, err in _wait_all(procs):
        assert code == 0, err[-3000:]
    res2 = [torch.load(tmp_path / f"s{r}.pt", weights_only=False) for r in range(2)]
    assert res2[0]["iterations"] == 8 and res2[1]["samples"] == 8 * per_iter
    for name, v in res2[0]["actor"].items():
        assert torch.equal(v, res2[1]["actor"][name]), name
    rows = [ln.split() for ln in (out / "log.txt").read_text().splitlines()[1:]]
    assert [int(r[0]) for r in rows] == [0, 3, 4, 6, 7]


@pytest.mark.slow
def test_a_dead_rank_stops_the_other_with_an_error_and_latest_intact(tmp_path):
    """Rank 1 dies after iteration 4: rank 0 exits non-zero within bounded time (gloo sees the closed connection;
    the collective timeout bounds a hang), after saving latest.pt of iteration 4 (its first collective of
    iteration 5 failed), without the other rank's RNG state."""
    out = tmp_path / "run"
    procs = _start_ranks(["train", out, str(tmp_path / "r{rank}.pt"), 10**9, "die_at=4"], timeout_s=20.0)
    start = time.monotonic()
    (code0, _o0, err0), (code1, _o1, _e1) = _wait_all(procs, timeout=120.0)
    elapsed = time.monotonic() - start
    assert code1 == 3
    assert code0 != 0, err0[-2000:]
    assert "DistributedError" in err0 or "another rank died" in err0, err0[-2000:]
    assert elapsed < 100.0  # bounded: not a hang (the collective timeout is 20 s here)
    ck = load_checkpoint(out / "latest.pt")
    assert ck["iteration"] == 4 and ck["samples"] == 5 * 2 * 8 * 20 and "rank_rng" not in ck
    assert not (tmp_path / "r0.pt").exists()


@pytest.mark.slow
def test_sigterm_on_one_rank_stops_both_with_latest_saved(tmp_path):
    """SIGTERM to rank 1 alone (as `kill` would): the ranks agree at the end of the iteration, both stop with
    "terminated", exit 0, and latest.pt holds that iteration."""
    out = tmp_path / "run"
    procs = _start_ranks(["train", out, str(tmp_path / "r{rank}.pt"), 10**9, "sigterm_at=4"])
    for code, _out, err in _wait_all(procs):
        assert code == 0, err[-3000:]
    res = [torch.load(tmp_path / f"r{r}.pt", weights_only=False) for r in range(2)]
    # rank 1 signals itself during iteration 4's progress call: the request is agreed on after iteration 5
    assert res[0]["stop_reason"] == res[1]["stop_reason"] == "terminated"
    assert res[0]["iterations"] == res[1]["iterations"] == 6
    ck = load_checkpoint(out / "latest.pt")
    assert ck["iteration"] == 5 and len(ck["rank_rng"]) == 2
    for name, v in ck["actor"].items():
        assert torch.equal(v, res[0]["actor"][name]), name
