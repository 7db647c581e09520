"""The `mimic` Typer application: wires the command modules together and translates errors once.

Command modules (`cli/motion.py`, `cli/fk.py`, ...) each expose `register(app)`. They import only
typer/rich at module level; torch, mujoco and warp are imported inside the command bodies so that
`mimic --help` stays fast.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import typer
from typer.core import TyperGroup

from mimictools.cli.console import err_console
from mimictools.errors import MimicToolsError

_state = {"debug": False}

# Order here is the order in `mimic --help`.
COMMAND_MODULES = ("motion", "fk", "train", "eval", "bench", "doctor", "assets")


class _MimicGroup(TyperGroup):
    """Root group: library errors become one red line + exit code (2 = bad input), no traceback."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except MimicToolsError as exc:
            if _state["debug"]:
                raise
            err_console.print(f"[bold red]error:[/] {exc}", soft_wrap=True)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            err_console.print("[yellow]interrupted[/]")
            raise typer.Exit(130) from None


app = typer.Typer(
    name="mimic",
    cls=_MimicGroup,
    help="Physics-based motion imitation: inspect/convert/retarget clips, check kinematics, train and evaluate DeepMimic policies.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version_callback(value: bool) -> None:
    if value:
        from mimictools import __version__

        typer.echo(f"mimic {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks instead of one-line errors."),
    version: bool = typer.Option(
        False, "--version", callback=_version_callback, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """mimic: motion imitation tools."""
    _state["debug"] = debug


for _name in COMMAND_MODULES:
    try:
        _mod = importlib.import_module(f"mimictools.cli.{_name}")
    except ModuleNotFoundError as _exc:  # a command module not written yet
        if _exc.name != f"mimictools.cli.{_name}":
            raise
        continue
    _mod.register(app)


def main() -> None:
    """Console-script entry point. Isaac Gym must be imported before torch, so it is preloaded here
    when the command line asks for it (nothing above imports torch)."""
    from mimictools.engines.isaacgym_preload import preload_isaacgym_if_requested

    preload_isaacgym_if_requested(sys.argv[1:])
    app(prog_name="mimic")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
