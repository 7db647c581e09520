"""`mimic eval` (tracking errors, plots, video of a trained policy) and `mimic plot-log`."""

from __future__ import annotations

from pathlib import Path
from typing import Any, List, Optional

import typer
from typing_extensions import Annotated

from mimictools.cli.console import console, err_console
from mimictools.cli.options import FPS_OPTION


def plot_log(
    logs: Annotated[
        List[Path],
        typer.Argument(
            help="Training logs (ours: RUN/log.txt, or MimicKit's *_log.txt).", show_default=False
        ),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="PNG to write.")] = Path("training_curves.png"),
    columns: Annotated[
        str, typer.Option(help="Comma-separated log columns to plot.")
    ] = "Test_Return,Train_Return,Body_Pos_Err,Root_Pos_Err",
    x: Annotated[str, typer.Option(help="x axis: minutes | samples | iteration.")] = "minutes",
    labels: Annotated[
        Optional[str],
        typer.Option(
            help="Legend labels separated by commas (or by semicolons when a label has a comma); default: file names."
        ),
    ] = None,
) -> None:
    """Plot training curves from one or more logs on the same axes (e.g. ours vs MimicKit's)."""
    from mimictools.eval.logs import read_log
    from mimictools.eval.plots import training_curves
    from mimictools.io_util import save_figure

    sep = ";" if labels and ";" in labels else ","
    names = [s.strip() for s in labels.split(sep)] if labels else [_label(p) for p in logs]
    if len(names) != len(logs):
        raise typer.BadParameter(f"--labels has {len(names)} entries for {len(logs)} logs")
    fig = training_curves(
        [(n, read_log(p)) for n, p in zip(names, logs)], [c.strip() for c in columns.split(",")], x=x
    )
    save_figure(fig, out)
    typer.echo(f"wrote {out}")


def _label(path: Path) -> str:
    return path.parent.name if path.name in ("log.txt", "train_log.txt") else path.stem


