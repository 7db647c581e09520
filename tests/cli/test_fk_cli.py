"""`mimic fk-check`: exit codes 0 / 1 / 2, --json, --plot, random poses, bad frames, --engine."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from mimictools.cli.app import app

runner = CliRunner()


@pytest.fixture(scope="module")
def mk(shared_dir):
    d = shared_dir / "mimickit" / "data"
    return {
        "xml": d / "assets/humanoid/humanoid.xml",
        "xml_deg": d / "assets/humanoid/humanoid_degrees_f3b3186.xml",
        "run": d / "motions/humanoid/humanoid_run.pkl",
        "walk": d / "motions/humanoid/humanoid_walk.pkl",
        "backflip": d / "motions/humanoid/humanoid_backflip.pkl",
    }


def _json(result):
    assert result.stdout.lstrip().startswith("{"), result.stdout
    return json.loads(result.stdout)


def test_clip_passes_with_each_character(mk):
    for char in (None, mk["xml"], mk["xml_deg"]):
        args = ["fk-check", str(mk["run"]), str(mk["backflip"]), "--json"] + (
            ["--char", str(char)] if char else []
        )
        r = runner.invoke(app, args)
        assert r.exit_code == 0, r.output
        doc = _json(r)
        assert doc["summary"]["passed"] and doc["summary"]["num_clips"] == 2
        assert doc["summary"]["max_pos_err_mm"] < 1e-6
        assert doc["clips"][0]["num_frames"] == 25 and len(doc["clips"][0]["bodies"]) == 15


def test_table_output_and_plot(mk, tmp_path):
    png = tmp_path / "err.png"
    r = runner.invoke(app, ["fk-check", str(mk["run"]), "--plot", str(png)])
    assert r.exit_code == 0, r.output
    assert "PASS" in r.output and "right_foot" in r.output  # one clip: the per-body table
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_nan_clip_reports_bad_frames(mk):
    r = runner.invoke(app, ["fk-check", str(mk["walk"]), "--json"])
    assert r.exit_code == 1, r.output  # every frame skipped: nothing was checked, which is no pass (issue 13)
    doc = _json(r)
    clip = doc["clips"][0]
    assert len(clip["bad_frames"]) == 125 and clip["num_checked"] == 0
    assert doc["summary"]["passed"] is False and doc["summary"]["num_skipped_clips"] == 1
    r = runner.invoke(app, ["fk-check", str(mk["walk"]), "--strict"])
    assert r.exit_code == 1 and "bad frame" in r.output


def test_random_poses_without_motion():
    r = runner.invoke(app, ["fk-check", "--random", "50", "--seed", "3", "--json"])
    assert r.exit_code == 0, r.output
    doc = _json(r)
    assert doc["summary"]["num_checked"] == 50 and doc["char"].endswith("humanoid.xml")


def test_exit_1_when_over_tolerance(monkeypatch):
    from mimictools.app import fkcheck

    original = fkcheck.MujocoKinematicsReference.__call__

    def off_by_half_a_mm(self, root_pos, root_rot, dof):
        pos, rot = original(self, root_pos, root_rot, dof)
        pos[:, -1, 0] += 5e-4
        return pos, rot

    monkeypatch.setattr(fkcheck.MujocoKinematicsReference, "__call__", off_by_half_a_mm)
    r = runner.invoke(app, ["fk-check", "--random", "10"])
    assert r.exit_code == 1 and "FAIL" in r.output
    r = runner.invoke(app, ["fk-check", "--random", "10", "--tol-mm", "1", "--json"])
    assert r.exit_code == 0 and _json(r)["summary"]["max_pos_err_mm"] == pytest.approx(0.5, rel=1e-6)


def test_exit_2_on_bad_input(tmp_path, mk):
    from mimictools.motion import Motion, save_motion

    r = runner.invoke(app, ["fk-check", "--char", str(tmp_path / "missing.xml")])
    assert r.exit_code == 2 and "not found" in r.output
    narrow = tmp_path / "narrow.pkl"
    save_motion(Motion(fps=30.0, loop_mode=0, frames=np.zeros((3, 30), np.float32)), narrow)
    r = runner.invoke(app, ["fk-check", str(narrow)])
    assert r.exit_code == 2 and "30 columns" in r.output
    r = runner.invoke(app, ["fk-check", str(mk["run"]), "--tol-mm", "0"])
    assert r.exit_code == 2
    r = runner.invoke(app, ["fk-check", "--random", "5", "--engine", "nope"])
    assert r.exit_code == 2 and "mujoco" in r.output
    bad_xml = tmp_path / "slide.xml"
    bad_xml.write_text(
        '<mujoco><worldbody><body name="a"><freejoint/><body name="b"><joint type="slide"/></body></body></worldbody></mujoco>'
    )
    r = runner.invoke(app, ["fk-check", "--char", str(bad_xml)])
    assert r.exit_code == 2 and "slide" in r.output


def test_engine_mujoco(mk):
    pytest.importorskip("mimictools.engines.mujoco")
    r = runner.invoke(app, ["fk-check", str(mk["run"]), "--engine", "mujoco", "--json"])
    assert r.exit_code == 0, r.output
    doc = _json(r)
    assert "engine" in doc["reference"].lower() and doc["summary"]["max_pos_err_mm"] < 0.01  # float32 engine


def test_subprocess_smoke():
    proc = subprocess.run(
        [sys.executable, "-m", "mimictools", "fk-check", "--random", "5", "--json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["summary"]["passed"] is True
