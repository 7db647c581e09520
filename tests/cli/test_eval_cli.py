"""`mimic eval` end to end: train a tiny run, evaluate it, check the files and the numbers."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from typer.testing import CliRunner

from mimictools.cli.app import app

runner = CliRunner()


@pytest.fixture(scope="module")
def tiny_run(tiny_demo_run):
    """The session's tiny demo run (tests/conftest.py): eval only reads it."""
    return tiny_demo_run


def _finite(x) -> bool:
    if isinstance(x, dict):
        return all(_finite(v) for v in x.values())
    if isinstance(x, list):
        return all(_finite(v) for v in x)
    if isinstance(x, float):
        return math.isfinite(x)
    return True


def test_eval_json_plot_and_files(tiny_run, tmp_path):
    plots, out = tmp_path / "plots", tmp_path / "out"
    res = runner.invoke(
        app,
        [
            "eval", "--model", str(tiny_run / "latest.pt"), "--json", "--plot", str(plots), "--out", str(out),
            "--episodes", "2", "--rand-start", "--episode-length", "1.0", "--threads", "1",
            "--joints", "right_knee,left_knee,right_hip_y",
        ],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    m = json.loads(res.stdout)
    assert m["episodes"] == 2 and m["rand_start"] is True
    assert set(m["tracking_errors"]) == {
        "Root_Pos_Err", "Root_Rot_Err", "Body_Pos_Err", "Pose_Err", "Dof_Vel_Err", "Root_Vel_Err", "Root_Ang_Vel_Err",
    }  # fmt: skip
    assert _finite(m)
    assert 0.0 <= m["success_rate"] <= 1.0
    assert m["body_pos_err_mm"]["global"] > 0.0
    knee = m["joint_angles_deg"]["right_knee"]  # the squat's main joint: the reference bends it
    assert knee["ref_max"] > knee["ref_min"] + 10.0 and knee["max_abs_err"] >= knee["mean_abs_err"] >= 0.0
    assert 1 <= m["episode_length"]["mean_steps"] <= 30  # 1 s at 30 Hz
    assert len(m["per_body"]) == 15 and "right_knee" in m["per_joint"]
    assert json.loads((out / "metrics.json").read_text())["frames"] == m["frames"]
    for name in (
        "body_pos_error",
        "tracking_errors",
        "joint_angles",
        "root_trajectory",
        "joint_errors",
        "training_curves",
    ):
        p = plots / f"{name}.png"
        assert p.is_file() and p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    z = np.load(out / "errors.npz")
    assert z["tracking"].shape == (m["frames"], 7)
    assert z["sim_qpos"].shape[0] == m["frames"]
    assert np.isfinite(z["body_pos_err_m"]).all()
    # frame-weighted mean of the saved per-frame Body_Pos_Err is the reported one
    assert z["tracking"][:, 2].mean() == pytest.approx(m["tracking_errors"]["Body_Pos_Err"])
    lines = (out / "errors.csv").read_text().splitlines()
    assert len(lines) == m["frames"] + 1
    assert lines[0].startswith("episode,clip,time_s,motion_time_s,reward,Root_Pos_Err")


def test_eval_min_success_check_fails_with_exit_1(tiny_run, tmp_path):
    """--fail-dist 1 mm makes every episode a failure: success 0 < 0.5 -> exit 1 (check failed)."""
    res = runner.invoke(
        app,
        [
            "eval", "--model", str(tiny_run), "--out", str(tmp_path), "--episode-length", "0.3",
            "--fail-dist", "0.001", "--min-success", "0.5", "--threads", "1",
        ],
    )  # fmt: skip
    assert res.exit_code == 1, res.output
    assert "success rate" in res.output
    assert (tmp_path / "metrics.json").is_file()


def test_eval_bad_input_is_exit_2(tiny_run, tmp_path):
    res = runner.invoke(app, ["eval", "--model", str(tmp_path / "nope.pt")])
    assert res.exit_code == 2 and "not found" in res.output
    res = runner.invoke(
        app,
        [
            "eval",
            "--model",
            str(tiny_run),
            "--out",
            str(tmp_path),
            "--episode-length",
            "0.2",
            "--plot",
            str(tmp_path / "p"),
            "--joints",
            "no_such_joint",
        ],
    )
    assert res.exit_code == 2 and "no_such_joint" in res.output
