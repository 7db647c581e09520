"""Command-line options that several commands share, defined once."""

from __future__ import annotations

import typer

FPS_HELP = (
    "Frame rate (Hz) of robot .csv clips, whose files store none (30 for Unitree's LAFAN1 set, 60 for "
    "g1-moves). A run records it in run.json."
)

FPS_OPTION = typer.Option("--fps", help=FPS_HELP, show_default=False)
"""``--fps`` for commands that read clips (train, eval, view, fk-check): `mimictools.motion.io.resolve_clip_fps`
checks it against the clips."""
