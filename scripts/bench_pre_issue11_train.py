"""Training samples/s of the code *before* issue 11 (commit 9fcfdeb), timed as its `mimic train` ran it.

Its `mimic bench --train` used two PPO-update threads, a configuration training never used; this times its
`Runner.iterate` with one torch thread, as `mimic train` set it, on the bundled demo (8, 32, 128 envs, 5 s each).
It uses that commit's API (``iterate(obs)``, ``env.reset()``) and does not run against later code. Usage::

    git worktree add /tmp/pre11 9fcfdeb && cd /tmp/pre11 && PYTHONPATH=$PWD python /path/to/this/script.py old

Prints ``old [(num_envs, samples/s), ...]``. Numbers: docs/performance.md, "One training path (issue 11)".
"""

import sys
import tempfile
import time

import torch

from mimictools.config.load import load_agent_config, load_env_config
from mimictools.config.schema import EngineConfig
from mimictools.paths import bundled_data_dir
from mimictools.rl.runner import Runner
from mimictools.tasks.deepmimic import build_env


def main() -> None:
    torch.set_num_threads(1)
    data = bundled_data_dir()
    out = []
    for n in (8, 32, 128):
        env = build_env(
            load_env_config(data / "configs/demo_env.yaml"),
            EngineConfig(engine_name="mujoco"),
            n,
            motion_path=data / "motions/demo_squat.pkl",
            char_path=data / "humanoid.xml",
        )
        agent = load_agent_config(data / "configs/demo_agent.yaml")
        with tempfile.TemporaryDirectory() as tmp:
            r = Runner(env, agent, tmp, seed=0, tensorboard=False, save_iter_checkpoints=False)
            obs, _ = r.iterate(env.reset())
            samples, t = 0, time.perf_counter()
            while time.perf_counter() - t < 5.0:
                obs, _ = r.iterate(obs)
                samples += r.storage.num_samples
            out.append((n, round(samples / (time.perf_counter() - t))))
        env.close()
    print(sys.argv[1], out)


if __name__ == "__main__":
    main()
