"""One rank of the distributed tests (tests/rl/test_rl_distributed.py starts it as torchrun would: RANK,
LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT in the environment; gloo on the CPU).

    python dist_worker.py update <result.pt>
        PPO update of rank r on its half of `update_data()`'s envs (normalizer recorded first); saves the result.
    python dist_worker.py train <out_dir> <result.pt> <max_samples> [resume] [split] [die_at=K] [sigterm_at=K]
        Runner.train on the toy env in <out_dir> (split: rank r > 0 in <out_dir>/rank<r>, to show it writes nothing);
        die_at=K: rank 1 exits with code 3 after iteration K; sigterm_at=K: rank 1 sends itself SIGTERM there.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import sys
from pathlib import Path

import torch

from mimictools.config.schema import OptimizerConfig
from mimictools.rl import distributed


def _rl_conftest():
    """tests/rl/conftest.py as a module of its own name (``conftest`` may be another folder's under pytest)."""
    name = "mimictools_tests_rl_conftest"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).resolve().parent / "conftest.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


PointMassEnv = _rl_conftest().PointMassEnv
toy_agent_config = _rl_conftest().toy_agent_config

T_STEPS, ENVS_PER_RANK, OBS_DIM, ACT_DIM = 8, 4, 3, 2


def update_agent():
    """SGD on both networks (Adam's first steps divide by |g|: a near-zero gradient's sign would decide the
    step, so float round-off in the all-reduce could flip it), gradient clipping on the actor."""
    return toy_agent_config(
        steps_per_iter=T_STEPS,
        actor_batch_size=2.0,  # 8 samples per rank per minibatch, 4 minibatches per epoch
        critic_batch_size=4.0,
        actor_epochs=2,
        critic_epochs=2,
        actor_optimizer=OptimizerConfig(type="SGD", learning_rate=0.05, grad_clip=0.5),
        critic_optimizer=OptimizerConfig(type="SGD", learning_rate=0.02),
    )


def update_data(num_envs: int):
    """A fixed rollout of ``num_envs`` envs: (obs, actions, log_probs, rewards, next_obs, dones), each Shape (T, N, ...)."""
    g = torch.Generator().manual_seed(1234)
    t, n = T_STEPS, num_envs
    obs = torch.randn(t, n, OBS_DIM, generator=g) * 2.0 + 1.0
    actions = torch.randn(t, n, ACT_DIM, generator=g) * 0.3
    logp = torch.randn(t, n, generator=g) * 0.1 - 1.0
    rewards = torch.rand(t, n, generator=g)
    next_obs = torch.randn(t, n, OBS_DIM, generator=g) * 2.0 + 1.0
    dones = (torch.rand(t, n, generator=g) < 0.1).to(torch.long) * 2  # some FAIL (2) ends
    return obs, actions, logp, rewards, next_obs, dones


def local_perms(rank: int, epochs: int, num_samples: int) -> torch.Tensor:
    """Rank ``rank``'s minibatch permutations, Shape (epochs, num_samples)."""
    g = torch.Generator().manual_seed(100 + rank)
    return torch.stack([torch.randperm(num_samples, generator=g) for _ in range(epochs)])


