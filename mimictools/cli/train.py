"""`mimic train`: DeepMimic PPO tracking of a clip or dataset. Thin: options -> mimictools.app.run + rl.runner."""

from __future__ import annotations

import time
from pathlib import Path
from typing import List, Optional

import typer
from typing_extensions import Annotated

from mimictools.cli.console import console
from mimictools.cli.options import FPS_OPTION


def train(
    ctx: typer.Context,
    motion: Annotated[
        Optional[Path],
        typer.Option(
            help="Clip (.pkl/.txt/.npz/.csv), folder or MimicKit dataset .yaml. Default: the env config's motion_file."
        ),
    ] = None,
    fps: Annotated[Optional[float], FPS_OPTION] = None,
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
            "--num-envs",
            help="Parallel envs per rank (process): with --nproc/torchrun each rank runs this many "
            "(default 4096 for a GPU engine with --device cuda, else 32).",
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
    nproc: Annotated[
        Optional[int],
        typer.Option(
            "--nproc",
            help="Train with N processes (ranks) on this machine, one per GPU with --device cuda: the same "
            "as `torchrun --standalone --nproc-per-node N -m mimictools train ...`. --num-envs is per rank. "
            "For several machines run torchrun yourself (docs/distributed.md).",
        ),
    ] = None,
    dist_timeout: Annotated[
        float,
        typer.Option(
            "--dist-timeout",
            help="Distributed runs: seconds a rank waits in a collective for the others before it stops "
            "with an error (a rank died or hangs).",
        ),
    ] = 300.0,
) -> None:
    """Train a DeepMimic tracking policy. With no options: the bundled demo (our humanoid, squat clip, CPU MuJoCo, 10 min)."""
    from mimictools.app.run import check_train_options
    from mimictools.errors import ConfigError, MimicToolsError
    from mimictools.rl import distributed

    check_train_options(
        seed=seed, minutes=minutes, max_samples=max_samples, num_envs=num_envs, threads=threads
    )
    if nproc is not None and nproc < 1:
        raise ConfigError(f"--nproc must be >= 1, got {nproc}")
    if dist_timeout <= 0:
        raise ConfigError(f"--dist-timeout must be > 0 seconds, got {dist_timeout}")
    info = distributed.rank_info_from_env()
    if nproc is not None and nproc > 1 and not info.distributed:
        if device.startswith("cuda"):
            _require_cuda(nproc)
        _launch(ctx, nproc)
        return
    if nproc is not None and info.distributed and nproc != info.local_world_size:
        raise MimicToolsError(
            f"--nproc {nproc} inside a job of {info.local_world_size} local ranks (torchrun's "
            "--nproc-per-node): drop --nproc under torchrun"
        )
    ranks = distributed.init_from_env(device, dist_timeout)
    finished = False
    try:
        _train(
            ranks, motion, char, engine, num_envs, device, max_samples, minutes, out_dir, seed, resume,
            env_config, agent_config, engine_config, set_, data_root, threads, torch_threads, no_progress, fps,
        )  # fmt: skip
        finished = True
    finally:
        distributed.teardown(barrier=finished)


def _train(
    ranks, motion, char, engine, num_envs, device, max_samples, minutes, out_dir, seed, resume,
    env_config, agent_config, engine_config, set_, data_root, threads, torch_threads, no_progress, fps=None,
) -> None:  # fmt: skip
    """The body of `train` on one rank (every rank of a distributed job; rank 0 alone writes and prints)."""
    from rich.markup import escape

    from mimictools.app import run as runlib
    from mimictools.rl import distributed

    writer = ranks.is_writer
    say = console.print if writer else (lambda *args, **kwargs: None)
    if resume:
        run_dir = out_dir or runlib.latest_run()
        if ranks.distributed:  # every rank trains the run rank 0 found
            run_dir = Path(distributed.broadcast_object(str(run_dir)))
        cfg, spec = runlib.load_run_files(run_dir)
        changes = any(x is not None for x in (motion, char, env_config, agent_config, engine_config, fps))
        runlib.check_resume(spec, num_envs, changes_given=changes or bool(set_))
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
            report=lambda line: say(f"[cyan]task default for this character:[/] {escape(line)}"),
            fps=fps,
        )
        stamp = time.strftime("%Y%m%d-%H%M%S")
        if ranks.distributed:  # rank 0's clock names the folder
            stamp = str(distributed.broadcast_object(stamp))
        run_dir = runlib.new_run_dir(spec, out_dir, stamp)
    if max_samples is None and minutes is None and env_config is None and not resume:
        minutes = 10.0  # the bundled demo
    if device.startswith("cuda"):
        _require_cuda()
    from contextlib import nullcontext

    from mimictools.io_util import remove_stale_temps, run_dir_lock

    # rank 0 alone writes the folder, so it alone holds the lock (other ranks would find it taken)
    with run_dir_lock(run_dir, "run folder (--out-dir)") if writer else nullcontext():
        if writer:
            remove_stale_temps(run_dir)  # temps of writers that were killed mid-write
            if cfg.engine.engine_name == "mjwarp" and not str(spec.device).startswith("cuda"):
                console.print(
                    "[yellow]note:[/] mjwarp with --device cpu runs on Warp's CPU device (slow, for checks); "
                    "GPU training: --device cuda"
                )
            _warn_if_unstable(cfg, spec)
            runlib.save_run_files(run_dir, cfg, spec)
        _train_locked(ranks, cfg, spec, run_dir, resume, max_samples, minutes, no_progress, torch_threads)


