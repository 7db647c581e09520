"""`mimic train` through the CLI: the bundled demo, MimicKit's own YAML files, --resume, bad input."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from mimictools.cli.app import app

runner = CliRunner()


def _flat(text: str) -> str:
    """Rich wraps long lines to the terminal width: compare on whitespace-normalised output."""
    return " ".join(text.split())


def _rows(log_path):
    lines = [ln.split() for ln in log_path.read_text().splitlines() if ln.strip()]
    return lines[0], [[float(x) for x in r] for r in lines[1:]]


def test_demo_trains_and_writes_run_files(tiny_demo_run, train_no_probe, tmp_path):
    """The session's demo run (`tiny_demo_run`: `mimic train --max-samples 256 --num-envs 4`) wrote its files;
    --resume (on a copy) continues it."""
    out = tmp_path / "run"
    shutil.copytree(tiny_demo_run, out)
    for name in ("config.yaml", "run.json", "log.txt", "latest.pt", "best.pt"):
        assert (out / name).is_file(), name
    spec = json.loads((out / "run.json").read_text())
    assert spec["motion_file"].endswith("demo_squat.pkl") and spec["num_envs"] == 4
    header, rows = _rows(out / "log.txt")
    assert header[:4] == ["Iteration", "Wall_Time", "Samples", "Test_Return"]
    assert rows[-1][header.index("Samples")] >= 256
    # the training rollouts skip the tracking errors; the test episodes still log them
    assert "Body_Pos_Err" in header and rows[-1][header.index("Body_Pos_Err")] > 0
    # resume continues the same run: more samples, same folder, no new config needed
    res = train_no_probe("--resume", "--out-dir", str(out), "--max-samples", "512")
    assert res.exit_code == 0, res.output
    _, rows2 = _rows(out / "log.txt")
    assert rows2[-1][header.index("Samples")] >= 512 > rows[-1][header.index("Samples")]


def test_refuses_to_overwrite_a_run(tiny_demo_run, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(tiny_demo_run, out)
    res = runner.invoke(
        app, ["train", "--max-samples", "256", "--num-envs", "2", "--out-dir", str(out), "--no-progress"]
    )
    assert res.exit_code == 2
    assert "--resume" in _flat(res.output)
    assert (out / "log.txt").read_text() == (tiny_demo_run / "log.txt").read_text()  # the run is untouched


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--set", "reward_pose_ww=1"], "reward_pose_w"),  # unknown key: nearest valid key named
        (["--motion", "/nonexistent/clip.pkl"], "not found"),
        (["--engine", "nosuchengine"], "mujoco"),
        (["--num-envs", "0"], "num-envs"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, needle):
    res = runner.invoke(
        app, ["train", "--max-samples", "64", "--out-dir", str(tmp_path / "r"), "--no-progress", *args]
    )
    assert res.exit_code == 2, res.output
    assert needle in _flat(res.output)
    assert "Traceback" not in res.output


@pytest.mark.slow
def test_mimickit_yaml_files_run_unchanged_with_mujoco(shared_dir, tmp_path):
    """Issue 3: MimicKit's env + agent YAML with spinkick, --engine mujoco --num-envs 8 (one iteration)."""
    cfg = shared_dir / "mimickit" / "configs"
    out = tmp_path / "mk"
    res = runner.invoke(
        app,
        [
            "train",
            "--env-config",
            str(cfg / "deepmimic_humanoid_env.yaml"),
            "--agent-config",
            str(cfg / "deepmimic_humanoid_ppo_agent.yaml"),
            "--engine-config",
            str(cfg / "engines" / "newton_engine.yaml"),
            "--engine",
            "mujoco",
            "--num-envs",
            "8",
            "--max-samples",
            "256",
            "--data-root",
            str(shared_dir / "mimickit"),
            "--out-dir",
            str(out),
            "--no-progress",
        ],
    )
    assert res.exit_code == 0, res.output
    spec = json.loads((out / "run.json").read_text())
    assert spec["motion_file"].endswith("humanoid_spinkick.pkl")
    assert spec["char_file"].endswith("data/assets/humanoid/humanoid.xml")
    assert "obs 464" in _flat(res.output)


