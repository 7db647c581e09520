"""Is a character stable at a physics rate? `mimictools.app.stability.probe_stability` at several rates.

    python scripts/sim_stability.py --freqs 240,120 [--motion CLIP --char XML --env-config YAML]

Defaults: MimicKit's humanoid, spinkick and DeepMimic env config from $MIMIC_SHARED (default ../shared);
64 envs and 150 control steps (5 s) per rate, more than `mimic train`'s 16-env check. Prints the largest
joint / root angular speed seen (rad/s) per rate. A stable humanoid stays in tens of rad/s.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import torch

from mimictools.app.run import resolve_run
from mimictools.app.stability import probe_stability


def main() -> None:
    shared = Path(os.environ.get("MIMIC_SHARED", "../shared")) / "mimickit"
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--motion", type=Path, default=shared / "data/motions/humanoid/humanoid_spinkick.pkl")
    ap.add_argument("--char", type=Path, default=shared / "data/assets/humanoid/humanoid.xml")
    ap.add_argument("--env-config", type=Path, default=shared / "configs/deepmimic_humanoid_env.yaml")
    ap.add_argument("--agent-config", type=Path, default=shared / "configs/deepmimic_humanoid_ppo_agent.yaml")
    ap.add_argument("--freqs", default="240,120", help="physics rates (Hz), comma-separated")
    ap.add_argument("--num-envs", type=int, default=64)
    ap.add_argument("--steps", type=int, default=150, help="control steps per rate (30 Hz)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    for hz in [int(x) for x in args.freqs.split(",") if x]:
        cfg, spec = resolve_run(
            motion=args.motion,
            char=args.char,
            env_config=args.env_config,
            agent_config=args.agent_config,
            overrides=[f"engine.sim_freq={hz}", "engine.control_freq=30"],
        )
        probe = probe_stability(
            cfg.env, cfg.engine, spec.motion_file, spec.char_file, num_envs=args.num_envs, steps=args.steps
        )
        print(probe.message(), flush=True)


if __name__ == "__main__":
    main()