def eval_cmd(
    model: Annotated[
        Path,
        typer.Option(
            "--model",
            "-m",
            help="Checkpoint (RUN/best.pt, latest.pt, iter_*.pt) or a run folder (its best.pt). Its folder must hold the run's config.yaml and run.json.",
            show_default=False,
        ),
    ],
    motion: Annotated[
        Optional[Path],
        typer.Option(help="Evaluate on this clip / dataset / folder (same character). Default: the run's."),
    ] = None,
    fps: Annotated[Optional[float], FPS_OPTION] = None,
    episodes: Annotated[
        Optional[int], typer.Option(help="Episodes to run (default: one per clip; 8 with --rand-start).")
    ] = None,
    num_envs: Annotated[
        Optional[int], typer.Option("--num-envs", help="Parallel envs (default: min(episodes, 16)).")
    ] = None,
    rand_start: Annotated[
        bool,
        typer.Option("--rand-start", help="Start episodes at random clip times (seeded) instead of t = 0."),
    ] = False,
    seed: Annotated[int, typer.Option(help="Seed of --rand-start's start times.")] = 0,
    episode_length: Annotated[
        Optional[float],
        typer.Option("--episode-length", help="Episode length in s (default: the run's episode_length)."),
    ] = None,
    fail_dist: Annotated[
        float,
        typer.Option(
            "--fail-dist",
            help="An episode fails if its mean world body position error ever exceeds this (m).",
        ),
    ] = 0.5,
    min_success: Annotated[
        Optional[float],
        typer.Option("--min-success", help="Exit with code 1 if the success rate (0..1) is below this."),
    ] = None,
    out: Annotated[
        Optional[Path],
        typer.Option("--out", help="Folder for metrics.json, errors.npz, errors.csv (default: RUN/eval)."),
    ] = None,
    plot: Annotated[Optional[Path], typer.Option("--plot", help="Write PNG plots into this folder.")] = None,
    joints: Annotated[
        Optional[str],
        typer.Option(
            help="Comma-separated joint angles to plot, e.g. right_knee,left_knee,right_hip_y (default: a few of knees, hips, elbow)."
        ),
    ] = None,
    video: Annotated[
        Optional[Path],
        typer.Option(
            "--video",
            help="Render an mp4 of the simulated character beside the reference ghost (needs EGL or OSMesa, and imageio-ffmpeg).",
        ),
    ] = None,
    video_size: Annotated[str, typer.Option("--video-size", help="Video size WIDTHxHEIGHT.")] = "640x480",
    episode: Annotated[
        int, typer.Option("--episode", help="Which episode (0-based) the time plots and the video show.")
    ] = 0,
    engine: Annotated[
        Optional[str],
        typer.Option(
            help="Physics engine: mujoco | mjwarp | isaacgym (default: the run's). Another engine than the "
            "training one is a sim2sim evaluation (docs/deploy.md)."
        ),
    ] = None,
    device: Annotated[str, typer.Option(help="torch device for task + policy: cpu or cuda.")] = "cpu",
    threads: Annotated[int, typer.Option(help="CPU engine worker threads (0 = all cores).")] = 0,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the metrics as one JSON document (no table).")
    ] = False,
) -> None:
    """Evaluate a trained policy: tracking errors, success rate, per-frame errors, plots and video.

    Deterministic policy (mean action), test mode, episodes from clip time 0 (see docs/eval.md).
    """
    from mimictools.app import evaluate as ev
    from mimictools.errors import MimicToolsError

    if min_success is not None and not 0.0 <= min_success <= 1.0:
        raise MimicToolsError(f"--min-success is a rate in [0, 1], got {min_success}")
    joint_list = [j.strip() for j in joints.split(",") if j.strip()] if joints else None
    if joint_list:
        ev.check_joint_names(model, joint_list)
    size = None
    if video is not None:
        from mimictools.eval.video import select_gl_backend
        from mimictools.eval.video import video_size as parse_size

        size = parse_size(video_size)
        try:
            import imageio_ffmpeg  # noqa: F401
        except ImportError:
            raise MimicToolsError(
                "--video needs the optional package imageio-ffmpeg: pip install imageio-ffmpeg"
            ) from None
        select_gl_backend()  # fail before the rollout, not after it
    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise MimicToolsError("--device cuda: torch sees no CUDA GPU (run `mimic doctor` for the reason)")
    else:
        import torch

        torch.set_num_threads(1)  # the physics threads own the cores

    options = ev.EvalOptions(
        motion=str(motion) if motion is not None else None,
        episodes=episodes,
        num_envs=num_envs,
        rand_start=rand_start,
        seed=seed,
        episode_length_s=episode_length,
        fail_dist_m=fail_dist,
        device=device,
        engine=engine,
        num_threads=threads,
        fps=fps,
    )
    if as_json or not err_console.is_terminal:
        result = ev.evaluate(model, options)
    else:
        done = [0]

        def tick(_ep: Any) -> None:
            done[0] += 1
            status.update(f"evaluating... {done[0]} episode(s) done")

        with err_console.status("evaluating...") as status:
            result = ev.evaluate(model, options, on_episode=tick)
    out_dir = out if out is not None else result.run_dir / "eval"
    written = ev.write_errors(result, out_dir)
    if plot is not None:
        written += ev.write_plots(result, plot, joints=joint_list, episode=episode)
    if video is not None and size is not None:
        written.append(ev.write_video(result, video, episode=episode, width=size[0], height=size[1]))

    m = result.metrics
    if as_json:
        typer.echo(ev.metrics_json(result), nl=False)
    else:
        _print_table(m)
        console.print("wrote " + ", ".join(str(p) for p in written))
    if min_success is not None and m["success_rate"] < min_success:
        if not as_json:
            err_console.print(
                f"[bold red]check failed:[/] success rate {m['success_rate']:.2f} < --min-success {min_success:g}"
            )
        raise typer.Exit(1)


