"""`mimic assets download NAME --to DIR`: fetch a robot model (MJCF + meshes) from MuJoCo Menagerie."""

from __future__ import annotations

from pathlib import Path

import typer
from typing_extensions import Annotated

from mimictools.cli.console import console

assets_app = typer.Typer(help="Robot models: download MJCF + meshes ready for --char.", no_args_is_help=True)


@assets_app.command("download")
def download_cmd(
    name: Annotated[str, typer.Argument(help="Robot to fetch: unitree_g1.")],
    to: Annotated[Path, typer.Option("--to", help="Folder to put <name>/ in (created if missing).")] = Path(
        "assets"
    ),
    base_url: Annotated[
        str,
        typer.Option(
            "--base-url",
            help="Where <name>/ lives (default: MuJoCo Menagerie on GitHub at commit 1f2300db; a mirror works).",
        ),
    ] = "",
) -> None:
    """Download a robot model so that `mimic train --char <to>/<name>/<model>.xml` works."""
    from mimictools.app.assets import ASSETS, DEFAULT_ASSET_BASE_URL, download_asset

    got = download_asset(
        name,
        to,
        base_url=base_url or DEFAULT_ASSET_BASE_URL,
        progress=lambda f: console.print(f"  {f}", highlight=False),
    )
    spec = ASSETS[name]
    console.print(
        f"[green]done[/]: {len(got.files)} files, {got.bytes / 1e6:.1f} MB in {got.folder} "
        f"(license {spec.license}); use --char {got.main_mjcf}"
    )


def register(app: typer.Typer) -> None:
    app.add_typer(assets_app, name="assets")
