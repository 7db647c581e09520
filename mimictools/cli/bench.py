"""`mimic bench`: engine throughput (raw physics steps/s, control steps/s) for a list of env counts."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any, List, Optional

import typer
from rich.console import Console
from typing_extensions import Annotated

from mimictools.cli.console import print_table


def _parse_counts(text: str) -> List[int]:
    from mimictools.errors import ConfigError

    counts = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            value = int(part)
        except ValueError:
            raise ConfigError(
                f"--num-envs: {part!r} is not an integer; give a comma-separated list like 1,8,32"
            ) from None
        if value < 1:
            raise ConfigError(f"--num-envs: {value} must be >= 1")
        counts.append(value)
    if not counts:
        raise ConfigError("--num-envs: give at least one env count, e.g. 1,8,32")
    return counts


def _rate(x: Optional[float]) -> str:
    if x is None:
        return "-"
    if x >= 1e6:
        return f"{x / 1e6:.2f} M"
    if x >= 1e3:
        return f"{x / 1e3:.1f} K"
    return f"{x:.0f}"


def bench(
    engine: Annotated[
        str, typer.Option("--engine", help="Engine: mujoco (CPU), mjwarp (GPU), isaacgym.")
    ] = "mujoco",
    num_envs: Annotated[
        str, typer.Option("--num-envs", help="Comma-separated env counts, one measurement each.")
    ] = "1,8,32,128",
    seconds: Annotated[
        float, typer.Option("--seconds", help="Wall time per measurement (s); two per env count.")
    ] = 5.0,
    char: Annotated[
        Optional[Path], typer.Option("--char", help="Character MJCF. Default: the bundled data/humanoid.xml.")
    ] = None,
    threads: Annotated[
        int, typer.Option("--threads", help="CPU engines: worker threads (0 = all cores).")
    ] = 0,
    sim_freq: Annotated[float, typer.Option("--sim-freq", help="Physics rate (Hz).")] = 240.0,
    control_freq: Annotated[float, typer.Option("--control-freq", help="Control rate (Hz).")] = 30.0,
    solver_iterations: Annotated[
        int,
        typer.Option(
            "--solver-iterations",
            help="MuJoCo engines: cap on solver iterations per physics step (engine.solver_iterations; 0 = the "
            "MJCF's value, MuJoCo's default 100).",
        ),
    ] = 0,
    ls_iterations: Annotated[
        int,
        typer.Option(
            "--ls-iterations",
            help="MuJoCo engines: cap on line-search iterations (engine.ls_iterations; 0 = the MJCF's, 50).",
        ),
    ] = 0,
    solver_tolerance: Annotated[
        float,
        typer.Option(
            "--solver-tolerance",
            help="MuJoCo engines: the solver's stopping tolerance (engine.solver_tolerance; 0 = the MJCF's, "
            "MuJoCo's default 1e-8; MuJoCo Warp uses at least 1e-6).",
        ),
    ] = 0.0,
    device: Annotated[
        Optional[str],
        typer.Option(
            "--device", help="torch device of the engine's tensors (default: cpu; cuda:0 for GPU engines)."
        ),
    ] = None,
    train: Annotated[
        bool,
        typer.Option("--train", help="Also measure the training loop (env + task + PPO update) samples/s."),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document (no table).")] = False,
    agent_config: Annotated[
        Optional[Path],
        typer.Option(
            "--agent-config",
            help="With --train: the agent YAML of the training loop (default: MimicKit's humanoid PPO agent on a "
            "GPU, the bundled demo agent on the CPU), e.g. data/configs/spinkick_16k_agent.yaml.",
        ),
    ] = None,
    motion: Annotated[
        Optional[Path],
        typer.Option(
            "--motion",
            help="A clip (or dataset) to measure on: adds the ceiling on its states (the engine alone playing it "
            "open-loop from the task's reference-state starts) and, with --train, runs the training loop on it.",
        ),
    ] = None,
    env_config: Annotated[
        Optional[Path],
        typer.Option(
            "--env-config",
            help="With --motion: the env (task) YAML for it (default: the bundled demo's), e.g. MimicKit's "
            "deepmimic_humanoid_env.yaml.",
        ),
    ] = None,
    nproc: Annotated[
        int,
        typer.Option(
            "--nproc",
            help="With --train: also measure the training loop as N ranks on this machine (torchrun's launcher, "
            "one GPU each on cuda), each with the env count: samples/s per rank, in total, and the scaling "
            "efficiency against the single-process rate.",
        ),
    ] = 1,
) -> None:
    """Measure engine throughput: raw physics steps/s (the ceiling) and control steps/s (step + state reads).

    Each env count builds a fresh engine, stands the character in its rest pose and holds it with PD targets.
    With --motion, the engine also plays that clip open-loop from the task's starts (the ceiling on the states
    its training visits) and --train trains on it. Rates are summed over envs. Timings depend on the machine
    and its load: record them with the machine, date and commit (docs/performance.md).
    """
    from mimictools.app.bench import CLIP_RESET_EVERY, BenchTask, run_bench
    from mimictools.character.mjcf import load_character
    from mimictools.engines.base import EngineSpec
    from mimictools.engines.registry import SOLVER_TOLERANCE_RULE, solver_tolerance_ok
    from mimictools.errors import ConfigError
    from mimictools.paths import bundled_humanoid_xml
    from mimictools.rl.step_clock import PHASES
    from mimictools.system import available_cpus

    counts = _parse_counts(num_envs)
    if nproc < 1:
        raise ConfigError(f"--nproc must be >= 1, got {nproc}")
    if agent_config is not None and not train:
        raise ConfigError("--agent-config sets the training loop's agent: add --train")
    if agent_config is not None and not Path(agent_config).is_file():
        raise ConfigError(f"--agent-config {agent_config}: no such file")
    for flag, path in (("--motion", motion), ("--env-config", env_config)):
        if path is not None and not Path(path).exists():
            raise ConfigError(f"{flag} {path}: no such file")
    if env_config is not None and motion is None:
        raise ConfigError("--env-config sets the task of --motion: add --motion")
    if nproc > 1 and not train:
        raise ConfigError("--nproc measures the training loop: add --train")
    if seconds <= 0:
        raise ConfigError(f"--seconds must be > 0, got {seconds}")
    char_path = char if char is not None else bundled_humanoid_xml()
    character = load_character(char_path)
    dev = device if device is not None else ("cuda:0" if engine == "mjwarp" else "cpu")
    if solver_iterations < 0 or ls_iterations < 0:
        raise ConfigError(
            f"--solver-iterations / --ls-iterations must be >= 0 (0 = the MJCF's value), got "
            f"{solver_iterations} / {ls_iterations}"
        )
    if not solver_tolerance_ok(solver_tolerance):
        raise ConfigError(f"--solver-tolerance must be {SOLVER_TOLERANCE_RULE}, got {solver_tolerance}")
    spec = EngineSpec(
        num_envs=counts[0],
        control_freq=control_freq,
        sim_freq=sim_freq,
        device=dev,
        num_threads=threads,
        solver_iterations=solver_iterations,
        ls_iterations=ls_iterations,
        solver_tolerance=solver_tolerance,
    )

    out = Console(highlight=False)
    err = Console(stderr=True, highlight=False)
    title = f"mimic bench: {engine} on {char_path.name}"
    caption = (
        "Summed over envs. raw: physics steps/s of the engine alone (the ceiling); per CPU-s: the same per "
        "second of this process's CPU time (a per-core rate); control: control steps/s with target conversion "
        "and state reads."
        + (
            " step ms: one training rollout's mean time per control step by phase (normalizer record + obs copy, "
            "policy + PD targets, engine physics, task observe/reward/resets, rollout storage writes); train / rollout "
            "physics: training samples/s over envs / the rollout's physics time per control step (the standing "
            "character of the raw ceiling needs a cheaper contact solve than the states training visits)."
            if train
            else ""
        )
        + (
            f" clip control: control steps/s of the engine alone playing {motion.name} open-loop from the task's "
            f"starts (reset every {CLIP_RESET_EVERY} control steps)"
            + ("; train / clip ctrl: training samples/s over it." if train else ".")
            if motion is not None
            else ""
        )
    )
    columns = [
        "envs",
        "threads",
        "substeps",
        "raw physics/s",
        "raw per CPU-s",
        "control/s",
        "physics/s via control",
    ]
    if motion is not None:
        columns.append("clip control/s")
    if train:
        columns += [
            "samples/s (rollout)",
            "samples/s (train)",
            "update s/iter",
            "train / raw ctrl",
            "train / rollout physics",
        ]
        if motion is not None:
            columns.append("train / clip ctrl")
        columns += [
            "step ms: record / act / physics / post / storage",
        ]
    if nproc > 1:
        columns += [f"{nproc} ranks: samples/s per rank", "total", "scaling"]
    show_mem = engine != "mujoco"
    if show_mem:
        columns.append("peak mem MiB")

    def progress(row: Any) -> None:
        if not as_json:
            err.print(
                f"[dim]{row.num_envs} envs: raw {_rate(row.raw_physics_steps_per_s)} physics steps/s, "
                f"{_rate(row.control_steps_per_s)} control steps/s[/]"
            )

    rows = run_bench(
        engine,
        character,
        counts,
        spec,
        seconds=seconds,
        train=train,
        on_result=progress,
        nproc=nproc,
        task=BenchTask(motion=motion, env_config=env_config, agent_config=agent_config),
    )

    if as_json:
        doc = {
            "engine": engine,
            "character": str(char_path),
            "sim_freq": sim_freq,
            "control_freq": control_freq,
            "solver_iterations": solver_iterations,
            "ls_iterations": ls_iterations,
            "solver_tolerance": solver_tolerance,
            "seconds": seconds,
            "agent_config": None if agent_config is None else str(agent_config),
            "motion": None if motion is None else str(motion),
            "env_config": None if env_config is None else str(env_config),
            "machine": {
                "processor": platform.processor() or platform.machine(),
                "cpu_count": os.cpu_count(),
                "cpus_available": available_cpus(),
                "python": platform.python_version(),
            },
            "results": [
                dict(
                    r.to_dict(),
                    train_over_raw_control_rate=_train_ratio(r),
                    train_over_rollout_physics_rate=_train_physics_ratio(r),
                    train_over_clip_control_rate=_train_clip_ratio(r),
                )
                for r in rows
            ],
        }
        typer.echo(json.dumps(doc, indent=2))
        return
    show_solver = any(r.solver_iters for r in rows)
    if show_solver:
        columns.append("solver iters: mean / slowest env")
    cell_rows: List[List[str]] = []
    for r in rows:
        cells = [
            str(r.num_envs),
            str(r.num_threads) if r.num_threads else "-",
            str(r.substeps),
            _rate(r.raw_physics_steps_per_s),
            _rate(r.raw_physics_steps_per_cpu_s),
            _rate(r.control_steps_per_s),
            _rate(r.physics_steps_per_s),
        ]
        if motion is not None:
            cells.append(_rate(r.clip_control_steps_per_s))
        if train:
            cells.append(_rate(r.rollout_samples_per_s))
            cells.append(_rate(r.samples_per_s))
            cells.append("-" if r.update_s_per_iter is None else f"{r.update_s_per_iter:.3f}")
            ratio = _train_ratio(r)
            cells.append("-" if ratio is None else f"{ratio:.2f}")
            ratio = _train_physics_ratio(r)
            cells.append("-" if ratio is None else f"{ratio:.2f}")
            if motion is not None:
                ratio = _train_clip_ratio(r)
                cells.append("-" if ratio is None else f"{ratio:.2f}")
            cells.append(" / ".join(f"{r.step_ms[k]:.2f}" for k in PHASES) if r.step_ms else "-")
        if nproc > 1:
            cells.append(" / ".join(_rate(x) for x in r.rank_samples_per_s or []))
            cells.append(_rate(r.total_samples_per_s))
            cells.append("-" if r.scaling_efficiency is None else f"{r.scaling_efficiency:.2f}")
        if show_mem:
            cells.append("-" if r.peak_memory_mb is None else f"{r.peak_memory_mb:.0f}")
        if show_solver:
            it = r.solver_iters or {}
            cells.append(
                f"{it['Solver_Iters_Mean']:.2f} / {it['Solver_Iters_Slowest']:.2f}" if len(it) == 2 else "-"
            )
        cell_rows.append(cells)
    print_table(out, title, columns, cell_rows, caption)


def register(app: typer.Typer) -> None:
    app.command("bench")(bench)


def _train_ratio(r: Any) -> Optional[float]:
    """Training samples/s over the raw control-step rate (raw physics steps/s / substeps): the share of
    the engine's ceiling that the full training loop keeps (issue 3's target on the CPU: >= 0.5)."""
    if r.samples_per_s is None or not r.raw_physics_steps_per_s or not r.substeps:
        return None
    return float(r.samples_per_s) / (float(r.raw_physics_steps_per_s) / float(r.substeps))


def _train_physics_ratio(r: Any) -> Optional[float]:
    """Training samples/s over ``num_envs / physics seconds per control step`` as timed inside the training
    rollout (``step_ms['physics']``): the share of the loop's time that is physics in the states training visits
    (falls, resets, many contacts). The raw ceiling of `_train_ratio` is timed on a standing character, whose
    contact solve is cheaper: on MimicKit's humanoid at 240 Hz on one H100 the rollout's physics took 1.9x the
    standing physics per control step (docs/performance.md, session 9)."""
    ms = (r.step_ms or {}).get("physics")
    if r.samples_per_s is None or not ms or ms <= 0:
        return None
    return float(r.samples_per_s) / (r.num_envs / (float(ms) / 1000.0))


def _train_clip_ratio(r: Any) -> Optional[float]:
    """Training samples/s over the clip ceiling's control steps/s (``--motion``): the share of the engine's
    ceiling on the clip's own states that the full training loop keeps (issue 18's measure, on the clip)."""
    if r.samples_per_s is None or not r.clip_control_steps_per_s:
        return None
    return float(r.samples_per_s) / float(r.clip_control_steps_per_s)
