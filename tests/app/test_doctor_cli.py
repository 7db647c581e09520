"""`mimic doctor` on this machine, through the CLI: --json shape and exit codes."""

from __future__ import annotations

import json
import sys

from typer.testing import CliRunner

from mimictools.app.doctor import STATUSES
from mimictools.cli.app import app

runner = CliRunner()


def _doc(args):
    res = runner.invoke(app, ["doctor", *args, "--json"])
    doc = json.loads(res.stdout)  # --json prints JSON only
    return res, doc


def test_json_shape_and_exit_code_for_isaacgym_here():
    """Isaac Gym cannot run here (not installed; and on Python >= 3.9 it cannot be): exit 1, with reasons."""
    res, doc = _doc(["--engine", "isaacgym"])
    assert set(doc) == {"engine", "engines", "ready", "blockers", "checks", "exit_code"}
    assert doc["engine"] == "isaacgym" and doc["engines"] == ["isaacgym"]
    for c in doc["checks"]:
        assert set(c) == {"name", "status", "detail", "fix", "blocks"}
        assert c["status"] in STATUSES and isinstance(c["blocks"], list)
    names = [c["name"] for c in doc["checks"]]
    assert len(names) == len(set(names))
    assert {"python:isaacgym", "torch", "gpu", "isaacgym", "compiler", "ninja", "libpython", "wsl"} <= set(
        names
    )

    assert res.exit_code == 1 == doc["exit_code"]
    assert doc["ready"] == {"isaacgym": False}
    assert "isaacgym" in doc["blockers"]["isaacgym"]
    if sys.version_info[:2] >= (3, 9):
        assert "python:isaacgym" in doc["blockers"]["isaacgym"]


def test_without_engine_exit_code_is_zero_even_when_some_engine_cannot_run():
    res, doc = _doc([])
    assert res.exit_code == 0 == doc["exit_code"]
    assert doc["engine"] is None and doc["engines"] == ["mujoco", "mjwarp", "isaacgym"]
    assert doc["ready"]["isaacgym"] is False
    assert {"python:mujoco", "python:mjwarp", "python:isaacgym", "mujoco", "mujoco_warp", "render"} <= {
        c["name"] for c in doc["checks"]
    }


def test_table_output_and_exit_code():
    res = runner.invoke(app, ["doctor", "--engine", "isaacgym"])
    assert res.exit_code == 1
    assert "python:isaacgym" in res.stdout and "isaacgym: cannot run" in res.stdout


def test_bad_engine_name_is_a_usage_error():
    res = runner.invoke(app, ["doctor", "--engine", "physx"])
    assert res.exit_code == 2
