"""Throughput measurements behind ``mimic bench`` (library side; the CLI only formats).

What is measured, per engine and env count (never asserted in tests; recorded in docs/performance.md):

- **raw physics steps/s**: envs x physics steps per second of the engine's own stepping with fixed PD targets,
  no tensor conversions (``engine.step_physics()``). The ceiling.
- **control steps/s**: envs x control steps per second of what a task does every step: ``set_targets`` from a
  torch tensor and ``step_physics``, then ``get_state``, ``body_pos``, ``body_rot``, ``contact_forces``.
- hooks, filled by other parts later: ``samples_per_s`` (the training loop: env + task + PPO update, see
  ``measure_training``) and ``peak_memory_mb`` (GPU engines, see ``peak_memory_mb``).
- with ``nproc`` > 1 (``--train --nproc N``): the training loop again as N ranks started by torch's launcher
  (`mimictools.app.launch`), each with the same env count: samples/s per rank, in total, and the scaling
  efficiency = total / (N x the single-process rate measured just before).

Every env starts standing in the character's rest pose (root lifted so the lowest geom touches the ground) and
holds it with PD targets = that pose; all envs are reset to it every ``reset_every`` control steps
(MimicKit's 10 s episode at 30 Hz), so contacts stay representative of a standing humanoid.

With a clip (``mimic bench --motion``) a second ceiling is measured on the states that clip's training visits,
whose contact solve costs more than standing (a spinkick's 1.9x on one H100, docs/performance.md session 9):

- **clip control steps/s** (``measure_clip_ceiling``): envs x control steps per second of the engine alone
  (``set_targets`` + ``step_physics``, no task, no policy) playing the clip open-loop: each env starts where the
  task's own reset puts it (reference-state initialisation), its PD targets are the clip's pose one control step
  ahead, and all envs go back to their starts every `CLIP_RESET_EVERY` control steps, so they stay near the
  reference, as a tracking policy keeps them. The training loop (``--train``) then runs on the same clip and
  env config.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Sequence, Tuple

if TYPE_CHECKING:  # pragma: no cover
    from mimictools.character.model import Character
    from mimictools.engines.base import EngineSpec, SimState

__all__ = [
    "CLIP_RESET_EVERY",
    "BenchResult",
    "BenchTask",
    "RanksRate",
    "TrainingRate",
    "measure_clip_ceiling",
    "measure_engine",
    "measure_training",
    "peak_memory_mb",
    "run_bench",
    "standing_state",
    "training_rate",
]


@dataclass(frozen=True)
class BenchResult:
    """One row of ``mimic bench``: one engine at one env count. Rates are summed over envs."""

    engine: str
    num_envs: int
    substeps: int
    """Physics steps per control step."""
    device: str
    num_threads: int
    """CPU worker threads the engine used (0 when not applicable)."""
    raw_physics_steps_per_s: float
    """envs x physics steps / s of the engine's stepping alone (the ceiling)."""
    raw_physics_steps_per_cpu_s: float
    """The same per second of this process's CPU time (all threads): a per-core rate that other load on a
    shared machine does not dilute (CPU engines; meaningless for GPU engines)."""
    control_steps_per_s: float
    """envs x control steps / s including target conversion and the state reads a task does."""
    physics_steps_per_s: float
    """``control_steps_per_s * substeps``: physics throughput seen through the full control step."""
    raw_seconds: float
    """Wall time the raw measurement ran (s)."""
    control_seconds: float
    """Wall time the control measurement ran (s)."""
    samples_per_s: Optional[float] = None
    """Training loop (env + task + PPO update) samples / s (``--train``; else None)."""
    rollout_samples_per_s: Optional[float] = None
    """The rollout part alone (policy + engine + DeepMimic task + resets, no update) samples / s (``--train``)."""
    update_s_per_iter: Optional[float] = None
    """Wall seconds of one PPO update (``--train``)."""
    peak_memory_mb: Optional[float] = None
    """Peak device memory of a GPU engine (MiB); None on the CPU."""
    nproc: int = 1
    """Ranks of the distributed training measurement (``--nproc``; 1 = none)."""
    rank_samples_per_s: Optional[List[float]] = None
    """``--nproc`` > 1: each rank's training samples / s (each with ``num_envs`` envs), by global rank."""
    total_samples_per_s: Optional[float] = None
    """``--nproc`` > 1: the ranks' training samples / s summed."""
    scaling_efficiency: Optional[float] = None
    """``--nproc`` > 1: ``total_samples_per_s / (nproc * samples_per_s)`` (1.0 = perfect scaling)."""
    step_ms: Optional[Dict[str, float]] = None
    """``--train``: mean milliseconds per rollout step of record / act / physics / post / storage (one rollout timed by
    phase after the timed iterations, `mimictools.rl.step_clock`; GPU time between CUDA events on a GPU)."""
    solver_iters: Optional[Dict[str, float]] = None
    """``--train`` on an engine that reports its solver iterations (MuJoCo Warp): the training log's
    ``Solver_Iters_Mean`` / ``Solver_Iters_Slowest`` averaged over the timed iterations (`mimictools.rl.runner`)."""
    clip_control_steps_per_s: Optional[float] = None
    """``--motion``: envs x control steps / s of the engine alone playing the clip open-loop from the task's
    reference-state starts (`measure_clip_ceiling`): the ceiling on the states that clip's training visits."""

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


