"""`mimic doctor`: check this machine for the mujoco / mjwarp / isaacgym engines and print the exact fixes."""

from __future__ import annotations

import enum
import json
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table
from typing_extensions import Annotated

_STYLE = {"ok": "green", "warn": "yellow", "fail": "bold red", "skip": "dim"}


class EngineName(str, enum.Enum):
    mujoco = "mujoco"
    mjwarp = "mjwarp"
    isaacgym = "isaacgym"


def doctor(
    engine: Annotated[
        Optional[EngineName],
        typer.Option(
            "--engine",
            help="Check only what this engine needs; exit code 1 when it cannot run. Default: all engines, exit 0.",
            case_sensitive=False,
        ),
    ] = None,
    build_test: Annotated[
        bool,
        typer.Option(
            "--build-test",
            help="Also compile a tiny torch C++ extension (as Isaac Gym's gymtorch is built) and, when isaacgym "
            "imports, gymtorch itself. Takes 20-120 s.",
        ),
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON document instead of the table.")
    ] = False,
) -> None:
    """Check Python, torch/CUDA, GPU, MuJoCo, MuJoCo Warp, Isaac Gym and its build prerequisites; print fixes."""
    from mimictools.app.doctor import ENGINES, run_checks

    engines = (engine.value,) if engine is not None else ENGINES
    err = Console(stderr=True, highlight=False)
    if as_json or not err.is_terminal:
        report = run_checks(engines=engines, build_test=build_test)
    else:
        with err.status("checking (imports run in subprocesses; --build-test compiles)..."):
            report = run_checks(engines=engines, build_test=build_test)

    code = 0 if engine is None or report.ready(engine.value) else 1
    if as_json:
        typer.echo(json.dumps(report.to_dict(engine.value if engine else None, code), indent=2))
        raise typer.Exit(code)

    out = Console(highlight=False)
    table = Table(title="mimic doctor", show_lines=True, expand=False)
    table.add_column("check", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("found", overflow="fold")
    table.add_column("fix", overflow="fold")
    for r in report.results:
        style = _STYLE.get(r.status, "")
        table.add_row(r.name, f"[{style}]{r.status}[/]", _plain(r.detail), _plain(r.fix))
    out.print(table)
    for e in report.engines:
        blockers = report.blockers(e)
        if blockers:
            out.print(f"[bold red]{e}: cannot run[/] — fix: {', '.join(blockers)}")
        else:
            out.print(f"[green]{e}: ready[/]")
    raise typer.Exit(code)


def _plain(text: str) -> str:
    """Escape Rich markup in text that came from the machine (paths, compiler errors)."""
    from rich.markup import escape

    return escape(text)


def register(app: typer.Typer) -> None:
    app.command("doctor")(doctor)
