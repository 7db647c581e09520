"""`mimic motion retarget`: BVH mocap and other characters' clips onto any MJCF character.

Only typer/rich/stdlib at module level; torch/numpy come in with the library inside the command.
``register_retarget(motion_app)`` is called by ``mimictools/cli/motion.py``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Dict, Optional

import typer
from rich.console import Console
from rich.table import Table
from typing_extensions import Annotated


def _parse_scale(value: str) -> Optional[float]:
    from mimictools.errors import ConfigError

    if value.strip().lower() == "auto":
        return None
    try:
        x = float(value)
    except ValueError:
        raise ConfigError(f"--scale must be 'auto' or a number > 0, got {value!r}") from None
    if not x > 0.0:
        raise ConfigError(f"--scale must be 'auto' or a number > 0, got {value!r}")
    return x


def _summary_table(r: Dict[str, Any]) -> Table:
    t = Table(title=f"retarget: {Path(r['source']).name} -> {Path(r['target']).name}", show_header=False)
    t.add_column("", style="bold")
    t.add_column("")
    ok = "[green]0[/]" if r["limit_violations"] == 0 else f"[bold red]{r['limit_violations']}[/]"
    rows = [
        ("output", r["output"]),
        (
            "mapping",
            r["mapping"]
            + ("" if Path(r["mapping_file"]).stem == r["mapping"] else f" ({r['mapping_file']})"),
        ),
        (
            "frames",
            f"{r['num_frames']} at {r['fps']:g} fps (source {r['source_frames']} at {r['source_fps']:g} fps)",
        ),
        (
            "scale",
            f"{r['scale']:.4f}"
            + (f", ground shift {r['ground_shift_cm']:+.1f} cm" if r["ground_shift_cm"] else ""),
        ),
        (
            "position error",
            f"mean {r['pos_err_mean_cm']:.2f} cm, max {r['pos_err_max_cm']:.2f} cm (after scaling)",
        ),
        ("joint-limit violations", f"{ok} (max {r['limit_violation_max_rad']:.2e} rad)"),
        (
            "ground penetration",
            f"max {r['penetration_max_cm']:.2f} cm in {r['penetration_frames']} frames (final lift max {r['lift_max_cm']:.2f} cm)",
        ),
        (
            "foot sliding in contact",
            f"{r['foot_slide_cm_s']:.1f} cm/s (source {r['source_foot_slide_cm_s']:.1f} cm/s; {r['contact_frames']} contact frames)",
        ),
        (
            "time",
            f"{r['time_s']:.2f} s total, retarget {r['solve_time_s']:.2f} s = {r['frames_per_s']:.0f} frames/s",
        ),
    ]
    for k, v in rows:
        t.add_row(k, v)
    for note in r["notes"]:
        t.add_row("note", note)
    return t


def _points_table(r: Dict[str, Any]) -> Table:
    t = Table(title="mapped points: position error after scaling (cm)")
    t.add_column("target point")
    t.add_column("mean", justify="right")
    t.add_column("max", justify="right")
    for name, mean in r["pos_err_mean_cm_per_point"].items():
        t.add_row(name, f"{mean:.2f}", f"{r['pos_err_max_cm_per_point'][name]:.2f}")
    return t


def retarget_cmd(
    src: Annotated[
        Path,
        typer.Argument(help="Source clip: BVH mocap, MimicKit .pkl or DeepMimic .txt.", show_default=False),
    ],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Output clip (MimicKit .pkl).", show_default=False)
    ],
    to: Annotated[
        Optional[Path], typer.Option("--to", help="Target character MJCF. Default: the bundled humanoid.xml.")
    ] = None,
    map_file: Annotated[
        Optional[str],
        typer.Option(
            "--map",
            help="Mapping YAML (docs/retargeting.md) or a preset name: cmu_bvh_to_humanoid, sfu_bvh_to_humanoid, "
            "humanoid_to_humanoid. Default: the preset whose joint names fit the source and target.",
        ),
    ] = None,
    src_char: Annotated[
        Optional[Path],
        typer.Option(
            "--src-char", help="Character the .pkl/.txt source was made for. Default: the bundled humanoid."
        ),
    ] = None,
    scale: Annotated[
        str,
        typer.Option(
            "--scale",
            help="'auto': every segment gets the target's length, the root path the leg-length ratio; "
            "or a number: uniform scale of the source (after unit conversion).",
        ),
    ] = "auto",
    fps: Annotated[
        Optional[float],
        typer.Option(
            "--fps",
            help="Output frame rate (default: the source's). For a robot .csv source, which stores none: its "
            "frame rate (the output keeps it).",
        ),
    ] = None,
    report: Annotated[
        Optional[Path],
        typer.Option("--report", help="Write a PNG overlay of source vs retargeted trajectories."),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the quality report as one JSON document.")
    ] = False,
    src_up: Annotated[
        Optional[str],
        typer.Option("--src-up", help="BVH up axis: y or z. Default: detected from the rest pose."),
    ] = None,
    src_unit: Annotated[
        Optional[str],
        typer.Option(
            "--src-unit",
            help="BVH length unit: m, cm, mm, inch, cmu (inches/0.45), or metres per unit. Default: detected from the hip height.",
        ),
    ] = None,
    skip_first: Annotated[
        Optional[bool],
        typer.Option(
            "--skip-first/--keep-first",
            help="Drop / keep BVH frame 0. Default: dropped only when it is an inserted rest pose (CMU's BVH files).",
            show_default=False,
        ),
    ] = None,
    ground_clearance: Annotated[
        bool,
        typer.Option(
            "--ground-clearance/--no-ground-clearance",
            help="Keep every geom above z = 0 (on by default; off for diagnostics such as round trips of clips that penetrate the floor).",
        ),
    ] = True,
    ignore_limits: Annotated[
        bool,
        typer.Option("--ignore-limits", help="Do not clamp to the target's joint ranges (diagnostics only)."),
    ] = False,
    iterations: Annotated[
        int, typer.Option("--iterations", help="Gauss-Newton iterations (then 3 more with the feet pinned).")
    ] = 6,
    threads: Annotated[int, typer.Option("--threads", help="Torch CPU threads for the solve.")] = 1,
) -> None:
    """Retarget a clip onto a character: whole-clip batched optimisation, joint limits kept exactly.

    Prints a quality report (position error after scaling, joint-limit violations, ground penetration,
    foot sliding, speed). Exit 0 on success, 1 if the result failed its checks (non-finite values or
    joint-limit violations), 2 on bad input.
    """
    t_start = time.perf_counter()
    import torch

    from mimictools.character.mjcf import load_character
    from mimictools.cli.motion import default_char_path
    from mimictools.errors import ConfigError
    from mimictools.motion.io import resolve_clip_fps, save_motion
    from mimictools.motion.motion import Motion
    from mimictools.motion.retarget.mapping import load_mapping, select_preset
    from mimictools.motion.retarget.report import plot_report, quality_report
    from mimictools.motion.retarget.solve import RetargetOptions, retarget
    from mimictools.motion.retarget.source import load_source

    if threads < 1:
        raise ConfigError(f"--threads must be >= 1, got {threads}")
    if iterations < 1:
        raise ConfigError(f"--iterations must be >= 1, got {iterations}")
    if out.suffix.lower() not in (".pkl", ".pickle"):
        raise ConfigError(f"-o {out}: the output is a MimicKit clip; give it a .pkl name")
    scale_value = _parse_scale(scale)
    # small per-frame tensors: torch's default threads only add overhead (and thrash a shared machine)
    old_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        target_path = to if to is not None else default_char_path()
        char = load_character(target_path)
        src_fps = resolve_clip_fps(src, fps, given=False) if src.suffix.lower() == ".csv" else None
        source = load_source(
            src, src_char=src_char, up=src_up, unit=src_unit, skip_first=skip_first, fps=src_fps
        )
        if map_file is not None:
            mapping = load_mapping(map_file)
        else:
            mapping = select_preset(source.names, char.body_names, source.kind)
        options = RetargetOptions(
            scale=scale_value,
            fps=None if src_fps is not None else fps,  # a .csv's --fps was its own rate, not a resampling
            ground_constraint=ground_clearance,
            respect_limits=not ignore_limits,
            iterations=iterations,
        )
        result = retarget(source, char, mapping, options)
        motion = Motion(fps=result.fps, loop_mode=result.loop_mode, frames=result.frames, source=str(out))
        save_motion(motion, out)
        rep = quality_report(
            result, char, source_path=str(src), output_path=str(out), time_s=time.perf_counter() - t_start
        )
        if report is not None:
            plot_report(result, char, rep, report)
    finally:
        torch.set_num_threads(old_threads)
    d = rep.to_dict()
    if report is not None:
        d["report_png"] = str(report)
    failed = (not rep.finite) or (rep.limit_violations > 0 and not ignore_limits)
    d["ok"] = not failed
    if as_json:
        typer.echo(json.dumps(d, indent=2))
    else:
        con = Console(highlight=False)
        con.print(_summary_table(d))
        con.print(_points_table(d))
        if report is not None:
            con.print(f"wrote {report}")
    if failed:
        err = Console(stderr=True, highlight=False)
        why = "non-finite values" if not rep.finite else f"{rep.limit_violations} joint-limit violations"
        err.print(f"[bold red]check failed:[/] {out}: {why}")
        raise typer.Exit(1)


def register_retarget(motion_app: typer.Typer) -> None:
    """Add ``retarget`` to the ``mimic motion`` command group."""
    motion_app.command("retarget")(retarget_cmd)