def run_update(world: int, rank: int, num_envs: int, perms: torch.Tensor):
    """The normalizer + PPO update of one rank (or of one process with every env when ``world == 1``)."""
    from mimictools.rl.networks import build_actor_critic
    from mimictools.rl.normalizer import Normalizer
    from mimictools.rl.ppo import PPO
    from mimictools.rl.storage import RolloutStorage

    cfg = update_agent()
    torch.manual_seed(0)
    actor, critic = build_actor_critic(cfg.model, OBS_DIM, ACT_DIM)
    across = distributed.active()
    if across:
        distributed.broadcast_parameters([actor, critic])
    norm = Normalizer(OBS_DIM, across_ranks=across)
    data = update_data(num_envs * world if across else num_envs)
    lo, hi = (rank * num_envs, (rank + 1) * num_envs) if across else (0, num_envs)
    storage = RolloutStorage(T_STEPS, num_envs, OBS_DIM, ACT_DIM)
    for i in range(T_STEPS):
        obs, a, lp, r, nxt, d = (x[i, lo:hi] for x in data)
        norm.record(obs)
        storage.add(obs, a, lp, r, nxt, d)
    norm.update()
    ppo = PPO(actor, critic, norm, cfg, num_envs, across_ranks=across)
    ppo._draw_permutations = lambda num_samples, device: perms  # the test fixes the minibatches
    stats = ppo.update(storage)
    return {
        "actor": actor.state_dict(),
        "critic": critic.state_dict(),
        "norm_mean": norm._mean.clone(),
        "norm_m2": norm._m2.clone(),
        "norm_count": norm.count,
        "pub_mean": norm.mean.clone(),
        "pub_std": norm.std.clone(),
        "stats": stats,
    }


def main() -> None:
    mode = sys.argv[1]
    ranks = distributed.init_from_env("cpu", timeout_s=float(os.environ.get("TEST_DIST_TIMEOUT", "30")))
    torch.set_num_threads(1)
    finished = False
    try:
        if mode == "update":
            cfg = update_agent()
            perms = local_perms(ranks.rank, cfg.critic_epochs + cfg.actor_epochs, T_STEPS * ENVS_PER_RANK)
            torch.save(run_update(ranks.world_size, ranks.rank, ENVS_PER_RANK, perms), sys.argv[2])
        elif mode == "train":
            _train(ranks, Path(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5:])
        else:
            raise SystemExit(f"unknown mode {mode}")
        finished = True
    finally:
        distributed.teardown(barrier=finished)  # as `mimic train` leaves the group
    print("threads after teardown:", json.dumps(live_threads()), flush=True)


def live_threads():
    """This process's OS thread names (Linux; [] elsewhere). While a gloo group runs they include its
    'gloo_tcp_loop' and 'pt_gloo_runloop' threads; after `distributed.teardown` they must be gone."""
    task = Path("/proc/self/task")
    if not task.is_dir():
        return []
    names = []
    for t in task.iterdir():
        try:
            names.append((t / "comm").read_text().strip())
        except OSError:  # a thread that ended meanwhile
            pass
    return names


def _train(ranks, out_dir: Path, result: str, max_samples: int, flags) -> None:
    from mimictools.rl.runner import Runner

    opts = dict(f.split("=") for f in flags if "=" in f)
    die_at, sigterm_at = int(opts.get("die_at", -1)), int(opts.get("sigterm_at", -1))
    cfg = toy_agent_config(iters_per_output=3, test_episodes=8)
    # "split": rank r > 0 gets its own folder, to show that it writes nothing there
    folder = out_dir / f"rank{ranks.rank}" if ranks.rank > 0 and "split" in flags else out_dir
    runner = Runner(PointMassEnv(8), cfg, folder, seed=3, tensorboard=True)

    def progress(report) -> None:
        if ranks.rank == 1 and report.iteration == die_at:
            os._exit(3)
        if ranks.rank == 1 and report.iteration == sigterm_at:
            os.kill(os.getpid(), signal.SIGTERM)

    res = runner.train(max_samples=max_samples, resume="resume" in flags, progress=progress)
    torch.save(
        {
            "actor": runner.actor.state_dict(),
            "critic": runner.critic.state_dict(),
            "norm_mean": runner.obs_normalizer._mean,
            "norm_m2": runner.obs_normalizer._m2,
            "optim": runner.ppo.state_dict(),
            "iterations": res.iterations,
            "samples": res.samples,
            "stop_reason": res.stop_reason,
            "rng": torch.get_rng_state(),
        },
        result,
    )


if __name__ == "__main__":
    main()
