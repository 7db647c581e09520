"""Issue 6: a retargeted BVH clip is a valid training clip (`mimic train` starts and runs on it)."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from mimictools.cli.app import app


def test_retargeted_sfu_walk_trains(shared_dir, tmp_path):
    runner = CliRunner()
    clip = tmp_path / "sfu_walk.pkl"
    res = runner.invoke(
        app,
        [
            "motion",
            "retarget",
            str(shared_dir / "mocap" / "sfu_bvh" / "0005_Walking001.bvh"),
            "-o",
            str(clip),
        ],
    )
    assert res.exit_code == 0, res.output
    out = tmp_path / "run"
    res = runner.invoke(
        app,
        [
            "train",
            "--motion",
            str(clip),
            "--max-samples",
            "256",
            "--num-envs",
            "4",
            "--out-dir",
            str(out),
            "--no-progress",
            "--set",
            "test_episodes=4",  # one 5-s test episode per env
        ],
    )
    assert res.exit_code == 0, res.output
    assert json.loads((out / "run.json").read_text())["motion_file"].endswith("sfu_walk.pkl")
    header, *rows = [ln.split() for ln in (out / "log.txt").read_text().splitlines() if ln.strip()]
    assert float(rows[-1][header.index("Samples")]) >= 256
