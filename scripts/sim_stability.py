"""Is a character stable at a physics rate? DeepMimic env on the MuJoCo CPU engine, untrained-policy noise.

    python scripts/sim_stability.py --freqs 240,120 [--motion CLIP --char XML --env-config YAML]

Defaults: MimicKit's humanoid, spinkick and DeepMimic env config from $MIMIC_SHARED (default ../shared).
For each physics rate: 64 envs from reference-state resets, 150 control steps (30 Hz) with PD targets at the
middle of the action range plus Gaussian noise of 0.05 of the half-range (the size of MimicKit's fixed
action std); prints the largest joint / root angular speed seen (rad/s) and MuJoCo's instability warnings.
A stable humanoid stays in tens of rad/s; an unstable integration reaches thousands.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import torch

from mimictools.run import build_env, resolve_run


def max_speed(motion: Path, char: Path, env_cfg: Path, agent_cfg: Path, sim_freq: int, steps: int) -> float:
    cfg, spec = resolve_run(
        motion=motion,
        char=char,
        engine="mujoco",
        num_envs=64,
        env_config=env_cfg,
        agent_config=agent_cfg,
        overrides=[f"engine.sim_freq={sim_freq}", "engine.control_freq=30"],
        num_threads=2,
    )
    env = build_env(cfg, spec)
    try:
        torch.manual_seed(0)
        env.reset()
        low = torch.as_tensor(env.action_low, dtype=torch.float32)
        high = torch.as_tensor(env.action_high, dtype=torch.float32)
        worst = 0.0
        for _ in range(steps):
            noise = 0.05 * 0.5 * (high - low) * torch.randn(env.num_envs, env.action_dim)
            _obs, _rew, done, _info = env.step(0.5 * (low + high) + noise)
            s = env.engine.get_state()
            worst = max(worst, float(s.dof_vel.abs().max()), float(s.root_ang_vel.abs().max()))
            ended = torch.nonzero(done != 0).flatten()
            if ended.numel():
                env.reset(ended)
        return worst
    finally:
        env.close()


def main() -> None:
    shared = Path(os.environ.get("MIMIC_SHARED", "../shared")) / "mimickit"
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--motion", type=Path, default=shared / "data/motions/humanoid/humanoid_spinkick.pkl")
    ap.add_argument("--char", type=Path, default=shared / "data/assets/humanoid/humanoid.xml")
    ap.add_argument("--env-config", type=Path, default=shared / "configs/deepmimic_humanoid_env.yaml")
    ap.add_argument("--agent-config", type=Path, default=shared / "configs/deepmimic_humanoid_ppo_agent.yaml")
    ap.add_argument("--freqs", default="240,120", help="physics rates (Hz), comma-separated")
    ap.add_argument("--steps", type=int, default=150, help="control steps per rate")
    args = ap.parse_args()
    torch.set_num_threads(1)
    for hz in [int(x) for x in args.freqs.split(",") if x]:
        speed = max_speed(args.motion, args.char, args.env_config, args.agent_config, hz, args.steps)
        verdict = "stable" if speed < 200.0 else "UNSTABLE"
        print(f"{hz} Hz physics: max joint/root angular speed {speed:.1f} rad/s -> {verdict}", flush=True)


if __name__ == "__main__":
    main()
