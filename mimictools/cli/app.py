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
COMMAND_MODULES = ("motion", "fk", "train", "eval", "view", "export", "bench", "doctor", "assets")


class _MimicGroup(TyperGroup):
    """Root group: library errors become one red line + exit code (2 = bad input), no traceback."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except MimicToolsError as exc:
            if _state["debug"]:
                raise
            from rich.markup import (
                escape,  # brackets in messages ("mimictools[view]", a file '[/x].pkl') are text
            )

            err_console.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)
            raise typer.Exit(exc.exit_code) from None
        except OSError as exc:  # a path the user gave that the OS refuses (name too long, I/O error...)
            if _state["debug"]:
                raise
            err_console.print(f"[bold red]error:[/] {_os_error_line(exc)}", soft_wrap=True, markup=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            err_console.print("[yellow]interrupted[/]")
            raise typer.Exit(130) from None


def _os_error_line(exc: OSError) -> str:
    """One line for an OSError: the file (shortened), the OS's reason, 'disk full' said plainly."""
    import errno

    from rich.markup import escape

    from mimictools.io_util import output_error

    name = str(exc.filename) if exc.filename is not None else "<file>"
    if len(name) > 120:
        name = name[:60] + "..." + name[-57:]
    if exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        return escape(str(output_error(name, exc)))
    reason = exc.strerror or (str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__)
    return escape(f"{name}: {reason}")


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
    importlib.import_module(f"mimictools.cli.{_name}").register(app)


def main() -> None:
    """Console-script entry point. Isaac Gym must be imported before torch, so it is preloaded here
    when the command line asks for it (nothing above imports torch)."""
    from mimictools.engines.isaacgym_preload import preload_isaacgym_if_requested

    preload_isaacgym_if_requested(sys.argv[1:])
    app(prog_name="mimic")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
