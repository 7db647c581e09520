"""`mimic motion inspect|convert|download`: read, check and convert motion clips.

Only typer/rich/stdlib at module level; numpy/torch come in with the library inside each command.
Other command modules may add commands to ``motion_app`` (e.g. ``retarget``).
"""

from __future__ import annotations

import enum
import json
import os
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from typing_extensions import Annotated

from mimictools.cli.console import SafeConsole

motion_app = typer.Typer(
    name="motion",
    help="Read, check and convert motion clips (MimicKit .pkl, DeepMimic .txt, dataset .yaml).",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    """Attach the ``motion`` command group to the root app."""
    __import__("mimictools.cli.retarget", fromlist=["register_retarget"]).register_retarget(motion_app)
    app.add_typer(motion_app, name="motion")


class LoopChoice(str, enum.Enum):
    wrap = "wrap"
    clamp = "clamp"


class DownloadSource(str, enum.Enum):
    deepmimic = "deepmimic"


# ---- helpers -----------------------------------------------------------------------------------------------
def default_char_path() -> Path:
    """The bundled ``data/humanoid.xml`` (``mimictools.paths.bundled_humanoid_xml()``); if it is missing,
    MimicKit's humanoid from the reference data (``$MIMIC_SHARED`` or ``<repo>/../shared``)."""
    from mimictools.errors import CharacterError, MimicToolsError

    try:
        from mimictools.paths import bundled_humanoid_xml

        return Path(bundled_humanoid_xml())
    except (ImportError, MimicToolsError):
        pass
    shared = os.environ.get("MIMIC_SHARED")
    roots = [Path(shared)] if shared else []
    roots.append(Path(__file__).resolve().parents[2].parent / "shared")
    for root in roots:
        p = root / "mimickit" / "data" / "assets" / "humanoid" / "humanoid.xml"
        if p.is_file():
            return p
    raise CharacterError(
        "no default character found (bundled data/humanoid.xml is missing); pass --char PATH.xml"
    )


def _load_char(char: Optional[Path]) -> Any:
    from mimictools.character.mjcf import load_character

    return load_character(char if char is not None else default_char_path())


def _fmt(x: Any, spec: str = ".3f", none: str = "-") -> str:
    if x is None:
        return none
    try:
        return format(x, spec)
    except (TypeError, ValueError):
        return str(x)


def _size(n: Optional[int]) -> str:
    if n is None:
        return "-"
    if n < 1024:
        return f"{n} B"
    if n < 1024 * 1024:
        return f"{n / 1024:.1f} KB"
    return f"{n / (1024 * 1024):.1f} MB"


def _fault_summary(items: List[Dict[str, Any]]) -> str:
    counts = {}  # type: Dict[str, int]
    for f in items:
        counts[f["kind"]] = counts.get(f["kind"], 0) + 1
    return ", ".join(f"{k}" + (f" x{v}" if v > 1 else "") for k, v in counts.items()) or "-"


# ---- inspect ---------------------------------------------------------------------------------------------------
def _collect(paths: List[Path]) -> Tuple[List[Tuple[Path, Optional[float], str]], List[Dict[str, str]]]:
    """[(clip path, weight or None, display name)], [errors] for the command-line PATHs."""
    from mimictools.errors import MimicToolsError
    from mimictools.motion.io import expand_motion_paths

    clips = []  # type: List[Tuple[Path, Optional[float], str]]
    errors = []  # type: List[Dict[str, str]]
    for p in paths:
        try:
            entries = expand_motion_paths(p)
        except MimicToolsError as exc:
            errors.append({"path": str(p), "error": str(exc)})
            continue
        is_dataset = p.is_file() and p.suffix.lower() in (".yaml", ".yml")
        if p.is_dir():
            base = str(p)
        elif is_dataset and entries:
            base = os.path.commonpath([str(c.parent) for c, _ in entries])
        else:
            base = str(p.parent)
        for clip, weight in entries:
            clips.append((clip, weight if is_dataset else None, os.path.relpath(str(clip), base)))
    return clips, errors


_KIND_SHORT = {"position": "pos", "spherical": "3-dof", "hinge": "hinge", "column": "col"}


def _joint_table(report: Dict[str, Any]) -> Table:
    t = Table(title=f"joints: {report['name']}", title_justify="left", expand=False)
    # narrow terminals: the ranges and limit notes wrap; the short columns keep their width
    t.add_column("joint", no_wrap=True, min_width=14)
    t.add_column("kind", no_wrap=True, min_width=5)
    t.add_column("cols", justify="right", no_wrap=True, min_width=5)
    t.add_column("range per column (rad | m)", overflow="fold")
    t.add_column("outside limits", overflow="fold")
    t.add_column("peak rad/s", justify="right", no_wrap=True, min_width=4)
    for j in report["joints"]:
        cols = j["columns"]
        cols_txt = str(cols[0]) if len(cols) == 1 else f"{cols[0]}-{cols[-1]}"
        ranges = "  ".join(
            f"{_fmt(lo, '.2f', 'nan')}..{_fmt(hi, '.2f', 'nan')}" for lo, hi in zip(j["min"], j["max"])
        )
        lim = j.get("limit_violations")
        lim_txt = "-"
        if lim is not None:
            lim_txt = "0"
            if lim["frames"]:
                lim_txt = f"{lim['frames']} fr, {lim['worst_excess_deg']:.1f}° {lim['worst_hinge']} @{lim['worst_frame']}"
        style = "red" if any(v is None for v in j["min"]) else ("yellow" if lim and lim["frames"] else None)
        t.add_row(
            j["name"],
            _KIND_SHORT.get(j["kind"], j["kind"]),
            cols_txt,
            ranges,
            lim_txt,
            _fmt(j.get("peak_ang_speed_rad_s"), ".1f"),
            style=style,
        )
    return t


def _print_details(out: Console, r: Dict[str, Any]) -> None:
    out.print(f"[bold]{escape(str(r['path']))}[/]")
    facts = [
        ("format", f"{r['variant']} ({', '.join(r['details'])})" if r["details"] else r["variant"]),
        ("fps", _fmt(r["fps"], "g")),
        ("frames", str(r["num_frames"])),
        ("duration", f"{_fmt(r['duration_s'], '.4f')} s  ((frames - 1) / fps)"),
        ("loop mode", r["loop_mode"]),
        ("file size", _size(r["file_size_bytes"])),
        ("columns", f"{r['columns']} (character {r['character']}: {r['character_columns']})"),
    ]
    if r.get("weight") is not None:
        facts.append(("weight", _fmt(r["weight"], "g")))
    root = r["root"]
    facts.append(
        (
            "root",
            f"path {_fmt(root['path_length_m'], '.2f')} m (net {_fmt(root['displacement_xy_m'], '.2f')} m), "
            f"height {_fmt(root['height_min_m'], '.2f')}-{_fmt(root['height_max_m'], '.2f')} m, "
            f"heading change {_fmt(root['heading_change_deg'], '.0f')}°, peak speed {_fmt(root['peak_speed_mps'], '.2f')} m/s",
        )
    )
    g = r.get("ground")
    if g:
        facts.append(
            (
                "ground",
                f"lowest point {_fmt(g['lowest_m'], '.3f')} m @ frame {g['lowest_frame']}, median per-frame lowest "
                f"{_fmt(g['median_lowest_m'], '.3f')} m; {g['frames_below']} frames below -{g['tolerance_m']:g} m",
            )
        )
    s = r.get("seam")
    if s:
        facts.append(
            (
                "wrap seam",
                f"last->first: root height {_fmt(s['root_height_diff_m'], '+.3f')} m, heading {_fmt(s['heading_diff_deg'], '+.1f')}°, "
                f"largest joint jump {_fmt(s['max_joint_diff_deg'], '.1f')}° ({s['max_joint']}), "
                f"root advances {_fmt(s['root_advance_xy_m'], '.2f')} m per cycle",
            )
        )
    ft = Table.grid(padding=(0, 2))
    ft.add_column(style="bold cyan", no_wrap=True)
    ft.add_column()
    for k, v in facts:
        ft.add_row(k, v)
    out.print(ft)
    if r["joints"]:
        out.print(_joint_table(r))
    for f in r["faults"]:
        out.print(f"[red]fault[/] [bold]{f['kind']}[/]: {escape(str(f['message']))}", soft_wrap=True)
    for w in r["warnings"]:
        out.print(f"[yellow]warning[/] [bold]{w['kind']}[/]: {escape(str(w['message']))}", soft_wrap=True)
    for n in r.get("notes", []):
        out.print(f"[dim]note {n['kind']}: {escape(str(n['message']))}[/]", soft_wrap=True)
    out.print()


#: Below this console width the folder table drops its format, size and lowest-point columns (still in --json and
#: in the one-clip view), so that the faults and warnings columns stay readable at 80 columns.
WIDE_TABLE_COLUMNS = 120


def _summary_table(reports: List[Dict[str, Any]], totals: Dict[str, Any], width: int = 160) -> Table:
    weighted = any(r.get("weight") is not None for r in reports)
    wide = width >= WIDE_TABLE_COLUMNS
    t = Table(title=f"{len(reports)} clips", title_justify="left", expand=False)
    longest = max(len(r["display_name"]) for r in reports)
    t.add_column("clip", overflow="fold", min_width=min(60 if wide else 20, longest))
    if wide:
        t.add_column("format", no_wrap=True)
    t.add_column("fps", justify="right", no_wrap=True)
    t.add_column("frames", justify="right", no_wrap=True)
    t.add_column("dur s", justify="right", no_wrap=True)
    t.add_column("loop", no_wrap=True)
    if wide:
        t.add_column("size", justify="right", no_wrap=True)
    if weighted:
        t.add_column("weight", justify="right", no_wrap=True)
    if wide:
        t.add_column("lowest m", justify="right", no_wrap=True)
    t.add_column("faults", overflow="fold", min_width=9, max_width=None if wide else 14)
    t.add_column("warn", justify="right", no_wrap=True)
    for r in reports:
        row = [r["display_name"]] + ([r["variant"].replace("mimickit-", "mk-")] if wide else [])
        row += [_fmt(r["fps"], "g"), str(r["num_frames"]), _fmt(r["duration_s"], ".2f"), r["loop_mode"]]
        if wide:
            row.append(_size(r["file_size_bytes"]))
        if weighted:
            row.append(_fmt(r.get("weight"), "g"))
        if wide:
            row.append(_fmt((r.get("ground") or {}).get("lowest_m"), ".3f"))
        row += [_fault_summary(r["faults"]), str(len(r["warnings"])) if r["warnings"] else "-"]
        t.add_row(*row, style="red" if any(f["kind"] == "nonfinite" for f in r["faults"]) else None)
    t.add_section()
    total_row = (
        ["total"]
        + ([""] if wide else [])
        + ["", str(totals["frames"]), _fmt(totals["duration_s"], ".1f"), ""]
    )
    if wide:
        total_row.append(_size(totals["file_size_bytes"]))
    if weighted:
        total_row.append("")
    if wide:
        total_row.append("")
    total_row += [f"{totals['clips_with_faults']} clips", str(totals["warnings"])]
    t.add_row(*total_row, style="bold")
    return t


@motion_app.command("inspect")
def inspect_cmd(
    paths: Annotated[
        List[Path],
        typer.Argument(help="Clips (.pkl/.txt), folders (searched recursively) or dataset .yaml files."),
    ],
    char: Annotated[
        Optional[Path],
        typer.Option("--char", help="Character MJCF the clips are for. Default: the bundled humanoid.xml."),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON document (for scripts) instead of tables.")
    ] = False,
    details: Annotated[
        bool, typer.Option("--details", help="Per-clip details and per-joint tables even for many clips.")
    ] = False,
    strict: Annotated[bool, typer.Option("--strict", help="Exit 1 when any clip has data faults.")] = False,
    fps: Annotated[
        Optional[float],
        typer.Option(
            "--fps", help="Frame rate of robot .csv clips (the file has none: 30 LAFAN1, 60 g1-moves)."
        ),
    ] = None,
    ground_tol: Annotated[
        float,
        typer.Option("--ground-tol", help="Report frames whose lowest body point is below -TOL metres."),
    ] = 0.05,
) -> None:
    """Report format, timing, DoF layout, joint ranges/limits, root path, ground contact and data faults.

    Exit 0 when every file parsed (faults are reported, not errors), 1 with --strict when a clip has
    faults, 2 when a file could not be read (the others are still reported).
    """
    import warnings

    import torch

    from mimictools.errors import MimicToolsError
    from mimictools.motion.checks import InspectOptions, inspect_motion
    from mimictools.motion.io import check_frame_width, load_motion

    # Per-clip tensors are small (<= a few thousand frames): extra intra-op threads only add overhead
    # (measured 2.8 s vs 7-13 s user time for all of shared/mimickit; docs/performance.md).
    torch.set_num_threads(1)
    options = InspectOptions(ground_tol_m=ground_tol)
    character = _load_char(char)
    clips, errors = _collect(paths)
    reports = []
    for clip, weight, name in clips:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                robot = Path(clip).suffix.lower() in (".csv", ".npz")  # joint count / body order checks
                m = load_motion(clip, warn=False, fps=fps, char=character if robot else None)
            check_frame_width(m, character)
            r = inspect_motion(m, character, options)
        except MimicToolsError as exc:
            errors.append({"path": str(clip), "error": str(exc)})
            continue
        r["display_name"] = name
        if weight is not None:
            r["weight"] = weight
        reports.append(r)

    totals = {
        "clips": len(reports),
        "unreadable": len(errors),
        "frames": sum(r["num_frames"] for r in reports),
        "duration_s": sum(r["duration_s"] or 0.0 for r in reports),
        "file_size_bytes": sum(r["file_size_bytes"] or 0 for r in reports),
        "faults": sum(len(r["faults"]) for r in reports),
        "clips_with_faults": sum(1 for r in reports if r["faults"]),
        "warnings": sum(len(r["warnings"]) for r in reports),
    }
    code = 2 if errors else (1 if strict and totals["faults"] else 0)
    if as_json:
        doc = {
            "character": getattr(character, "source", None),
            "clips": reports,
            "errors": errors,
            "totals": totals,
            "exit_code": code,
        }
        typer.echo(json.dumps(doc, indent=2, allow_nan=False))
        raise typer.Exit(code)

    out = SafeConsole(highlight=False)
    if not out.is_terminal and "COLUMNS" not in os.environ:
        out = SafeConsole(
            highlight=False, width=160
        )  # piped into a file: do not squeeze tables to 80 columns
    err = SafeConsole(stderr=True, highlight=False)
    if len(reports) == 1 and not details:
        _print_details(out, reports[0])
    elif reports:
        if details:
            for r in reports:
                _print_details(out, r)
        out.print(_summary_table(reports, totals, out.width))
        out.print(f"character: {character.source}  ({character.frame_width} columns)")
    for e in errors:
        err.print(f"[bold red]error:[/] {escape(str(e['error']))}", soft_wrap=True)
    if errors:
        err.print(f"[red]{len(errors)} file(s) could not be read[/]")
    raise typer.Exit(code)


# ---- convert ---------------------------------------------------------------------------------------------------
@motion_app.command("convert")
def convert_cmd(
    src: Annotated[
        Path,
        typer.Argument(
            help="DeepMimic .txt, MimicKit .pkl (any variant), GMR .pkl, robot .csv (Unitree/LAFAN1) or mjlab .npz."
        ),
    ],
    out: Annotated[
        Path,
        typer.Option(
            "-o",
            "--out",
            help="Output, by extension: .pkl (MimicKit, or GMR with --format gmr), .npz (mjlab; needs --char), "
            ".csv (Unitree). Written atomically.",
        ),
    ],
    loop: Annotated[
        Optional[LoopChoice], typer.Option("--loop", help="Override the loop mode (default: the source's).")
    ] = None,
    fps: Annotated[
        Optional[float],
        typer.Option(
            "--fps",
            help="Resample to this frame rate (keeps the duration; slerps rotations). For a robot .csv source "
            "(no fps in the file): its frame rate.",
        ),
    ] = None,
    char: Annotated[
        Optional[Path],
        typer.Option(
            "--char",
            help="Character MJCF (checks columns; needed by --fps and .npz). Default: bundled humanoid.",
        ),
    ] = None,
    out_format: Annotated[
        str, typer.Option("--format", help="For a .pkl output: 'mimickit' (default) or 'gmr'.")
    ] = "mimickit",
    fix_nonfinite: Annotated[
        bool,
        typer.Option(
            "--fix-nonfinite",
            help="Repair NaN/inf joints: interpolate from finite frames, or 0 (zero pose) when none is finite.",
        ),
    ] = False,
) -> None:
    """Convert a clip between MimicKit .pkl, DeepMimic .txt (read), GMR .pkl, robot .csv and mjlab .npz."""
    import warnings

    from rich.markup import escape

    from mimictools.errors import MotionFormatError
    from mimictools.motion.io import check_frame_width, load_motion, save_motion
    from mimictools.motion.motion import LOOP_CLAMP, LOOP_WRAP

    err = SafeConsole(stderr=True, highlight=False)
    character = _load_char(char)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        robot = src.suffix.lower() in (
            ".csv",
            ".npz",
            ".pkl",
        )  # joint count / body order checks (GMR, robots)
        m = load_motion(src, warn=False, fps=fps, char=character if robot else None)
    if m.variant == "robot-csv":
        fps = None  # --fps was the CSV's own frame rate, not a resampling request
    check_frame_width(m, character)
    for note in m.notes:
        if note.kind != "quat_sign_flip":
            err.print(f"[yellow]warning:[/] {escape(note.message)}", soft_wrap=True)
    if fix_nonfinite:
        from mimictools.motion.repair import fix_nonfinite as repair

        m, fixed = repair(m, character)
        for line in fixed:
            err.print(f"fixed: {escape(line)}", soft_wrap=True)
    if loop is not None:
        m = m.replace(loop_mode=LOOP_WRAP if loop == LoopChoice.wrap else LOOP_CLAMP)
    if fps is not None:
        from mimictools.motion.motion import MAX_FPS

        if not (fps > 0 and fps <= MAX_FPS):
            raise MotionFormatError(f"--fps {fps}: must be > 0 and at most {MAX_FPS:g}")
        from mimictools.motion.resample import resample_motion

        m = resample_motion(m, fps, character)
    save_motion(m, out, char=character, fmt=out_format)
    typer.echo(
        f"wrote {out}: {m.num_frames} frames at {m.fps:g} fps ({m.length_s:.3f} s), loop {m.loop_name}, "
        f"from {src} ({m.variant or 'motion'})"
    )


# ---- download --------------------------------------------------------------------------------------------------
@motion_app.command("download")
def download_cmd(
    source: Annotated[
        DownloadSource, typer.Argument(help="Which public clips: 'deepmimic' (humanoid3d clips).")
    ],
    to: Annotated[Path, typer.Option("--to", help="Folder for the clips (created if missing).")],
    base_url: Annotated[
        Optional[str],
        typer.Option(
            "--base-url", help="Where the humanoid3d_*.txt files live. Default: xbpeng/DeepMimic on GitHub."
        ),
    ] = None,
    clips: Annotated[
        Optional[str],
        typer.Option("--clips", help="Comma-separated clip names (e.g. 'spinkick,run'). Default: all 20."),
    ] = None,
    keep_txt: Annotated[
        bool,
        typer.Option("--keep-txt/--no-keep-txt", help="Keep the downloaded DeepMimic .txt next to the .pkl."),
    ] = True,
) -> None:
    """Download the public DeepMimic humanoid3d clips and convert each to a MimicKit .pkl."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    from mimictools.motion.download import DEFAULT_DEEPMIMIC_BASE_URL, download_deepmimic, parse_clip_list

    names = parse_clip_list(clips)
    url = base_url or DEFAULT_DEEPMIMIC_BASE_URL
    err = SafeConsole(stderr=True, highlight=False)
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=err,
        disable=not err.is_terminal,
    )
    tasks = {}  # type: Dict[str, Any]

    def on_progress(clip: str, done: int, total: Optional[int]) -> None:
        if clip not in tasks:
            tasks[clip] = progress.add_task(clip, total=total)
        progress.update(tasks[clip], completed=done, total=total)

    with progress:
        results = download_deepmimic(to, base_url=url, clips=names, keep_txt=keep_txt, progress=on_progress)
    failed = 0
    for r in results:
        if r.error:
            failed += 1
            err.print(f"[bold red]error:[/] {escape(str(r.clip))}: {escape(str(r.error))}", soft_wrap=True)
        else:
            typer.echo(f"{r.clip}: {r.pkl_path} ({r.num_frames} frames at {r.fps:g} fps, loop {r.loop_name})")
            for note in r.warnings:
                err.print(f"[yellow]warning:[/] {escape(str(note))}", soft_wrap=True)
    if failed:
        err.print(f"[red]{failed} of {len(results)} clips failed[/]")
        raise typer.Exit(2)
    sys.stdout.flush()