def standing_state(character: Character, num_envs: int, dtype: Any = None) -> SimState:
    """Rest pose (all DoFs 0), identity root rotation, root lifted so the lowest geom is at z = 0; at rest."""
    import torch

    from mimictools.character import kinematics
    from mimictools.engines.base import SimState

    dt = dtype if dtype is not None else torch.float64
    n, nd = num_envs, character.num_dofs
    root_rot = torch.zeros(n, 4, dtype=dt)
    root_rot[:, 0] = 1.0
    root_pos = torch.zeros(n, 3, dtype=dt)
    dof = torch.zeros(n, nd, dtype=dt)
    body_pos, body_rot = kinematics.forward_kinematics(
        character, root_pos, root_rot, kinematics.dof_to_local_rot(character, dof)
    )
    lowest = kinematics.geom_lowest_z(character, body_pos, body_rot)
    finite = lowest[torch.isfinite(lowest)]
    if finite.numel():
        root_pos[:, 2] = -float(finite.min())
    zero3 = torch.zeros(n, 3, dtype=dt)
    return SimState(root_pos, root_rot, zero3, zero3.clone(), dof, torch.zeros(n, nd, dtype=dt))


def _sync(engine: Any) -> None:
    """Wait for queued device work (GPU engines) so wall time covers it."""
    dev = getattr(engine, "device", None)
    if dev is not None and getattr(dev, "type", "cpu") == "cuda":
        import torch

        torch.cuda.synchronize(dev)


def _timed(fn: Callable[[int], None], seconds: float, min_iters: int = 3) -> Tuple[int, float, float]:
    """Call ``fn(i)`` until ``seconds`` of wall time (at least ``min_iters`` calls).

    Returns (calls, wall seconds, process CPU seconds summed over threads).
    """
    t0 = time.perf_counter()
    c0 = time.process_time()
    i = 0
    while i < min_iters or time.perf_counter() - t0 < seconds:
        fn(i)
        i += 1
    return i, time.perf_counter() - t0, time.process_time() - c0


def peak_memory_mb(engine: Any) -> Optional[float]:
    """Peak device memory (MiB) of a GPU engine, None on the CPU.

    Hook: a GPU engine may define ``peak_memory_mb()`` (e.g. Warp's allocations that torch does not see);
    otherwise torch's CUDA allocator peak is reported.
    """
    own = getattr(engine, "peak_memory_mb", None)
    if callable(own):
        value = own()
        return None if value is None else float(value)
    dev = getattr(engine, "device", None)
    if dev is not None and getattr(dev, "type", "cpu") == "cuda":
        import torch

        return float(torch.cuda.max_memory_allocated(dev)) / 2**20
    return None


