"""`mimic view`: clips, datasets, policies, eval recordings and retargeting results in the browser (viser)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional, Tuple

import typer
from typing_extensions import Annotated

from mimictools.cli.console import console
from mimictools.cli.options import FPS_OPTION


def _offset(text: str) -> Tuple[float, float, float]:
    from mimictools.errors import MimicToolsError

    try:
        x, y, z = (float(v) for v in text.split(","))
    except ValueError:
        raise MimicToolsError(f"--ghost-offset takes X,Y,Z in metres, e.g. 0,1,0; got {text!r}") from None
    return (x, y, z)


def view(
    paths: Annotated[
        Optional[List[Path]],
        typer.Argument(
            help="Clips (.pkl, .txt), folders or dataset .yaml; or an errors.npz written by mimic eval.",
            show_default=False,
        ),
    ] = None,
    char: Annotated[
        Optional[Path], typer.Option("--char", help="Character MJCF. Default: the bundled data/humanoid.xml.")
    ] = None,
    model: Annotated[
        Optional[Path],
        typer.Option(
            "--model",
            "-m",
            help="Policy checkpoint (RUN/best.pt) or run folder: the policy drives the character live beside its reference ghost (clip and start time in the panel).",
        ),
    ] = None,
    motion: Annotated[
        Optional[Path], typer.Option(help="With --model: clip / dataset to track (default: the run's).")
    ] = None,
    fps: Annotated[Optional[float], FPS_OPTION] = None,
    episodes: Annotated[
        Optional[int],
        typer.Option(help="With --model: also list mimic eval's episodes (this many) for replay."),
    ] = None,
    rand_start: Annotated[
        bool, typer.Option("--rand-start", help="With --model: start episodes at random clip times (seeded).")
    ] = False,
    seed: Annotated[int, typer.Option(help="Seed of --rand-start's start times.")] = 0,
    ghost_offset: Annotated[
        str,
        typer.Option(
            "--ghost-offset",
            help="Where the reference ghost stands relative to the policy, X,Y,Z in m (0,0,0: overlaid).",
        ),
    ] = "0,1,0",
    compare: Annotated[
        Optional[Path],
        typer.Option(
            "--compare",
            help="Retargeting source (BVH, clip) drawn as a skeleton beside the result given as PATH.",
        ),
    ] = None,
    host: Annotated[
        str,
        typer.Option(
            help="Interface to listen on (127.0.0.1: this machine only; see docs/viewer.md for ssh)."
        ),
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8080,
    speed: Annotated[float, typer.Option(help="Initial playback speed (1 = real time).")] = 1.0,
    export: Annotated[
        Optional[Path],
        typer.Option(
            "--export",
            help="Write the first clip/episode as a self-contained animated HTML file and exit (no server).",
        ),
    ] = None,
) -> None:
    """Look at clips, datasets, policies and retargeting results in a web browser (needs the `view` extra).

    Faults that `mimic motion inspect` finds (NaN, joint limits, below the floor) are marked on the timeline
    and the offending bodies turn red.
    """
    from mimictools.errors import MimicToolsError
    from mimictools.paths import bundled_humanoid_xml
    from mimictools.view import server as srv
    from mimictools.view import sources

    srv.import_viser()  # fail before any loading
    live = None
    paths = list(paths or [])
    offset = _offset(ghost_offset)
    if model is not None:
        if paths or compare is not None:
            raise MimicToolsError("--model plays the run's clips (choose others with --motion); pass no PATH")
        tracks = []
        if export is not None or episodes is not None or rand_start:
            with console.status("running the policy's evaluation episodes"):
                vc, tracks = sources.policy_tracks(model, motion, episodes, rand_start, seed, offset, fps=fps)
        if export is None:  # the policy live, in this process, beside the reference clips
            from mimictools.view.live import open_live_session

            live = open_live_session(model, str(motion) if motion else None, offset, fps=fps)
            vc = live.vc
            tracks = tracks + live.reference_tracks()
    elif paths and all(p.suffix == ".npz" for p in paths):
        if len(paths) != 1:
            raise MimicToolsError("give one errors.npz at a time")
        vc, tracks = sources.eval_replay_tracks(paths[0], char, offset)
    else:
        if not paths:
            raise MimicToolsError(
                "nothing to view: give clips, a folder, a dataset yaml, an errors.npz, or --model"
            )
        from mimictools.view.tracks import load_view_character

        vc = load_view_character(char if char is not None else bundled_humanoid_xml())
        if compare is not None:
            if len(paths) != 1:
                raise MimicToolsError("--compare SRC takes exactly one PATH: the retargeted clip")
            tracks = [sources.compare_track(vc, compare, paths[0])]
        else:
            tracks = sources.clip_tracks(vc, paths, fps)
    for t in tracks[:20]:
        for line in t.info:
            console.print(line, markup=False, highlight=False)
    if export is not None:
        srv.export_html(vc, tracks[0], export)
        console.print(
            f"wrote {export} ({tracks[0].name}, {tracks[0].num_frames} frames): open it in any browser"
        )
        return
    options = srv.ViewOptions(host=host, port=port, speed=speed)

    def ready(url: str) -> None:
        console.print(f"mimic view: [bold]{url}[/]  (Ctrl-C to stop)")
        if host in ("127.0.0.1", "localhost"):
            console.print(
                f"from another machine: ssh -N -L {port}:127.0.0.1:{port} USER@THIS_HOST, then open http://localhost:{port}",
                highlight=False,
            )

    srv.serve(vc, tracks, options, on_ready=ready, live=live)


def register(app: typer.Typer) -> None:
    app.command("view")(view)
