"""Is a character stable at a physics rate? `mimictools.app.stability.probe_stability` at several rates.

    python scripts/sim_stability.py --freqs 240,120 [--implicit-pd false,true] [--motion CLIP --char XML
        --env-config YAML|none --agent-config YAML|none]

Defaults: MimicKit's humanoid, spinkick and DeepMimic env config from $MIMIC_SHARED (default ../shared);
64 envs and 150 control steps (5 s) per rate at 30 Hz control, more than `mimic train`'s 16-env check, and
no probing of higher rates. Prints the largest joint / root angular speed seen (rad/s) and MuJoCo's
instability resets per rate and PD law. A stable humanoid stays in tens of rad/s. ``none`` for a config
uses the bundled demo's, fitted to the character (for a robot such as the G1, whose bodies MimicKit's
humanoid env config does not name).
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
    ap.add_argument("--env-config", default=str(shared / "configs/deepmimic_humanoid_env.yaml"))
    ap.add_argument("--agent-config", default=str(shared / "configs/deepmimic_humanoid_ppo_agent.yaml"))
    ap.add_argument("--freqs", default="240,120", help="physics rates (Hz), comma-separated")
    ap.add_argument("--implicit-pd", default="false", help="engine.implicit_pd values, comma-separated")
    ap.add_argument("--num-envs", type=int, default=64)
    ap.add_argument("--steps", type=int, default=150, help="control steps per rate (30 Hz)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    configs = {
        k: None if v == "none" else Path(v)
        for k, v in (("env", args.env_config), ("agent", args.agent_config))
    }
    for hz in [int(x) for x in args.freqs.split(",") if x]:
        for implicit in [x for x in args.implicit_pd.split(",") if x]:
            cfg, spec = resolve_run(
                motion=args.motion,
                char=args.char,
                env_config=configs["env"],
                agent_config=configs["agent"],
                overrides=[
                    f"engine.sim_freq={hz}",
                    "engine.control_freq=30",
                    f"engine.implicit_pd={implicit}",
                ],
            )
            probe = probe_stability(
                cfg.env,
                cfg.engine,
                spec.motion_file,
                spec.char_file,
                num_envs=args.num_envs,
                steps=args.steps,
                try_higher=False,
            )
            resets = f"{probe.unstable_steps} MuJoCo resets"
            verdict = "stable" if probe.stable else "UNSTABLE"
            print(
                f"{hz} Hz implicit_pd={implicit}: peak {probe.max_speed_rad_s:,.0f} rad/s, {resets} ({verdict})",
                flush=True,
            )


if __name__ == "__main__":
    main()
