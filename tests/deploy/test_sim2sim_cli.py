"""`mimic eval --engine`: evaluate a policy on another engine than the one it was trained on."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from mimictools.cli.app import app


def test_eval_engine_override_is_recorded(tiny_run, tmp_path):
    res = CliRunner().invoke(
        app,
        [
            "eval", "--model", str(tiny_run), "--engine", "mujoco", "--json", "--episodes", "1",
            "--episode-length", "0.5", "--threads", "1", "--out", str(tmp_path),
        ],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    m = json.loads(res.stdout)
    assert m["engine"] == "mujoco" and m["trained_engine"] == "mujoco"
    assert m["episode_length"]["mean_steps"] <= 15


def test_eval_unknown_engine_is_one_line_error(tiny_run, tmp_path):
    res = CliRunner().invoke(
        app, ["eval", "--model", str(tiny_run), "--engine", "bullet", "--out", str(tmp_path)]
    )
    assert res.exit_code == 2
    assert "'bullet' is not a known engine" in res.output and "mujoco, mjwarp, isaacgym" in res.output
    assert "Traceback" not in res.output
