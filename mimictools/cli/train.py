"""`mimic train`: DeepMimic PPO tracking of a clip or dataset. Thin: options -> mimictools.app.run + rl.runner."""

from __future__ import annotations

import time
from pathlib import Path
from typing import List, Optional

import typer
from typing_extensions import Annotated

from mimictools.cli.console import console


def train(
    motion: Annotated[
        Optional[Path],
        typer.Option(
            help="Clip (.pkl/.txt) or MimicKit dataset .yaml. Default: the env config's motion_file."
        ),
    ] = None,
    char: Annotated[
        Optional[Path], typer.Option(help="Character MJCF. Default: the env config's char_file.")
    ] = None,
    engine: Annotated[
        Optional[str],
        typer.Option(
            help="Physics engine: mujoco (CPU), mjwarp (GPU) or isaacgym. Default: the engine config's."
        ),
    ] = None,
    num_envs: Annotated[
        Optional[int],
        typer.Option(
            "--num-envs", help="Parallel envs (default 4096 for a GPU engine with --device cuda, else 32)."
        ),
    ] = None,
    device: Annotated[str, typer.Option(help="torch device for task + PPO: cpu or cuda.")] = "cpu",
    max_samples: Annotated[
        Optional[int],
        typer.Option("--max-samples", help="Stop after this many training samples (total, across resumes)."),
    ] = None,
    minutes: Annotated[
        Optional[float], typer.Option(help="Stop after this many minutes of this session.")
    ] = None,
    out_dir: Annotated[
        Optional[Path],
        typer.Option(
            "--out-dir", help="Run folder (default runs/<clip>-<time>; with --resume: the latest run)."
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed; CPU runs with the same seed are repeatable.")] = 0,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume",
            help="Continue the run in --out-dir from latest.pt (optimizer and normalizer state included).",
        ),
    ] = False,
    env_config: Annotated[
        Optional[Path], typer.Option("--env-config", help="MimicKit env YAML (default: bundled demo).")
    ] = None,
    agent_config: Annotated[
        Optional[Path],
        typer.Option("--agent-config", help="MimicKit PPO agent YAML (default: bundled demo)."),
    ] = None,
    engine_config: Annotated[
        Optional[Path],
        typer.Option("--engine-config", help="MimicKit engine YAML (default: bundled mujoco_engine.yaml)."),
    ] = None,
    set_: Annotated[
        Optional[List[str]],
        typer.Option(
            "--set",
            help="Override a config key: --set reward_pose_w=0.6 --set actor_optimizer.learning_rate=3e-4.",
        ),
    ] = None,
    data_root: Annotated[
        Optional[Path],
        typer.Option(
            "--data-root",
            help="Folder holding data/ that relative config paths resolve against (default: found from the env config).",
        ),
    ] = None,
    threads: Annotated[int, typer.Option(help="CPU engine worker threads (0 = all cores).")] = 0,
    torch_threads: Annotated[
        int,
        typer.Option(
            "--torch-threads",
            help="torch intra-op threads on the CPU (default 1: the physics threads own the cores; more threads make OpenMP spin against them).",
        ),
    ] = 1,
    no_progress: Annotated[
        bool, typer.Option("--no-progress", help="Print one line per output instead of a live progress bar.")
    ] = False,
) -> None:
    """Train a DeepMimic tracking policy. With no options: the bundled demo (our humanoid, squat clip, CPU MuJoCo, 10 min)."""
    from mimictools.app import run as runlib
    from mimictools.errors import MimicToolsError

    if resume:
        run_dir = out_dir or _latest_run()
        cfg, spec = runlib.load_run_files(run_dir)
        if any(x is not None for x in (motion, char, env_config, agent_config, engine_config)) or set_:
            raise MimicToolsError(
                "--resume continues a run with its own config.yaml/run.json; drop --motion/--char/--*-config/--set"
            )
        if num_envs is not None and num_envs != spec.num_envs:
            raise MimicToolsError(
                f"--resume: the run used --num-envs {spec.num_envs}; resuming with another count would change the numbers"
            )
    else:
        cfg, spec = runlib.resolve_run(
            motion=motion,
            char=char,
            engine=engine,
            num_envs=num_envs,
            device=device,
            seed=seed,
            env_config=env_config,
            agent_config=agent_config,
            engine_config=engine_config,
            overrides=set_ or (),
            data_root=data_root,
            num_threads=threads,
        )
        run_dir = out_dir or Path("runs") / f"{Path(spec.motion_file).stem}-{time.strftime('%Y%m%d-%H%M%S')}"
        if (run_dir / "latest.pt").exists():
            raise MimicToolsError(
                f"{run_dir} already holds a run: pass --resume to continue it, or another --out-dir"
            )
    if max_samples is None and minutes is None and env_config is None and not resume:
        minutes = 10.0  # the bundled demo
    if device.startswith("cuda"):
        _require_cuda()
    elif cfg.engine.engine_name == "mjwarp":
        console.print(
            "[yellow]note:[/] mjwarp with --device cpu runs on Warp's CPU device (slow, for checks); "
            "GPU training: --device cuda"
        )
    _warn_if_unstable(cfg, spec)
    runlib.save_run_files(run_dir, cfg, spec)
    env, runner = runlib.make_runner(cfg, spec, run_dir, resume=resume, torch_threads=torch_threads)
    console.print(
        f"[bold]mimic train[/] {Path(spec.motion_file).name} on {Path(spec.char_file).name} · engine {cfg.engine.engine_name} · "
        f"{spec.num_envs} envs · obs {env.obs_dim} · actions {env.action_dim} · run folder {run_dir}",
        soft_wrap=True,  # one line in a pipe or a log file
    )
    stop = f"{max_samples:,} samples" if max_samples else (f"{minutes:g} min" if minutes else "Ctrl-C")
    console.print(f"stops at {stop}; Ctrl-C saves latest.pt and exits cleanly")
    from mimictools.cli.progress import TrainProgress

    with TrainProgress(max_samples=max_samples, max_minutes=minutes, live=not no_progress) as progress:
        result = runner.train(
            max_samples=max_samples, max_minutes=minutes, resume=resume, progress=progress.update
        )
    if runner.capture:
        errs = runner.capture_errors
        console.print(
            "rollout and PPO update: CUDA graphs"
            if not errs
            else f"[yellow]CUDA graph capture failed, ran eagerly:[/] {errs[0]}"
        )
    _summary(result, run_dir)


