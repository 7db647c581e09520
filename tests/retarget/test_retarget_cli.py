"""`mimic motion retarget` end to end; its output passes `mimic fk-check` and `mimic motion inspect`."""

from __future__ import annotations

import json
import pickle

import pytest
import yaml
from typer.testing import CliRunner

from mimictools.cli.app import app

runner = CliRunner()


def test_bvh_to_our_humanoid_then_fk_check_and_inspect(shared_dir, repo_dir, tmp_path):
    out = tmp_path / "walk.pkl"
    png = tmp_path / "walk.png"
    bvh = shared_dir / "mocap" / "sfu_bvh" / "0005_Walking001.bvh"
    char = repo_dir / "data" / "humanoid.xml"
    r = runner.invoke(
        app,
        ["motion", "retarget", str(bvh), "--to", str(char), "-o", str(out), "--report", str(png), "--json"],
    )
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)  # --json: nothing but the document on stdout
    assert d["ok"] and d["finite"] and d["limit_violations"] == 0 and d["penetration_frames"] == 0
    assert d["num_frames"] == 270 and d["mapping"] == "sfu_bvh_to_humanoid"
    assert 0.0 < d["pos_err_mean_cm"] < 2.5 and d["frames_per_s"] > 0
    assert png.stat().st_size > 10_000
    with open(out, "rb") as f:
        clip = pickle.load(f)
    assert set(clip) == {"loop_mode", "fps", "frames"} and len(clip["frames"][0]) == 34
    r = runner.invoke(app, ["fk-check", str(out), "--char", str(char)])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["motion", "inspect", str(out), "--char", str(char)])
    assert r.exit_code == 0, r.output


def test_mimickit_clip_table_output(shared_dir, repo_dir, tmp_path):
    clip = shared_dir / "mimickit" / "data" / "motions" / "humanoid" / "humanoid_run.pkl"
    src_char = shared_dir / "mimickit" / "data" / "assets" / "humanoid" / "humanoid.xml"
    out = tmp_path / "run.pkl"
    r = runner.invoke(
        app,
        [
            "motion",
            "retarget",
            str(clip),
            "--src-char",
            str(src_char),
            "--to",
            str(repo_dir / "data" / "humanoid.xml"),
            "-o",
            str(out),
            "--fps",
            "60",
        ],
    )
    assert r.exit_code == 0, r.output
    assert "joint-limit violations" in r.stdout and "humanoid_to_humanoid" in r.stdout
    with open(out, "rb") as f:
        d = pickle.load(f)
    assert d["fps"] == 60 and d["loop_mode"] == 1 and len(d["frames"]) == 49  # 0.8 s at 60 fps


@pytest.mark.parametrize(
    "args, match",
    [
        (["--scale", "big"], "--scale must be 'auto' or a number"),
        (["--map", "no_such_map"], "not a preset"),
        (["--map", "cmu_bvh_to_humanoid"], "has no joint 'Neck1'"),
        (["--src-unit", "furlong"], "--src-unit 'furlong'"),
    ],
)
def test_bad_input_is_a_one_line_error(shared_dir, tmp_path, args, match):
    bvh = shared_dir / "mocap" / "sfu_bvh" / "0005_Walking001.bvh"
    r = runner.invoke(app, ["motion", "retarget", str(bvh), "-o", str(tmp_path / "x.pkl")] + args)
    assert r.exit_code == 2, r.output
    assert match in r.output and "Traceback" not in r.output
    assert not (tmp_path / "x.pkl").exists()


def test_custom_mapping_file(shared_dir, tmp_path):
    """A user's mapping with a typo'd joint name gets an error naming it and suggesting the right one."""
    doc = {
        "feet": ["left_foot"],
        "bodies": {"pelvis": {"source": "Hips"}, "left_foot": {"source": "LeftFot"}},
    }
    p = tmp_path / "mine.yaml"
    p.write_text(yaml.safe_dump(doc))
    bvh = shared_dir / "mocap" / "sfu_bvh" / "0005_Walking001.bvh"
    r = runner.invoke(app, ["motion", "retarget", str(bvh), "-o", str(tmp_path / "x.pkl"), "--map", str(p)])
    assert r.exit_code == 2
    assert "'LeftFot'" in r.output and "did you mean 'LeftFoot'" in r.output