def _print_table(m: dict) -> None:
    import math

    from rich.table import Table

    from mimictools.eval.metrics import TRACKING_ERROR_UNITS

    console.print(
        f"[bold]mimic eval[/] {m['checkpoint']} on {Path(m['motion_file']).name} · {m['episodes']} episode(s), "
        f"{m['frames']} frames · {'random starts' if m['rand_start'] else 'from t = 0'} · deterministic policy"
        f" · engine {m['engine']}"
        + (f" (sim2sim: trained on {m['trained_engine']})" if m["engine"] != m.get("trained_engine") else "")
    )
    t = Table(title="MimicKit tracking errors (mean over frames)", title_justify="left")
    for col in ("error", "value", "unit", "≈"):
        t.add_column(col, justify="right" if col in ("value", "≈") else "left")
    for k, v in m["tracking_errors"].items():
        unit = TRACKING_ERROR_UNITS.get(k, "")
        human = (
            f"{100 * v:.1f} cm" if unit == "m" else (f"{math.degrees(v):.1f} deg" if unit == "rad" else "")
        )
        t.add_row(k, f"{v:.4f}", unit, human)
    console.print(t)

    s = Table(title="Summary", title_justify="left")
    s.add_column("metric")
    s.add_column("value")
    rate = m["success_rate"]
    color = "green" if rate >= 0.999 else ("yellow" if rate > 0 else "red")
    f = m["failures"]
    s.add_row(
        "success rate",
        f"[{color}]{100 * rate:.0f} %[/] tracked the clip · {f['early_termination']} early termination(s), "
        f"{f.get('tracking_err', 0)} over {100 * m.get('success_max_err_m', 0):g} cm Body_Pos_Err, "
        f"{f['body_pos_err']} over {m['fail_dist_m']:g} m world",
    )
    bp = m["body_pos_err_mm"]
    s.add_row("body pos error", f"{bp['global']:.1f} mm world · {bp['root_relative']:.1f} mm root-relative")
    r = m["return"]
    s.add_row("return / episode", f"{r['mean']:.2f} ± {r['std']:.2f} ({r['per_step']:.3f} per step)")
    el = m["episode_length"]
    s.add_row("episode length", f"{el['mean_steps']:.1f} steps ({el['mean_s']:.2f} s)")
    ja = m.get("joint_angles_deg") or {}
    moving = sorted(ja.items(), key=lambda kv: -(kv[1]["ref_max"] - kv[1]["ref_min"]))[:2]
    if moving:  # the clip's main joint motion, reproduced or not
        s.add_row(
            "main joints",
            ", ".join(
                f"{n} ref {_deg(v['ref_min'])}..{_deg(v['ref_max'])} deg, sim {_deg(v['sim_min'])}..{_deg(v['sim_max'])} "
                f"(error mean {v['mean_abs_err']:.1f}, max {v['max_abs_err']:.1f})"
                for n, v in moving
            ),
        )
    worst = sorted(m["per_joint"].items(), key=lambda kv: -kv[1]["rot_err_deg"])[:3]
    s.add_row("worst joints", ", ".join(f"{n} {v['rot_err_deg']:.1f} deg" for n, v in worst))
    worst_b = sorted(m["per_body"].items(), key=lambda kv: -kv[1]["pos_err_local_mm"])[:3]
    s.add_row(
        "worst bodies",
        ", ".join(f"{n} {v['pos_err_local_mm']:.0f} mm" for n, v in worst_b) + " (root-relative)",
    )
    console.print(s)
    if "per_clip" in m:
        c = Table(title="Per clip", title_justify="left")
        for col in ("clip", "episodes", "success", "return", "body pos err (mm)"):
            c.add_column(col, justify="left" if col == "clip" else "right")
        for name, v in m["per_clip"].items():
            c.add_row(
                name,
                str(v["episodes"]),
                f"{100 * v['success_rate']:.0f} %",
                f"{v['return_mean']:.2f}",
                f"{v['body_pos_err_mm']:.1f}",
            )
        console.print(c)


def _deg(x: float) -> str:
    return f"{x:.0f}".replace("-0", "0") if abs(x) < 0.5 else f"{x:.0f}"


def register(app: typer.Typer) -> None:
    app.command("eval")(eval_cmd)
    app.command("plot-log")(plot_log)
