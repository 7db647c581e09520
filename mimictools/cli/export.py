"""`mimic export`: a trained policy as ONNX + its deployment contract (docs/deploy.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from typing_extensions import Annotated

from mimictools.cli.console import console


def export_cmd(
    model: Annotated[
        Path,
        typer.Argument(
            help="Checkpoint (RUN/best.pt, latest.pt, iter_*.pt) or a run folder; its folder must hold the run's "
            "config.yaml and run.json.",
            show_default=False,
        ),
    ],
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            "-o",
            help="ONNX file to write; the contract (.json) and the clip (.motion.npz) go beside it.",
        ),
    ] = Path("policy.onnx"),
    motion: Annotated[
        Optional[Path],
        typer.Option(
            help="Reference clip for the contract (default: the run's; required if the run used a set)."
        ),
    ] = None,
) -> None:
    """Export a policy: one ONNX graph from the raw observation to PD targets, plus policy.json (the contract:
    joints, PD gains, rates, observation layout, clip, hashes) and the reference clip."""
    from mimictools.deploy.export import export_policy, require_onnx

    require_onnx()
    res = export_policy(model, out, motion=motion)
    c = res.contract
    console.print(
        f"wrote {res.onnx_path} (obs {c['observation']['size']} -> {c['actions']['size']} PD targets, "
        f"opset {c['onnx']['opset']}, dynamic batch), {res.contract_path}, {res.motion_path}"
    )


def register(app: typer.Typer) -> None:
    app.command("export")(export_cmd)