def measure_engine(
    engine_name: str,
    character: Character,
    spec: EngineSpec,
    seconds: float = 5.0,
    warmup_steps: int = 5,
    reset_every: int = 300,
) -> BenchResult:
    """Build ``engine_name`` for ``spec`` and measure raw physics and control throughput (module docstring)."""
    import torch

    from mimictools.engines.registry import make_engine

    engine = make_engine(engine_name, character, spec)
    try:
        dev = torch.device(engine.device)
        start = standing_state(character, spec.num_envs)
        start = type(start)(*(t.to(device=dev, dtype=torch.float32) for t in start.fields()))
        all_envs = torch.ones(spec.num_envs, dtype=torch.bool, device=dev)
        targets = start.dof_pos

        def reset() -> None:
            engine.set_state_where(all_envs, start)

        reset()
        engine.set_targets(targets)
        for _ in range(warmup_steps):  # first-call costs (GPU kernel compilation, thread start-up)
            engine.step_physics()
        _sync(engine)

        def raw(i: int) -> None:
            if i % reset_every == reset_every - 1:
                reset()
            engine.step_physics()

        reset()
        engine.step_physics()
        raw_iters, raw_s, raw_cpu_s = _timed(raw, seconds)
        _sync(engine)
        raw_s = max(raw_s, 1e-9)

        def control(i: int) -> None:
            if i % reset_every == reset_every - 1:
                reset()
            engine.set_targets(targets)
            engine.step_physics()
            engine.get_state()
            engine.body_pos()
            engine.body_rot()
            engine.contact_forces()

        reset()
        ctrl_iters, ctrl_s, _ = _timed(control, seconds)
        _sync(engine)
        ctrl_s = max(ctrl_s, 1e-9)
        n, sub = spec.num_envs, spec.substeps
        control_rate = n * ctrl_iters / ctrl_s
        return BenchResult(
            engine=engine_name,
            num_envs=n,
            substeps=sub,
            device=str(engine.device),
            num_threads=int(getattr(engine, "num_threads", 0)),
            raw_physics_steps_per_s=n * sub * raw_iters / raw_s,
            raw_physics_steps_per_cpu_s=n * sub * raw_iters / max(raw_cpu_s, 1e-9),
            control_steps_per_s=control_rate,
            physics_steps_per_s=control_rate * sub,
            raw_seconds=raw_s,
            control_seconds=ctrl_s,
            peak_memory_mb=peak_memory_mb(engine),
        )
    finally:
        engine.close()


@dataclass(frozen=True)
class BenchTask:
    """What the clip ceiling and the training loop run on (``mimic bench --motion / --env-config /
    --agent-config``); None = the bundled demo's clip, env config and agent (`measure_training` says which)."""

    motion: Optional[Path] = None
    """Clip (or dataset) file; the clip ceiling needs one."""
    env_config: Optional[Path] = None
    """Env (task) YAML: observations, reward, resets, joint gains."""
    agent_config: Optional[Path] = None
    """Agent YAML of the training loop."""


CLIP_RESET_EVERY = 10
"""Control steps of open-loop playback between the clip ceiling's resets (1/3 s at 30 Hz): long enough that
resets are a small part of the work, short enough that the envs stay near the reference (with no policy to
correct it, open-loop PD playback drifts off a dynamic clip)."""


def _resolve(engine_name: str, character: Character, spec: EngineSpec, task: BenchTask) -> tuple:
    """``(RunConfig, RunSpec)`` of a bench measurement, resolved as ``mimic train`` resolves them: ``task``'s
    clip, env and agent files (the bundled demo's where None) on ``character``, with the bench's engine settings
    from ``spec``."""
    from mimictools.app.run import resolve_run
    from mimictools.paths import bundled_data_dir

    demo_clip = bundled_data_dir() / "motions" / "demo_squat.pkl"
    return resolve_run(
        motion=Path(task.motion) if task.motion is not None else demo_clip,
        char=Path(character.source),
        engine=engine_name,
        num_envs=spec.num_envs,
        device=spec.device,
        env_config=task.env_config,
        agent_config=task.agent_config,
        overrides=[
            f"engine.control_freq={int(spec.control_freq)}",
            f"engine.sim_freq={int(spec.sim_freq)}",
            f"engine.solver_iterations={int(spec.solver_iterations)}",
            f"engine.ls_iterations={int(spec.ls_iterations)}",
            f"engine.solver_tolerance={float(spec.solver_tolerance)!r}",
        ],
        num_threads=spec.num_threads,
    )


