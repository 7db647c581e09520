"""Retargeting onto the Unitree G1 with the bundled presets (chosen automatically, no mapping file)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from mimictools.cli.app import app

runner = CliRunner()


def _retarget(args):
    r = runner.invoke(app, ["motion", "retarget", *args, "--json"])
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def test_sfu_bvh_onto_g1_passes_fk_check(shared_dir: Path, g1_xml: Path, tmp_path: Path):
    out = tmp_path / "walk_g1.pkl"
    bvh = shared_dir / "mocap" / "sfu_bvh" / "0005_Walking001.bvh"
    d = _retarget([str(bvh), "--to", str(g1_xml), "-o", str(out), "--fps", "30"])
    assert d["mapping"] == "sfu_bvh_to_g1" and d["ok"] and d["limit_violations"] == 0
    # measured 1.86 cm mean / 5.6 cm max (the G1's shoulder_roll origin sits ~5 cm below a human shoulder)
    assert 0.0 < d["pos_err_mean_cm"] < 3.0
    r = runner.invoke(app, ["fk-check", str(out), "--char", str(g1_xml)])
    assert r.exit_code == 0, r.output


def test_cmu_bvh_and_mimickit_clip_choose_g1_presets(shared_dir: Path, g1_xml: Path, tmp_path: Path):
    bvh = shared_dir / "mocap" / "cmu_bvh" / "01_14.bvh"
    d = _retarget([str(bvh), "--to", str(g1_xml), "-o", str(tmp_path / "c.pkl"), "--fps", "10"])
    assert d["mapping"] == "cmu_bvh_to_g1" and d["ok"] and d["pos_err_mean_cm"] < 4.0
    clip = shared_dir / "mimickit" / "data" / "motions" / "humanoid" / "humanoid_run.pkl"
    src_char = shared_dir / "mimickit" / "data" / "assets" / "humanoid" / "humanoid.xml"
    d = _retarget(
        [str(clip), "--src-char", str(src_char), "--to", str(g1_xml), "-o", str(tmp_path / "r.pkl")]
    )
    assert d["mapping"] == "humanoid_to_g1" and d["ok"] and d["pos_err_mean_cm"] < 4.0
