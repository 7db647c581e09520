"""The `mimic` Typer application: wires the command modules together and translates errors once.

Command modules (`cli/motion.py`, `cli/fk.py`, ...) each expose `register(app)`. They import only
typer/rich at module level; torch, mujoco and warp are imported inside the command bodies so that
`mimic --help` stays fast.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

import typer
from rich.console import Console as RichConsole
from typer.core import TyperGroup

from mimictools.cli.console import err_console
from mimictools.errors import MimicToolsError

_state = {"debug": False}

# Order here is the order in `mimic --help`.
COMMAND_MODULES = ("motion", "fk", "train", "eval", "view", "export", "bench", "doctor", "assets")


#: Exit code when the reader of our output went away (``mimic ... | head``): 128 + SIGPIPE, as a shell tool killed
#: by SIGPIPE reports it (1 would say "the check failed").
EXIT_BROKEN_PIPE = 141


def _reader_went_away(*_: Any) -> None:
    """Stop quietly: point stdout at /dev/null (so the exit's flush cannot fail again) and exit 141."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # pragma: no cover - stdout without a file descriptor (CliRunner)
        pass
    raise SystemExit(EXIT_BROKEN_PIPE)


# Rich's hook for a closed pipe exits 1; every console of the CLI process (ours and Typer's help) uses this one.
RichConsole.on_broken_pipe = _reader_went_away  # type: ignore[method-assign]


def _hide_flag_types(cmd: Any) -> None:
    """Plain flags (``--debug``) take no value: Typer's help would show a ``<bool>`` placeholder after them."""
    for p in getattr(cmd, "params", ()):
        if getattr(p, "is_flag", False) and getattr(p, "metavar", None) is None:
            p.metavar = ""
    make_help = cmd.get_help_option  # --help is made per call, not held in params

    def get_help_option(ctx: Any) -> Any:
        opt = make_help(ctx)
        if opt is not None and opt.metavar is None:
            opt.metavar = ""
        return opt

    cmd.get_help_option = get_help_option
    for sub in getattr(cmd, "commands", {}).values():
        _hide_flag_types(sub)


class _MimicGroup(TyperGroup):
    """Root group: library errors become one red line + exit code (2 = bad input), no traceback."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _hide_flag_types(self)

    def make_context(self, *args: Any, **kwargs: Any) -> Any:
        try:  # --help prints while the context is made
            return super().make_context(*args, **kwargs)
        except BrokenPipeError:
            _reader_went_away()

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            _reader_went_away()
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