def test_subprocess_smoke():
    """The console entry point works as a real process (not only through CliRunner)."""
    proc = subprocess.run(
        [sys.executable, "-m", "mimictools", "--help"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0
    for cmd in ("motion", "fk-check", "train", "eval", "bench", "doctor", "plot-log"):
        assert cmd in proc.stdout


def test_unstable_physics_is_warned_about(tmp_path):
    """A physics rate too coarse for the character's PD gains trains on exploding states: warn before training."""

    def train(out, *extra):
        args = ["train", "--max-samples", "64", "--num-envs", "2", "--out-dir", str(out), "--no-progress"]
        return runner.invoke(app, [*args, "--set", "test_episodes=2", *extra])

    res = train(tmp_path / "coarse", "--set", "engine.sim_freq=60")
    assert res.exit_code == 0, res.output
    assert "physics looks UNSTABLE at 60 Hz" in _flat(res.output)
    res = train(tmp_path / "fine")
    assert res.exit_code == 0, res.output
    assert "UNSTABLE" not in res.output


@pytest.mark.parametrize(
    "override, want",
    [
        ("engine.sim_freq=100", "sim_freq = 100: must be a multiple of control_freq (30 Hz)"),
        ("engine.control_freq=45", "sim_freq = 240: must be a multiple of control_freq (45 Hz)"),
    ],
)
def test_physics_rate_not_a_multiple_of_the_control_rate_is_refused(tmp_path, override, want):
    """A whole number of physics steps per control step, or nothing: one line naming the key and valid rates,
    exit 2, nothing trained (the MuJoCo engines cannot run 3.33 substeps, and rounding would change the run)."""
    out = tmp_path / "r"
    res = runner.invoke(app, ["train", "--max-samples", "64", "--out-dir", str(out), "--set", override])
    assert res.exit_code == 2, res.output
    text = _flat(res.output)
    assert f"--set {override}: {want}" in text and "nearest valid" in text
    assert "Traceback" not in res.output and not (out / "latest.pt").exists()


def test_nproc_launches_torchrun_with_the_same_options(monkeypatch):
    """--nproc N hands this command line (minus --nproc) to torch's launcher for N local ranks."""
    import mimictools.app.launch as launch

    seen = {}

    def fake_launch(nproc, module_args):
        seen["nproc"], seen["args"] = nproc, list(module_args)
        return 0

    monkeypatch.setattr(launch, "launch_module", fake_launch)
    for k in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "LOCAL_WORLD_SIZE"):
        monkeypatch.delenv(k, raising=False)
    res = runner.invoke(
        app,
        [
            "train",
            "--nproc",
            "2",
            "--num-envs",
            "3",
            "--set",
            "a=1",
            "--set",
            "b=2",
            "--out-dir",
            "x",
            "--no-progress",
        ],
    )
    assert res.exit_code == 0, res.output
    assert seen["nproc"] == 2
    args = seen["args"]
    assert args[:2] == ["mimictools", "train"] and "--nproc" not in args
    assert args[args.index("--num-envs") + 1] == "3" and args[args.index("--out-dir") + 1] == "x"
    assert [args[i + 1] for i, a in enumerate(args) if a == "--set"] == ["a=1", "b=2"]
    assert "--no-progress" in args and "--resume" not in args
    assert "per rank" in _flat(res.output)


def test_nproc_is_checked(tmp_path, monkeypatch):
    res = runner.invoke(app, ["train", "--nproc", "0", "--out-dir", str(tmp_path / "r")])
    assert res.exit_code == 2 and "--nproc must be >= 1" in res.output
    import torch

    if torch.cuda.device_count() < 2:  # one GPU per rank: checked before anything starts
        res = runner.invoke(
            app, ["train", "--nproc", "2", "--device", "cuda", "--out-dir", str(tmp_path / "r")]
        )
        assert res.exit_code == 2 and ("GPU" in res.output), res.output
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("LOCAL_RANK", "0")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    res = runner.invoke(app, ["train", "--nproc", "4", "--out-dir", str(tmp_path / "r")])
    assert res.exit_code == 2 and "drop --nproc under torchrun" in _flat(res.output)


@pytest.mark.slow
def test_nproc_2_trains_on_the_cpu_and_sigterm_saves(tmp_path):
    """`mimic train --nproc 2` through torch's real launcher (gloo): one run folder, one log, samples of both ranks;
    SIGTERM to the launcher (what SLURM and `timeout` send) reaches the ranks, which stop together and save."""
    import signal
    import time

    from mimictools.rl.checkpoint import load_checkpoint

    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "mimictools", "train", "--nproc", "2", "--num-envs", "2", "--minutes", "5"]
    proc = subprocess.Popen(
        cmd + ["--out-dir", str(out), "--no-progress"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 180
    while not (out / "latest.pt").exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.5)
    assert (out / "latest.pt").exists(), "no output within 3 minutes"
    proc.send_signal(signal.SIGTERM)
    try:
        stdout, stderr = proc.communicate(timeout=60)  # the ranks finish their iteration, save, exit
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    assert proc.returncode == 128 + signal.SIGTERM, stderr[-3000:]
    text = _flat(stdout)
    assert "2 envs per rank x 2 ranks = 4 envs" in text and text.count("done (terminated)") == 1, text
    ck = load_checkpoint(out / "latest.pt")
    assert ck["iteration"] >= 1 and ck["samples"] == 128 * (ck["iteration"] + 1) and len(ck["rank_rng"]) == 2
    header, rows = _rows(out / "log.txt")
    assert rows[0][header.index("Samples")] == 128  # 2 ranks x 2 envs x 32 steps