def measure_clip_ceiling(
    engine_name: str, character: Character, spec: EngineSpec, task: BenchTask, seconds: float = 5.0,
    reset_every: int = CLIP_RESET_EVERY,
) -> float:  # fmt: skip
    """envs x control steps / s of the engine alone playing ``task.motion`` open-loop (module docstring): the
    task of ``task.env_config`` (its joint gains, its reset distribution) picks the starts; then only
    ``set_targets`` and ``step_physics`` are timed, with every env reset to its start each ``reset_every``
    control steps."""
    import torch

    from mimictools.app.run import build_env

    if task.motion is None:
        raise ValueError("the clip ceiling needs a clip: BenchTask(motion=...)")
    if reset_every < 1:
        raise ValueError(f"reset_every must be >= 1, got {reset_every}")
    cfg, run_spec = _resolve(engine_name, character, spec, task)
    env = build_env(cfg, run_spec)
    try:
        engine, lib, n = env.engine, env.motion_lib, env.num_envs
        env.reset()
        start = engine.get_state()
        start = type(start)(*(t.clone() for t in start.fields()))
        ids, t0 = env.motion_ids.clone(), env.motion_time_s.clone()
        dt = 1.0 / float(cfg.engine.control_freq)
        # Shape (reset_every, n, num_dofs): the clip's pose one control step ahead of each step's start
        targets = torch.stack(
            [lib.calc_motion_frame(ids, t0 + (k + 1) * dt, bodies=False).dof_pos for k in range(reset_every)]
        ).to(env.dtype)
        all_envs = torch.ones(n, dtype=torch.bool, device=env.device)

        def step(i: int) -> None:
            k = i % reset_every
            if k == 0:
                engine.set_state_where(all_envs, start)
            engine.set_targets(targets[k])
            engine.step_physics()

        for i in range(reset_every):  # first-call costs (GPU kernel compilation, graph capture)
            step(i)
        _sync(engine)
        iters, wall, _ = _timed(step, seconds, min_iters=reset_every)
        _sync(engine)
        return n * iters / max(wall, 1e-9)
    finally:
        env.close()


@dataclass(frozen=True)
class TrainingRate:
    """What ``measure_training`` measured (`training_rate` of the timed iterations)."""

    samples_per_s: float
    """Full loop: rollout + PPO update."""
    rollout_samples_per_s: float
    """Rollout alone (timed by the runner with a device sync at its end)."""
    update_s_per_iter: float
    """Mean wall seconds of one PPO update."""
    iterations: int
    """Timed iterations."""
    graphed: bool
    """The rollout ran as CUDA-graph replays (`mimictools.rl.step`) and the PPO update as one graph
    (`mimictools.rl.ppo.PPO` ``capture``), with no capture failure."""
    step_ms: Dict[str, float] = field(default_factory=dict)
    """Mean milliseconds per rollout step by phase (`mimictools.rl.runner.Runner.time_rollout_phases`)."""
    solver_iters: Dict[str, float] = field(default_factory=dict)
    """The update statistics' ``Solver_Iters_*`` averaged over the timed iterations; empty when the engine
    does not report them."""


def training_rate(stats: Sequence[Any], graphed: bool = False) -> TrainingRate:
    """Throughput of timed iterations (`mimictools.rl.results.IterationStats`: samples, rollout_s, update_s)."""
    if not stats:
        raise ValueError("training_rate needs at least one timed iteration")
    samples = sum(s.samples for s in stats)
    t_roll = sum(s.rollout_s for s in stats)
    t_update = sum(s.update_s for s in stats)
    keys = [k for k in ("Solver_Iters_Mean", "Solver_Iters_Slowest") if all(k in s.update for s in stats)]
    return TrainingRate(
        samples_per_s=samples / max(t_roll + t_update, 1e-12),
        rollout_samples_per_s=samples / max(t_roll, 1e-12),
        update_s_per_iter=t_update / len(stats),
        iterations=len(stats),
        graphed=graphed,
        solver_iters={k: sum(float(s.update[k]) for s in stats) / len(stats) for k in keys},
    )


def measure_training(
    engine_name: str, character: Character, spec: EngineSpec, seconds: float = 5.0,
    task: BenchTask = BenchTask(),
) -> TrainingRate:  # fmt: skip
    """Samples / s of the training iteration (`Runner.iterate`: rollout with resets, checks, PPO update), set up
    exactly as ``mimic train`` does (`mimictools.app.run.make_runner`: one torch thread on the CPU), on
    ``task.motion`` with ``task.env_config`` (defaults: the bundled demo clip and env config) and the agent of
    ``task.agent_config`` (an agent YAML file, ``mimic bench --agent-config``). Default agent: on a GPU,
    MimicKit's humanoid PPO agent (``fc_2layers_1024units`` nets, SGD, 32 steps per iteration); on the CPU, the
    bundled demo agent (``data/configs/demo_agent.yaml``), which is what ``mimic train`` uses there. Warm-up
    iterations (one; two on a GPU, where the PPO update's graph is captured at the second) are not timed.
    """
    import tempfile

    import torch

    from mimictools.app.run import make_runner
    from mimictools.config.schema import AgentConfig
    from mimictools.rl import distributed

    cfg, run_spec = _resolve(engine_name, character, spec, task)
    cuda = torch.device(spec.device).type == "cuda"
    if task.agent_config is None and cuda:
        cfg = replace(cfg, agent=AgentConfig())
    with tempfile.TemporaryDirectory() as tmp:
        env, runner = make_runner(cfg, run_spec, Path(tmp), tensorboard=False, save_iter_checkpoints=False)
        try:
            for _ in range(2 if cuda else 1):
                runner.iterate()
            stats = []
            start = time.perf_counter()
            while True:
                stats.append(runner.iterate())
                done = time.perf_counter() - start >= seconds
                if runner.ranks.distributed:  # the ranks stop together (their updates are collectives)
                    done = distributed.any_rank([done], runner.device)[0]
                if done:
                    break
            rate = training_rate(stats, graphed=runner.capture and not runner.capture_errors)
            rate = replace(rate, step_ms=runner.time_rollout_phases())
            runner.release_graphs()
            return rate
        finally:
            env.close()


