"""Is a run's physics stable? A 5-second probe on the CPU MuJoCo engine, before training.

Why: MuJoCo (and MuJoCo Warp) integrate the PD controller's forces explicitly, so stiff gains at a coarse
physics step blow up. MimicKit's humanoid at 120 Hz (its Isaac Gym setting; PhysX is stable there) reaches
~60,000 rad/s within 0.02 s, while at 240 Hz (its MuJoCo-family "newton" setting) it stays below 40 rad/s under
an untrained policy's action noise (docs/performance.md, 2026-11-24). Training on such physics learns nothing
and reports no error, so `mimic train` runs this probe first and warns.

The probe: ``num_envs`` envs of the run's task and character on the MuJoCo CPU engine at the run's
``sim_freq``/``control_freq``, reference-state resets, ``steps`` control steps with PD targets at the middle of
the action range plus Gaussian noise of ``noise`` x the half-range (MimicKit's fixed action std is 0.05 of it);
the largest joint or root angular speed seen decides. Human motion stays in tens of rad/s.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Union

import torch

from mimictools.config.schema import EngineConfig, EnvConfig
from mimictools.rl.action_scale import ActionScale
from mimictools.tasks.env_api import DoneFlag

__all__ = ["SPEED_LIMIT_RAD_S", "StabilityProbe", "probe_stability"]

SPEED_LIMIT_RAD_S = 200.0
"""Above this joint/root angular speed (rad/s) the physics is called unstable (measured: 37 stable, 60,126 not)."""


@dataclass(frozen=True)
class StabilityProbe:
    """Result of `probe_stability`."""

    sim_freq: float
    """Physics rate probed (Hz)."""
    max_speed_rad_s: float
    """Largest |DoF velocity| or |root angular velocity| seen (rad/s); inf if the state became non-finite."""

    @property
    def stable(self) -> bool:
        return self.max_speed_rad_s < SPEED_LIMIT_RAD_S

    def message(self) -> str:
        """One line for the user."""
        if self.stable:
            return (
                f"physics stable at {self.sim_freq:g} Hz (max angular speed {self.max_speed_rad_s:.0f} rad/s)"
            )
        return (
            f"physics looks UNSTABLE at {self.sim_freq:g} Hz: a 5-second probe with random actions reached "
            f"{self.max_speed_rad_s:,.0f} rad/s (stable characters stay below {SPEED_LIMIT_RAD_S:.0f}); training "
            "will likely learn nothing. MuJoCo engines need a finer physics step for stiff PD gains: try "
            "--set engine.sim_freq=240 (MimicKit's Isaac Gym configs use 120 Hz, fine for PhysX only)"
        )


def probe_stability(
    env_cfg: EnvConfig,
    engine_cfg: EngineConfig,
    motion_path: Union[str, Path],
    char_path: Union[str, Path],
    num_envs: int = 16,
    steps: int = 150,
    noise: float = 0.05,
    seed: int = 0,
) -> StabilityProbe:
    """Run the probe (module docstring) and return the largest angular speed seen.

    The global torch RNG state is left as it was (the probe draws from its own generator).
    """
    from mimictools.tasks.deepmimic import build_env

    gen = torch.Generator().manual_seed(seed)
    cfg = replace(engine_cfg, engine_name="mujoco")
    env = build_env(
        env_cfg,
        cfg,
        num_envs=num_envs,
        motion_path=motion_path,
        char_path=char_path,
        device="cpu",
        num_threads=1,
        generator=gen,
    )
    worst = 0.0
    try:
        with torch.random.fork_rng(devices=[]):
            obs = env.reset()
            scale = ActionScale(env.action_low, env.action_high)
            for _ in range(steps):
                actions = scale.to_env(noise * torch.randn(env.num_envs, env.action_dim, generator=gen))
                obs, _rew, done, _info = env.step(actions)
                s = env.engine.get_state()
                speeds = torch.cat([s.dof_vel.abs().flatten(), s.root_ang_vel.abs().flatten()])
                if not bool(torch.isfinite(speeds).all()):
                    return StabilityProbe(float(engine_cfg.sim_freq), float("inf"))
                worst = max(worst, float(speeds.max()))
                obs = env.reset_where(done != int(DoneFlag.NULL), obs)
    finally:
        env.close()
    return StabilityProbe(float(engine_cfg.sim_freq), worst)
