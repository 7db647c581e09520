"""First-hour rough edges of the CLI as a whole (issue 13): help text, pipes, narrow terminals."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from mimictools.cli.app import EXIT_BROKEN_PIPE, app

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def test_help_shows_no_type_placeholder_on_plain_flags():
    for args in (["--help"], ["train", "--help"], ["motion", "inspect", "--help"], ["fk-check", "--help"]):
        res = runner.invoke(app, args, env={"COLUMNS": "100"})
        assert res.exit_code == 0, res.output
        assert "<bool>" not in res.output, (args, res.output)
    # options that take values keep theirs
    assert "<int>" in runner.invoke(app, ["train", "--help"], env={"COLUMNS": "100"}).output


def test_a_closed_pipe_is_not_a_failed_check():
    """`mimic ... | head` must not exit 1 ("the check failed"): it exits 141 (128 + SIGPIPE), quietly."""
    for args in (["--help"], ["motion", "inspect", str(REPO / "data" / "motions" / "demo_squat.pkl")]):
        p = subprocess.Popen(
            [sys.executable, "-m", "mimictools", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=_env(),
            cwd=str(REPO),
        )
        assert p.stdout is not None and p.stderr is not None
        p.stdout.close()  # the reader goes away before the first line
        err = p.stderr.read().decode()
        assert p.wait(timeout=60) == EXIT_BROKEN_PIPE, err
        assert "Traceback" not in err and "error" not in err.lower(), err


def test_mimickit_walk_with_nan_neck_points_to_the_repair_and_the_repair_trains(shared_dir, tmp_path):
    walk = shared_dir / "mimickit" / "data" / "motions" / "humanoid" / "humanoid_walk.pkl"
    res = runner.invoke(
        app, ["train", "--motion", str(walk), "--max-samples", "64", "--out-dir", str(tmp_path / "a")]
    )
    assert res.exit_code == 2, res.output
    assert "--fix-nonfinite" in res.output and "allow_nonfinite" not in res.output, res.output

    fixed = tmp_path / "walk_fixed.pkl"
    res = runner.invoke(app, ["motion", "convert", str(walk), "-o", str(fixed), "--fix-nonfinite"])
    assert res.exit_code == 0, res.output
    assert "fixed: neck (columns 9-11) NaN at frames 0-124 (125 of 125): set to 0" in res.output, res.output
    res = runner.invoke(app, ["motion", "inspect", str(fixed), "--json"], env={"COLUMNS": "200"})
    assert res.exit_code == 0 and "nonfinite" not in res.output, res.output


def test_fk_check_with_every_frame_skipped_is_no_pass(shared_dir):
    walk = shared_dir / "mimickit" / "data" / "motions" / "humanoid" / "humanoid_walk.pkl"
    res = runner.invoke(app, ["fk-check", str(walk)], env={"COLUMNS": "120"})
    assert res.exit_code == 1, res.output
    assert (
        "PASS" not in res.output and "0 frames checked" in res.output and "nothing was checked" in res.output
    )
    assert "skipped" in res.output


def test_folder_inspect_table_keeps_faults_and_warnings_at_80_columns(shared_dir):
    folder = shared_dir / "mimickit" / "data" / "motions" / "humanoid"
    res = runner.invoke(app, ["motion", "inspect", str(folder)], env={"COLUMNS": "80"})
    assert res.exit_code in (0, 1), res.output
    lines = res.output.splitlines()
    assert all(len(ln) <= 80 for ln in lines), max(lines, key=len)
    header = next(ln for ln in lines if "clip" in ln and "fps" in ln)
    assert "faults" in header and "warn" in header, header
    walk = next(ln for ln in lines if "humanoid_walk.pkl" in ln)
    assert "nonfinite" in walk, walk


def test_wide_tables_become_records_in_a_narrow_console_or_a_pipe():
    import io

    from rich.console import Console

    from mimictools.cli.console import print_table

    cols = ["envs", "samples/s (rollout)", "samples/s (train)", "update s/iter", "train / raw ctrl"]
    rows = [["32", "2.5 K", "2.1 K", "0.120", "0.55"], ["64", "4.0 K", "3.3 K", "0.240", "0.60"]]
    narrow, wide = io.StringIO(), io.StringIO()
    print_table(Console(file=narrow, width=60), "bench", cols, rows)
    print_table(Console(file=wide, width=140), "bench", cols, rows)
    n = narrow.getvalue().splitlines()
    assert all(len(ln) <= 60 for ln in n), n
    assert "  samples/s (rollout)  4.0 K" in n  # every value whole, next to its name
    assert any("samples/s (train)" in ln and "update s/iter" in ln for ln in wide.getvalue().splitlines())


def test_train_eta_is_exact_for_a_time_limit_and_rate_based_for_samples():
    from types import SimpleNamespace

    from mimictools.cli.progress import TrainProgress

    def rep(samples, t):
        return SimpleNamespace(samples=samples, session_time_s=t)

    p = TrainProgress(max_samples=None, max_minutes=10.0, live=False)
    assert p.eta_s(rep(1024, 30.0)) == 570.0  # the slow first seconds do not distort it
    p = TrainProgress(max_samples=10_000, max_minutes=None, live=False)
    assert p.eta_s(rep(1000, 20.0)) is None  # iteration 0 holds start-up and test episodes: no rate yet
    assert p.eta_s(rep(3000, 22.0)) == 7000 / 1000.0  # 2000 samples in 2 s since then
    p = TrainProgress(max_samples=10_000, max_minutes=1.0, live=False)
    p.eta_s(rep(1000, 20.0))
    assert p.eta_s(rep(2000, 50.0)) == 10.0  # whichever limit comes first


def test_inspect_and_convert_of_a_bvh_point_to_retarget(tmp_path):
    bvh = tmp_path / "walk.bvh"
    bvh.write_text("HIERARCHY\nROOT Hips\n{\n  OFFSET 0 0 0\n}\n")
    for args in (
        ["motion", "inspect", str(bvh)],
        ["motion", "convert", str(bvh), "-o", str(tmp_path / "x.pkl")],
    ):
        res = runner.invoke(app, args, env={"COLUMNS": "200"})
        assert res.exit_code == 2, res.output
        assert "mimic motion retarget" in res.output, res.output


def test_install_hints_keep_their_extras(monkeypatch):
    """Rich markup would eat "[gpu]" in pip install 'mimictools[gpu]': the error line must show it."""
    import importlib

    from mimictools.engines import registry

    real = importlib.import_module

    def no_warp(name, *a, **k):
        if name == "mimictools.engines.mjwarp":
            raise ImportError("No module named 'mujoco_warp'", name="mujoco_warp")
        return real(name, *a, **k)

    monkeypatch.setattr(registry.importlib, "import_module", no_warp)
    clip = str(REPO / "data" / "motions" / "demo_squat.pkl")
    res = runner.invoke(app, ["fk-check", clip, "--engine", "mjwarp"], env={"COLUMNS": "300"})
    assert res.exit_code == 2, res.output
    assert "pip install 'mimictools[gpu]'" in res.output, res.output