def _warn_if_unstable(cfg, spec) -> None:
    """MuJoCo-family engines: a 5-second physics probe on the CPU (~1 s); warn when it blows up."""
    from mimictools.app.stability import probe_stability
    from mimictools.engines.registry import is_mujoco_family

    if not is_mujoco_family(cfg.engine.engine_name):
        return  # PhysX (Isaac Gym) integrates differently; the probe would not speak for it
    probe = probe_stability(cfg.env, cfg.engine, spec.motion_file, spec.char_file)
    if not probe.stable:
        console.print(f"[yellow]warning:[/] {probe.message()}")


def _latest_run() -> Path:
    from mimictools.errors import MimicToolsError

    runs = sorted(
        (p for p in Path("runs").glob("*") if (p / "latest.pt").exists()),
        key=lambda p: (p / "latest.pt").stat().st_mtime,
    )
    if not runs:
        raise MimicToolsError("--resume without --out-dir: no run with latest.pt under ./runs")
    return runs[-1]


def _require_cuda() -> None:
    import torch

    from mimictools.errors import MimicToolsError

    if not torch.cuda.is_available():
        raise MimicToolsError("--device cuda: torch sees no CUDA GPU (run `mimic doctor` for the reason)")


def _summary(result, run_dir: Path) -> None:
    t = result.last_test
    line = (
        f"[green]done[/] ({result.stop_reason}): {result.iterations} iterations, {result.samples:,} samples, "
        f"{result.wall_time_s / 60:.1f} min"
    )
    if t is not None:
        line += f" · Test_Return {t.mean_return:.2f} (episode length {t.mean_episode_length:.1f})"
        if "Body_Pos_Err" in t.info:
            line += f" · Body_Pos_Err {100 * t.info['Body_Pos_Err']:.1f} cm"
        if t.success_rate is not None and t.success_rate == t.success_rate:
            line += f" · Test_Success {100 * t.success_rate:.0f} %"
    console.print(line, soft_wrap=True)
    console.print(
        f"checkpoint: {result.latest_checkpoint} · log: {run_dir / 'log.txt'} · next: mimic eval --model {run_dir / 'best.pt'} --plot {run_dir / 'eval'}",
        soft_wrap=True,
    )


def register(app: typer.Typer) -> None:
    app.command("train")(train)
