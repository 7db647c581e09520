"""`mimic train` / `mimic motion` on the Unitree G1 with no overrides: robot formats, gains, task defaults."""

from __future__ import annotations

from pathlib import Path

import yaml
from typer.testing import CliRunner

from mimictools.cli.app import app

runner = CliRunner()


def _flat(text: str) -> str:
    return " ".join(text.split())


def test_g1_trains_with_no_overrides_and_records_what_it_used(robots: Path, tmp_path: Path, train_no_probe):
    out = tmp_path / "run"
    char = robots / "unitree_g1" / "scene_mjx.xml"  # primitive colliders: the fast G1 for CI
    clip = robots / "motions/g1_moves/B_HandsUp/B_HandsUp.npz"
    args = ["train", "--char", str(char), "--motion", str(clip), "--num-envs", "4"]
    res = runner.invoke(app, args + ["--max-samples", "256", "--out-dir", str(out), "--no-progress"])
    assert res.exit_code == 0, res.output
    text = _flat(res.output)
    assert "contact_bodies = ['left_ankle_roll_link', 'right_ankle_roll_link']" in text
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    assert cfg["env"]["char_file"] == str(char.resolve()) and cfg["env"]["motion_file"] == str(clip.resolve())
    assert "torso_link" in cfg["env"]["key_bodies"] and len(cfg["env"]["joint_err_w"]) == 29
    assert len(cfg["env"]["init_pose"]) == 35
    # the recorded config alone reproduces the run's task (nothing is derived a second time); the start-up
    # stability probe of the G1 ran in the first call
    res = train_no_probe("--resume", "--out-dir", str(out), "--max-samples", "512")
    assert res.exit_code == 0, res.output


def test_g1_csv_without_fps_is_one_clear_line(robots: Path, tmp_path: Path):
    res = runner.invoke(
        app,
        [
            "train",
            "--char",
            str(robots / "unitree_g1" / "scene_mjx.xml"),
            "--motion",
            str(robots / "motions/g1_moves/B_HandsUp/B_HandsUp.csv"),
            "--max-samples",
            "64",
            "--num-envs",
            "2",
            "--out-dir",
            str(tmp_path / "r"),
        ],
    )
    assert res.exit_code == 2 and "pass --fps" in _flat(res.output) and "Traceback" not in res.output


def test_convert_csv_to_npz_and_inspect_it(robots: Path, tmp_path: Path):
    g1 = str(robots / "unitree_g1" / "g1.xml")
    src = robots / "motions/g1_moves/M_ShortMove14/M_ShortMove14.csv"
    res = runner.invoke(
        app, ["motion", "convert", str(src), "--fps", "60", "--char", g1, "-o", str(tmp_path / "m.npz")]
    )
    assert res.exit_code == 0, res.output
    assert "393 frames at 60 fps" in _flat(res.output)
    res = runner.invoke(app, ["motion", "inspect", str(tmp_path / "m.npz"), "--char", g1, "--json"])
    assert res.exit_code == 0, res.output
    assert '"num_frames": 393' in res.output
    res = runner.invoke(app, ["fk-check", str(tmp_path / "m.npz"), "--char", g1])
    assert res.exit_code == 0, res.output