@dataclass(frozen=True)
class RanksRate:
    """What ``measure_training_ranks`` measured."""

    rank_samples_per_s: List[float]
    """Each rank's training samples / s, by global rank."""

    @property
    def total_samples_per_s(self) -> float:
        return float(sum(self.rank_samples_per_s))


def _training_rank(
    engine_name: str, char_file: str, spec: EngineSpec, seconds: float, timeout_s: float,
    task: BenchTask = BenchTask(),
) -> float:  # fmt: skip
    """One rank of `measure_training_ranks` (a module-level function: the launcher spawns it)."""
    from mimictools.character.mjcf import load_character
    from mimictools.rl import distributed

    distributed.init_from_env(spec.device, timeout_s)
    rate = None
    try:
        rate = measure_training(engine_name, load_character(char_file), spec, seconds=seconds, task=task)
    finally:
        distributed.teardown(barrier=rate is not None)
    return rate.samples_per_s


def measure_training_ranks(
    nproc: int, engine_name: str, character: Character, spec: EngineSpec, seconds: float = 5.0,
    timeout_s: float = 300.0, task: BenchTask = BenchTask(),
) -> RanksRate:  # fmt: skip
    """`measure_training` on ``nproc`` local ranks at once (torch's launcher, `mimictools.app.launch`), each with
    ``spec.num_envs`` envs on its own device (``cuda`` -> ``cuda:<local rank>``)."""
    from mimictools.app.launch import launch_function

    rates = launch_function(
        nproc, _training_rank, engine_name, str(character.source), spec, seconds, timeout_s, task
    )
    return RanksRate([float(rates[r]) for r in sorted(rates)])


def run_bench(
    engine_name: str,
    character: Character,
    env_counts: Sequence[int],
    base_spec: EngineSpec,
    seconds: float = 5.0,
    train: bool = False,
    on_result: Optional[Callable[[BenchResult], None]] = None,
    nproc: int = 1,
    task: BenchTask = BenchTask(),
) -> List[BenchResult]:
    """``measure_engine`` (then ``measure_clip_ceiling`` when ``task`` names a clip, ``measure_training`` when
    ``train``, ``measure_training_ranks`` when ``nproc`` > 1) for each env count; ``on_result`` sees each row."""
    results = []
    for n in env_counts:
        spec = replace(base_spec, num_envs=int(n))
        row = measure_engine(engine_name, character, spec, seconds=seconds)
        if task.motion is not None:
            clip = measure_clip_ceiling(engine_name, character, spec, task, seconds=seconds)
            row = replace(row, clip_control_steps_per_s=clip)
        if train:
            rate = measure_training(engine_name, character, spec, seconds=seconds, task=task)
            row = replace(
                row,
                samples_per_s=rate.samples_per_s,
                rollout_samples_per_s=rate.rollout_samples_per_s,
                update_s_per_iter=rate.update_s_per_iter,
                step_ms=rate.step_ms,
                solver_iters=rate.solver_iters or None,
            )
            if nproc > 1:
                ranks = measure_training_ranks(
                    nproc, engine_name, character, spec, seconds=seconds, task=task
                )
                row = replace(
                    row,
                    nproc=nproc,
                    rank_samples_per_s=ranks.rank_samples_per_s,
                    total_samples_per_s=ranks.total_samples_per_s,
                    scaling_efficiency=ranks.total_samples_per_s / (nproc * max(rate.samples_per_s, 1e-12)),
                )
        results.append(row)
        if on_result is not None:
            on_result(row)
    return results
