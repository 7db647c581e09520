"""Is a run's physics stable? A 5-second probe on the CPU MuJoCo engine, before training.

Why: stiff PD gains at a coarse physics step can blow up (both humanoids at 60 Hz reach millions of rad/s), and
so can a bad reset state (MimicKit's humanoid at 120 Hz did, from hinge-triple rates near gimbal lock, until
`mimictools.character.kinematics.solve_triple_rates` bounded them; docs/performance.md, "Stable PD").
Training on such physics learns nothing and reports no error, so `mimic train` runs this probe first and
warns. MuJoCo itself resets an env whose accelerations turn NaN/Inf/huge ("Nan, Inf or huge value in QACC"),
which hides the blow-up from a speed check: those resets count as unstable too.

The probe: ``num_envs`` envs of the run's task and character on the MuJoCo CPU engine at the run's
``sim_freq``/``control_freq``, reference-state resets, ``steps`` control steps with PD targets at the middle of
the action range plus Gaussian noise of ``noise`` x the half-range (MimicKit's fixed action std is 0.05 of it);
the largest joint or root angular speed seen and MuJoCo's resets decide. Human motion stays in tens of rad/s.
When unstable, doubled rates are probed too, so the advice names a rate that was measured to be stable.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, List, Optional, Tuple, Union

import torch

from mimictools.config.schema import EngineConfig, EnvConfig
from mimictools.rl.action_scale import ActionScale
from mimictools.tasks.env_api import DoneFlag
from mimictools.tasks.physics_check import SPEED_LIMIT_RAD_S

__all__ = ["SPEED_LIMIT_RAD_S", "PhysicsWatch", "StabilityProbe", "probe_stability"]

MAX_RESET_FRACTION = 1e-3
"""More MuJoCo instability resets than this fraction of the probe's env-steps is unstable. MimicKit's humanoid
on the spinkick at 240 Hz, which trains (docs/performance.md), had 2 in 9,600 (2026-12, 64 envs x 150 steps)."""

MAX_ADVICE_HZ = 960.0
"""The probe tries doubled physics rates up to this one (Hz) before advising a rate."""


@dataclass(frozen=True)
class StabilityProbe:
    """Result of `probe_stability`."""

    sim_freq: float
    """Physics rate probed (Hz)."""
    max_speed_rad_s: float
    """Largest |DoF velocity| or |root angular velocity| seen (rad/s); inf if the state became non-finite."""
    unstable_steps: int = 0
    """Env-steps in which MuJoCo reported NaN/Inf/huge accelerations and reset the env (its own warning)."""
    env_steps: int = 0
    """Env-steps probed (envs x control steps); 0 = unknown (any reset is then unstable)."""
    implicit_pd: bool = False
    """Whether the probed engine config used stable (implicit) PD."""
    higher: Tuple[StabilityProbe, ...] = ()
    """Unstable only: probes at doubled rates (up to `MAX_ADVICE_HZ`), up to the first stable one."""

    @property
    def stable(self) -> bool:
        allowed = MAX_RESET_FRACTION * self.env_steps
        return self.max_speed_rad_s < SPEED_LIMIT_RAD_S and self.unstable_steps <= allowed

    def found(self) -> str:
        """What was measured, e.g. ``max angular speed 37 rad/s`` or ``... 2 MuJoCo resets``."""
        text = f"max angular speed {self.max_speed_rad_s:,.0f} rad/s"
        if self.unstable_steps:
            text += f", {self.unstable_steps} MuJoCo instability resets (NaN/Inf/huge QACC)"
        return text

    def message(self) -> str:
        """One line for the user; its advice follows from the probes (never a setting already in place)."""
        if self.stable:
            return f"physics stable at {self.sim_freq:g} Hz ({self.found()})"
        head = (
            f"physics looks UNSTABLE at {self.sim_freq:g} Hz: a 5-second probe with random actions found "
            f"{self.found()} (stable characters stay below {SPEED_LIMIT_RAD_S:.0f} rad/s with almost no resets); "
            "training will likely learn nothing. "
        )
        ok = [p for p in self.higher if p.stable]
        if ok:
            advice = f"It is stable at {ok[0].sim_freq:g} Hz ({ok[0].found()}): --set engine.sim_freq={ok[0].sim_freq:g}"
        elif self.higher:
            rates = ", ".join(f"{p.sim_freq:g}" for p in self.higher)
            advice = (
                f"It is unstable at {rates} Hz too, so the physics rate is not the cause: check the character's "
                "PD gains (joint stiffness/damping, --set joint_gains) and the clip (mimic motion inspect)"
            )
        else:
            advice = "check the character's PD gains and the clip (mimic motion inspect)"
        return head + advice


def probe_stability(
    env_cfg: EnvConfig,
    engine_cfg: EngineConfig,
    motion_path: Union[str, Path],
    char_path: Union[str, Path],
    num_envs: int = 16,
    steps: int = 150,
    noise: float = 0.05,
    seed: int = 0,
    try_higher: bool = True,
    motion_fps: Optional[float] = None,
) -> StabilityProbe:
    """Run the probe (module docstring) and return the largest angular speed and MuJoCo resets seen.

    When unstable and ``try_higher``, the same probe runs at 2x, 4x, ... the rate (multiples of the control
    rate, up to `MAX_ADVICE_HZ`) until one is stable, so the advice names a rate that was measured.
    The global torch RNG state is left as it was (the probe draws from its own generator). ``motion_fps``:
    frame rate of robot .csv clips (they store none).
    """
    probe = _probe_once(env_cfg, engine_cfg, motion_path, char_path, num_envs, steps, noise, seed, motion_fps)
    if probe.stable or not try_higher:
        return probe
    higher: List[StabilityProbe] = []
    hz = engine_cfg.sim_freq * 2
    while hz <= MAX_ADVICE_HZ:
        p = _probe_once(
            env_cfg,
            replace(engine_cfg, sim_freq=hz),
            motion_path,
            char_path,
            num_envs,
            steps,
            noise,
            seed,
            motion_fps,
        )
        higher.append(p)
        if p.stable:
            break
        hz *= 2
    return replace(probe, higher=tuple(higher))


def _probe_once(
    env_cfg: EnvConfig,
    engine_cfg: EngineConfig,
    motion_path: Union[str, Path],
    char_path: Union[str, Path],
    num_envs: int,
    steps: int,
    noise: float,
    seed: int,
    motion_fps: Optional[float] = None,
) -> StabilityProbe:
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
        motion_fps=motion_fps,
        generator=gen,
    )
    worst = 0.0
    hz = float(engine_cfg.sim_freq)
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
                    worst = float("inf")
                    break
                worst = max(worst, float(speeds.max()))
                obs = env.reset_where(done != int(DoneFlag.NULL), obs)
        resets = int(env.engine.unstable_steps())
    finally:
        env.close()
    return StabilityProbe(hz, worst, resets, num_envs * steps, bool(engine_cfg.implicit_pd))


class PhysicsWatch:
    """Unstable physics during training, read between iterations (never inside the rollout), on every engine.

    Two counters, each read and cleared after an iteration (a host read of a device count: the update has
    just synchronised anyway): the env's (``DeepMimicEnv.unstable_speed_steps``: env-steps with a joint or
    root speed above `SPEED_LIMIT_RAD_S` or NaN/inf, counted on the device in ``observe``; MuJoCo Warp has no
    instability warning of its own), and the CPU engine's (``MuJoCoEngine.unstable_steps``: envs that MuJoCo
    reset after "Nan, Inf or huge value in QACC"). Counters an env/engine lacks are skipped.
    ``wrap(progress)`` returns a progress callback that checks after each iteration; the first time either
    counter is non-zero, ``warn`` gets one line, and `summary` gives the totals at the end (None when both are 0).
    """

    def __init__(self, env: object, sim_freq: float, warn: Callable[[str], None]) -> None:
        self._read_speed = getattr(env, "unstable_speed_steps", None)
        self._read_resets = getattr(getattr(env, "engine", None), "unstable_steps", None)
        self.sim_freq = float(sim_freq)
        self.warn = warn
        self.total_speed = 0
        self.total_resets = 0
        self._warned = False
        for read in (self._read_speed, self._read_resets):
            if read is not None:
                read(reset=True)  # the probe or a previous run's count is not this run's

    @property
    def total(self) -> int:
        """Unstable env-steps seen so far, both counters."""
        return self.total_speed + self.total_resets

    def check(self, iteration: int) -> None:
        """Read (and clear) the counters; warn once."""
        fast = int(self._read_speed(reset=True)) if self._read_speed is not None else 0
        resets = int(self._read_resets(reset=True)) if self._read_resets is not None else 0
        self.total_speed += fast
        self.total_resets += resets
        if (fast or resets) and not self._warned:
            self._warned = True
            self.warn(
                f"unstable physics at {self.sim_freq:g} Hz in iteration {iteration}: {self._found(fast, resets)}; "
                "`python scripts/sim_stability.py` or the probe at start-up says which rate holds"
            )

    @staticmethod
    def _found(fast: int, resets: int) -> str:
        parts = []
        if fast:
            parts.append(
                f"{fast:,} env-steps with joint speeds above {SPEED_LIMIT_RAD_S:.0f} rad/s or NaN/inf"
            )
        if resets:
            parts.append(
                f"{resets:,} env-steps with NaN/Inf/huge accelerations (MuJoCo reset those envs to the default pose)"
            )
        return " and ".join(parts)

    def wrap(self, progress: Callable[[Any], None]) -> Callable[[Any], None]:
        """A progress callback (`mimictools.rl.results.IterationReport`) that also checks."""

        def update(rep: Any) -> None:
            self.check(int(rep.iteration))
            progress(rep)

        return update

    def summary(self) -> Optional[str]:
        if not self.total:
            return None
        return f"unstable physics during this session: {self._found(self.total_speed, self.total_resets)}"
