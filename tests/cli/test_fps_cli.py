"""``--fps`` for robot .csv clips (no frame rate in the file) on every command that reads clips: train records it
in run.json, ``--resume`` and ``eval`` rebuild the same task from it; the one-line errors (exit 2) where it is
missing, out of range, or given for clips that store their own rate. One resolver behind them all:
`mimictools.motion.io.resolve_clip_fps`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mimictools.cli.app import app

runner = CliRunner()


def _flat(text: str) -> str:
    return " ".join(text.split())


def _one_line_error(res, *needles: str) -> None:
    text = _flat(res.output)
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output
    for n in needles:
        assert n in text, res.output


def _train_args(robots: Path, clip: Path, out: Path):
    return [
        "train",
        "--char",
        str(robots / "unitree_g1" / "scene_mjx.xml"),
        "--motion",
        str(clip),
        "--num-envs",
        "2",
        "--max-samples",
        "128",
        "--out-dir",
        str(out),
        "--no-progress",
    ]


# Runs whose test episodes these tests do not read: `--set test_episodes=2` (the G1's test phase is most of a
# 128-sample run).
FEW_TESTS = ["--set", "test_episodes=2"]


def test_csv_run_records_fps_and_resume_and_eval_rebuild_it(robots: Path, tmp_path: Path, train_no_probe):
    clip = robots / "motions/g1_moves/B_HandsUp/B_HandsUp.csv"
    out = tmp_path / "run"
    # with the start-up stability probe: it reads the .csv at --fps too
    res = runner.invoke(app, _train_args(robots, clip, out) + ["--fps", "60"] + FEW_TESTS)
    assert res.exit_code == 0, res.output
    spec = json.loads((out / "run.json").read_text())
    assert spec["motion_fps"] == 60.0 and spec["motion_file"] == str(clip.resolve())
    # --resume rebuilds the same task from run.json (and refuses a new --fps); the probe ran above
    res = train_no_probe("--resume", "--out-dir", str(out), "--max-samples", "256")
    assert res.exit_code == 0, res.output
    res = runner.invoke(
        app, ["train", "--resume", "--out-dir", str(out), "--max-samples", "512", "--fps", "30"]
    )
    _one_line_error(res, "--resume", "drop", "--fps")
    # eval: the run's fps by default (441 frames at 60 fps = 7.33 s); another one on request
    ev = runner.invoke(app, ["eval", "--model", str(out), "--json", "--episode-length", "0.2"])
    assert ev.exit_code == 0, ev.output
    metrics = json.loads(ev.output)
    assert metrics["motion_file"] == str(clip.resolve())
    res = runner.invoke(app, ["eval", "--model", str(out), "--json", "--episode-length", "0.2", "--fps", "0"])
    _one_line_error(res, "--fps 0", "> 0")


def test_eval_on_another_csv_uses_the_given_fps(robots: Path, tmp_path: Path, train_no_probe):
    """A run trained on an .npz has no fps; evaluating it on a .csv needs --fps, and says so without it."""
    out = tmp_path / "run"
    npz = robots / "motions/g1_moves/B_HandsUp/B_HandsUp.npz"
    res = train_no_probe(*_train_args(robots, npz, out)[1:], *FEW_TESTS)  # [1:]: without "train"
    assert res.exit_code == 0, res.output
    assert json.loads((out / "run.json").read_text())["motion_fps"] is None
    csv = robots / "motions/g1_moves/M_ShortMove14/M_ShortMove14.csv"
    res = runner.invoke(app, ["eval", "--model", str(out), "--motion", str(csv), "--json"])
    _one_line_error(res, "M_ShortMove14.csv", "pass --fps")
    res = runner.invoke(
        app,
        [
            "eval",
            "--model",
            str(out),
            "--motion",
            str(csv),
            "--fps",
            "60",
            "--json",
            "--episode-length",
            "0.2",
        ],
    )
    assert res.exit_code == 0, res.output
    # --fps where no clip needs one: refused (it would not resample)
    res = runner.invoke(app, ["eval", "--model", str(out), "--fps", "30", "--json"])
    _one_line_error(res, "--fps 30", "stores its own frame rate")


def test_train_errors_are_one_line(robots: Path, tmp_path: Path):
    csv = robots / "motions/g1_moves/B_HandsUp/B_HandsUp.csv"
    npz = robots / "motions/g1_moves/B_HandsUp/B_HandsUp.npz"
    _one_line_error(
        runner.invoke(app, _train_args(robots, csv, tmp_path / "a")), "B_HandsUp.csv", "pass --fps"
    )
    res = runner.invoke(app, _train_args(robots, npz, tmp_path / "b") + ["--fps", "60"])
    _one_line_error(res, "--fps 60", "B_HandsUp.npz stores its own frame rate")
    res = runner.invoke(app, _train_args(robots, csv, tmp_path / "c") + ["--fps", "-5"])
    _one_line_error(res, "--fps -5", "> 0")
    # a folder with .csv clips needs --fps too, naming the first such clip
    res = runner.invoke(app, _train_args(robots, robots / "motions/g1_moves/B_HandsUp", tmp_path / "d"))
    _one_line_error(res, "B_HandsUp.csv", "pass --fps")
    for name in "abcd":
        assert not (tmp_path / name / "run.json").exists()  # refused before any run folder was written


def test_fk_check_and_view_take_fps(robots: Path, tmp_path: Path):
    g1 = str(robots / "unitree_g1" / "g1.xml")
    csv = robots / "motions/g1_moves/M_ShortMove14/M_ShortMove14.csv"
    npz = robots / "motions/g1_moves/M_ShortMove14/M_ShortMove14.npz"
    res = runner.invoke(app, ["fk-check", str(csv), "--char", g1, "--fps", "60", "--json"])
    assert res.exit_code == 0, res.output
    _one_line_error(runner.invoke(app, ["fk-check", str(npz), "--char", g1, "--fps", "60"]), "stores its own")
    pytest.importorskip("viser")
    _one_line_error(
        runner.invoke(app, ["view", str(csv), "--char", g1, "--export", str(tmp_path / "a.html")]),
        "pass --fps",
    )
    res = runner.invoke(
        app, ["view", str(csv), "--char", g1, "--fps", "60", "--export", str(tmp_path / "b.html")]
    )
    assert res.exit_code == 0, res.output
    assert "393 frames" in _flat(res.output)


def test_retarget_reads_a_csv_source_at_its_fps(robots: Path, tmp_path: Path):
    """A G1 .csv as a retargeting source: --fps is its frame rate (as for convert); without it, the error."""
    from mimictools.motion.retarget.source import load_source

    g1 = robots / "unitree_g1" / "g1.xml"
    csv = robots / "motions/g1_moves/M_ShortMove14/M_ShortMove14.csv"
    res = runner.invoke(
        app,
        [
            "motion",
            "retarget",
            str(csv),
            "--src-char",
            str(g1),
            "--to",
            str(g1),
            "-o",
            str(tmp_path / "x.pkl"),
        ],
    )
    _one_line_error(res, "M_ShortMove14.csv", "pass --fps")
    src = load_source(csv, src_char=g1, fps=60.0)
    assert src.fps == 60.0 and src.num_frames == 393 and src.kind == "mimickit"


def test_old_run_json_without_motion_fps_loads(robots: Path, tmp_path: Path):
    from mimictools.app.run import RunSpec, load_run_files, resolve_run, save_run_files
    from mimictools.errors import MimicToolsError

    cfg, spec = resolve_run(
        motion=robots / "motions/g1_moves/B_HandsUp/B_HandsUp.csv",
        char=robots / "unitree_g1" / "scene_mjx.xml",
        num_envs=2,
        fps=60,
    )
    assert spec.motion_fps == 60.0
    save_run_files(tmp_path, cfg, spec)
    raw = json.loads((tmp_path / "run.json").read_text())
    del raw["motion_fps"]  # a run folder written before the field existed
    (tmp_path / "run.json").write_text(json.dumps(raw))
    assert load_run_files(tmp_path)[1] == RunSpec(**{**raw, "motion_fps": None})
    raw["motion_fps"] = "sixty"
    (tmp_path / "run.json").write_text(json.dumps(raw))
    with pytest.raises(MimicToolsError, match="motion_fps must be null or a number > 0"):
        load_run_files(tmp_path)