def _train_locked(
    ranks, cfg, spec, run_dir: Path, resume, max_samples, minutes, no_progress, torch_threads
) -> None:
    """The part of `mimic train` that runs while rank 0 holds the run folder's lock."""
    from mimictools.app import run as runlib

    writer = ranks.is_writer
    say = console.print if writer else (lambda *args, **kwargs: None)
    env, runner = runlib.make_runner(cfg, spec, run_dir, resume=resume, torch_threads=torch_threads)
    envs = f"{spec.num_envs} envs"
    if ranks.distributed:
        envs = f"{spec.num_envs} envs per rank x {ranks.world_size} ranks = {spec.num_envs * ranks.world_size} envs"
    say(
        f"[bold]mimic train[/] {Path(spec.motion_file).name} on {Path(spec.char_file).name} · engine {cfg.engine.engine_name} · "
        f"{envs} · obs {env.obs_dim} · actions {env.action_dim} · run folder {run_dir}",
        soft_wrap=True,  # one line in a pipe or a log file
    )
    stop = f"{max_samples:,} samples" if max_samples else (f"{minutes:g} min" if minutes else "Ctrl-C")
    say(f"stops at {stop}; Ctrl-C (or SIGTERM) saves latest.pt and exits cleanly")
    if not writer:
        runner.train(max_samples=max_samples, max_minutes=minutes, resume=resume)
        return
    from mimictools.app.stability import PhysicsWatch
    from mimictools.cli.progress import TrainProgress

    watch = PhysicsWatch(env, cfg.engine.sim_freq, lambda m: console.print(f"[yellow]warning:[/] {m}"))
    with TrainProgress(max_samples=max_samples, max_minutes=minutes, live=not no_progress) as progress:
        result = runner.train(
            max_samples=max_samples, max_minutes=minutes, resume=resume, progress=watch.wrap(progress.update)
        )
    if watch.summary():
        console.print(f"[yellow]warning:[/] {watch.summary()}")
    if runner.capture:
        errs = runner.capture_errors
        console.print(
            "rollout and PPO update: CUDA graphs"
            if not errs
            else f"[yellow]CUDA graph capture failed, ran eagerly:[/] {errs[0]}"
        )
    _summary(result, run_dir)


def _launch(ctx: typer.Context, nproc: int) -> None:
    """``--nproc N``: this command again, without --nproc, as N ranks started by torch's launcher."""
    from mimictools.app.launch import launch_module

    console.print(
        f"launching {nproc} ranks (torchrun --standalone --nproc-per-node {nproc}); --num-envs is per rank"
    )
    code = launch_module(nproc, ["mimictools", "train"] + _child_args(ctx))
    if code != 0:
        raise typer.Exit(code)


def _child_args(ctx: typer.Context) -> List[str]:
    """The options this command was given (those not at their default), as a command line, minus --nproc."""
    args: List[str] = []
    for param in ctx.command.params:
        value = ctx.params.get(param.name)
        if param.name == "nproc" or value is None or value == param.default or not param.opts:
            continue
        flag = param.opts[0]
        if isinstance(value, bool):
            args.append(flag if value else param.secondary_opts[0])
        elif isinstance(value, (list, tuple)):
            for v in value:
                args += [flag, str(v)]
        else:
            args += [flag, str(value)]
    return args


def _warn_if_unstable(cfg, spec) -> None:
    """MuJoCo-family engines: a 5-second physics probe on the CPU (~1 s); warn when it blows up."""
    from mimictools.app.stability import probe_stability
    from mimictools.engines.registry import is_mujoco_family

    if not is_mujoco_family(cfg.engine.engine_name):
        return  # PhysX (Isaac Gym) integrates differently; the probe would not speak for it
    probe = probe_stability(cfg.env, cfg.engine, spec.motion_file, spec.char_file, motion_fps=spec.motion_fps)
    if not probe.stable:
        console.print(f"[yellow]warning:[/] {probe.message()}")


def _require_cuda(gpus: int = 1) -> None:
    import torch

    from mimictools.errors import MimicToolsError

    if not torch.cuda.is_available():
        raise MimicToolsError("--device cuda: torch sees no CUDA GPU (run `mimic doctor` for the reason)")
    if torch.cuda.device_count() < gpus:
        raise MimicToolsError(
            f"--nproc {gpus} --device cuda: one GPU per rank, torch sees {torch.cuda.device_count()}"
        )


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
