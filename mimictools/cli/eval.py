"""`mimic eval` (tracking errors, plots, video of a trained policy) and `mimic plot-log`."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from typing_extensions import Annotated


def plot_log(
    logs: Annotated[List[Path], typer.Argument(help="Training logs (ours: RUN/log.txt, or MimicKit's *_log.txt).", show_default=False)],
    out: Annotated[Path, typer.Option("--out", "-o", help="PNG to write.")] = Path("training_curves.png"),
    columns: Annotated[
        str, typer.Option(help="Comma-separated log columns to plot.")
    ] = "Test_Return,Train_Return,Body_Pos_Err,Root_Pos_Err",
    x: Annotated[str, typer.Option(help="x axis: minutes | samples | iteration.")] = "minutes",
    labels: Annotated[Optional[str], typer.Option(help="Comma-separated legend labels (default: file names).")] = None,
) -> None:
    """Plot training curves from one or more logs on the same axes (e.g. ours vs MimicKit's)."""
    from mimictools.eval.logs import read_log
    from mimictools.eval.plots import training_curves
    from mimictools.io_util import save_figure

    names = [s.strip() for s in labels.split(",")] if labels else [_label(p) for p in logs]
    if len(names) != len(logs):
        raise typer.BadParameter(f"--labels has {len(names)} entries for {len(logs)} logs")
    fig = training_curves([(n, read_log(p)) for n, p in zip(names, logs)], [c.strip() for c in columns.split(",")], x=x)
    save_figure(fig, out)
    typer.echo(f"wrote {out}")


def _label(path: Path) -> str:
    return path.parent.name if path.name in ("log.txt", "train_log.txt") else path.stem


def register(app: typer.Typer) -> None:
    app.command("plot-log")(plot_log)
