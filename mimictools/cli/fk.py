"""`mimic fk-check`: prove that our kinematics and the physics engine agree on every frame."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, List, Optional, Tuple

import typer
from rich.console import Console
from rich.table import Table
from typing_extensions import Annotated

from mimictools.cli.console import SafeConsole
from mimictools.cli.options import FPS_OPTION


def fk_check(
    motions: Annotated[
        Optional[List[Path]],
        typer.Argument(
            help="Clips (.pkl/.txt/.csv/.npz), folders (searched recursively) or dataset .yaml files. "
            "None: check --random random poses instead.",
            show_default=False,
        ),
    ] = None,
    char: Annotated[
        Optional[Path], typer.Option("--char", help="Character MJCF. Default: the bundled data/humanoid.xml.")
    ] = None,
    tol_mm: Annotated[float, typer.Option("--tol-mm", help="Max allowed body position error (mm).")] = 0.1,
    tol_deg: Annotated[
        float, typer.Option("--tol-deg", help="Max allowed body rotation and round-trip error (deg).")
    ] = 0.01,
    plot: Annotated[
        Optional[Path], typer.Option("--plot", help="Write a PNG of the per-frame max position error.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document (no table).")] = False,
    engine: Annotated[
        Optional[str],
        typer.Option(
            "--engine",
            help="Reference: default MuJoCo's mj_kinematics on the MJCF; 'mujoco' = the MuJoCo CPU engine "
            "through the Engine protocol (set_state, body_pos/body_rot); 'mjwarp' = the MuJoCo Warp engine "
            "the same way (CUDA when available, else Warp's CPU device); 'isaacgym' = Isaac Gym, each pose "
            "held for one control step (its body poses refresh only in simulate).",
        ),
    ] = None,
    random: Annotated[
        int, typer.Option("--random", help="Random poses to check when no MOTION is given.")
    ] = 1000,
    seed: Annotated[int, typer.Option("--seed", help="Seed for --random.")] = 0,
    strict: Annotated[
        bool, typer.Option("--strict", help="Fail (exit 1) on clips with NaN/inf frames too.")
    ] = False,
    fps: Annotated[Optional[float], FPS_OPTION] = None,
) -> None:
    """Compare our batched FK (float64) with the engine's kinematics on every frame; exit 1 over tolerance.

    Reports per-body max/mean position (mm) and rotation (deg) error, and the DoF -> rotation -> DoF and
    hinge-angle round trips. Frames with NaN/inf are reported as bad frames and skipped.
    """
    import torch

    from mimictools.app import fkcheck
    from mimictools.character.mjcf import load_character
    from mimictools.errors import MimicToolsError
    from mimictools.paths import bundled_humanoid_xml

    # per-clip tensors are small and the time goes to the per-frame MuJoCo loop: extra torch threads only
    # add synchronisation (4x slower wall time with 2 threads on a loaded 2-core machine)
    torch.set_num_threads(1)
    if tol_mm <= 0 or tol_deg <= 0:
        raise MimicToolsError(f"tolerances must be > 0 (got --tol-mm {tol_mm}, --tol-deg {tol_deg})")
    char_path = char if char is not None else bundled_humanoid_xml()
    character = load_character(char_path)

    reference, ref_name, eng = fkcheck.make_reference(character, engine)

    results = []
    err = SafeConsole(stderr=True, highlight=False)
    try:
        if motions:
            clips = _load_clips(motions, character, fps)
            with err.status("checking...") if (not as_json and err.is_terminal) else _Null():
                for source, frames in clips:
                    results.append(fkcheck.check_frames(character, frames, reference, source=source))
        else:
            frames = fkcheck.random_frames(character, random, seed=seed)
            source = f"<{random} random poses, seed {seed}>"
            results.append(fkcheck.check_frames(character, frames, reference, source=source))
    finally:
        if eng is not None:
            eng.close()

    summary = fkcheck.summarize(results, tol_mm, tol_deg, strict)
    code = 0 if summary["passed"] else 1
    if plot is not None:
        from mimictools.io_util import save_figure

        save_figure(fkcheck.plot_fk_errors(results, tol_mm), plot)
    if as_json:
        doc = {
            "char": str(char_path),
            "reference": ref_name,
            "tol_mm": tol_mm,
            "tol_deg": tol_deg,
            "strict": strict,
            "summary": summary,
            "clips": [r.to_dict(tol_mm, tol_deg, strict) for r in results],
        }
        typer.echo(json.dumps(doc, indent=2))
        raise typer.Exit(code)

    out = SafeConsole(highlight=False)
    out.print(f"character [bold]{character.name}[/] ({char_path}), reference: {ref_name}")
    if len(results) == 1:
        _print_bodies(out, results[0])
    _print_clips(out, results, tol_mm, tol_deg, strict)
    verdict = "[bold green]PASS[/]" if code == 0 else "[bold red]FAIL[/]"
    out.print(
        f"{verdict}: {summary['num_clips']} clip(s), {summary['num_checked']} frames checked, "
        f"max position error {_num(summary['max_pos_err_mm'])} mm (tol {tol_mm:g}), max rotation error "
        f"{_num(summary['max_rot_err_deg'])} deg, max round trip {_num(summary['max_roundtrip_deg'])} deg "
        f"(tol {tol_deg:g})"
    )
    if summary["num_checked"] == 0:
        out.print(
            "[bold red]nothing was checked:[/] every frame has NaN/inf; repair a clip with "
            "`mimic motion convert CLIP -o fixed.pkl --fix-nonfinite`"
        )
    if summary["num_bad_frames"]:
        out.print(
            f"[yellow]warning:[/] {summary['num_bad_frames']} bad frame(s) with NaN/inf were skipped"
            + (" (--strict: counted as failures)" if strict else " (use --strict to fail on them)")
        )
    if plot is not None:
        out.print(f"wrote {plot}")
    raise typer.Exit(code)


class _Null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: Any) -> None:
        return None


def _num(x: Any) -> str:
    return f"{x:.3g}" if isinstance(x, float) else str(x)


def _load_clips(paths: List[Path], character: Any, fps: Optional[float] = None) -> List[Tuple[str, Any]]:
    """(source, frames) for every clip; folders recursively, dataset yamls by their entries.

    ``fps`` (``--fps``) is checked like every command's; without it a robot .csv is read at 30 fps: the
    per-frame kinematics checked here do not depend on the frame rate."""
    from mimictools.motion.io import expand_motion_paths, load_motion, resolve_clips_fps

    resolve_clips_fps(paths, fps, required=False)  # checks a given --fps like every command does
    clips = []
    for p in paths:
        for f, _ in expand_motion_paths(p):
            motion = load_motion(f, char=character, warn=False, fps=fps if fps is not None else 30.0)
            clips.append((str(f), motion.frames))
    return clips


def _print_bodies(out: Console, r: Any) -> None:
    t = Table(title=f"per body: {r.source}", expand=False)
    for col in ("body", "max pos (mm)", "mean pos (mm)", "max rot (deg)", "mean rot (deg)"):
        t.add_column(col, justify="left" if col == "body" else "right")
    for row in r.per_body():
        t.add_row(
            row["body"],
            f"{row['max_pos_err_mm']:.2e}",
            f"{row['mean_pos_err_mm']:.2e}",
            f"{row['max_rot_err_deg']:.2e}",
            f"{row['mean_rot_err_deg']:.2e}",
        )
    out.print(t)


def _print_clips(out: Console, results: List[Any], tol_mm: float, tol_deg: float, strict: bool) -> None:
    t = Table(title="per clip", expand=False)
    for col in (
        "clip",
        "frames",
        "bad",
        "max pos (mm)",
        "mean pos (mm)",
        "max rot (deg)",
        "round trip (deg)",
        "",
    ):
        t.add_column(col, justify="left" if col == "clip" else "right")
    common = _common_parent([r.source for r in results])
    for r in results:
        ok = r.passed(tol_mm, tol_deg, strict)
        name = r.source[len(common) :] if common else r.source
        t.add_row(
            name,
            str(r.num_frames),
            f"[yellow]{r.bad_frames.size}[/]" if r.bad_frames.size else "0",
            f"{r.max_pos_err_mm:.2e}",
            f"{r.mean_pos_err_mm:.2e}",
            f"{r.max_rot_err_deg:.2e}",
            f"{r.max_roundtrip_deg:.2e}",
            "[bold red]FAIL[/]" if not ok else ("[yellow]skipped[/]" if r.num_valid == 0 else "[green]ok[/]"),
        )
    out.print(t)


def _common_parent(sources: List[str]) -> str:
    if len(sources) < 2:
        return ""
    import os

    try:
        common = os.path.commonpath(sources)
    except ValueError:
        return ""
    return common + os.sep if common else ""


def register(app: typer.Typer) -> None:
    app.command("fk-check")(fk_check)
