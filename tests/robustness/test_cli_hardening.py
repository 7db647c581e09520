"""Issue 12 through the CLI: out-of-range options and configs, hostile files, a folder in use, a full
disk: one red line, exit code 2, no traceback, nothing allocated first."""

from __future__ import annotations

import os
import pickle
import re
import subprocess
import sys
from pathlib import Path

import crafted
import numpy as np
import pytest
from typer.testing import CliRunner

from mimictools.cli.app import app
from mimictools.motion import load_motion

runner = CliRunner()
REPO = Path(__file__).resolve().parents[2]


def _flat(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def _one_line_exit_2(res, needle: str) -> None:
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output
    assert needle in _flat(res.output), res.output
    errors = [ln for ln in res.output.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--seed", str(2**70)], "--seed"),
        (["--seed", "-1"], "--seed"),
        (["--minutes", "0"], "--minutes 0.0: must be a finite number > 0"),
        (["--minutes", "-5"], "--minutes"),
        (["--max-samples", "-1"], "--max-samples -1: must be > 0"),
        (["--max-samples", "0"], "--max-samples"),
        (["--num-envs", str(10**9)], "--num-envs"),
        (["--set", "steps_per_iter=1e12"], "steps_per_iter"),
        (["--set", "model.actor_net=fc_2layers_100000000units"], "at most 32 layers of at most 16384 units"),
        (["--set", "num_phase_encoding=1000000000"], "num_phase_encoding"),
        (["--set", "sim_freq=30000000"], "sim_freq"),
        (["--set", "control_freq=1e9"], "control_freq"),
        (["--set", "episode_length=inf"], "episode_length"),
        (["--set", "tar_obs_steps=[1,2,100000]"], "tar_obs_steps"),
        (["--set", "actor_epochs=1e9"], "actor_epochs"),
        (["--set", "actor_optimizer.grad_clip=.nan"], "grad_clip"),
        (["--set", "env_spacing=1e300"], "env_spacing"),
    ],
)
def test_out_of_range_options_and_configs(tmp_path, args, needle):
    res = runner.invoke(app, ["train", "--out-dir", str(tmp_path / "r"), "--no-progress", *args])
    _one_line_exit_2(res, needle)
    assert not (tmp_path / "r").exists()  # refused before the run folder exists


def test_out_dir_that_is_a_file(tmp_path):
    f = tmp_path / "file"
    f.write_text("")
    res = runner.invoke(app, ["train", "--max-samples", "64", "--out-dir", str(f), "--no-progress"])
    _one_line_exit_2(res, "is a file, not a folder")


@pytest.mark.skipif(os.geteuid() == 0 if hasattr(os, "geteuid") else True, reason="root ignores permissions")
def test_out_dir_read_only(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        res = runner.invoke(
            app, ["train", "--max-samples", "64", "--out-dir", str(ro / "run"), "--no-progress"]
        )
        _one_line_exit_2(res, "cannot write")
    finally:
        ro.chmod(0o700)


def test_second_train_into_a_folder_in_use_is_refused(tmp_path):
    run = tmp_path / "run"
    code = (
        "import sys, time\nfrom mimictools.io_util import run_dir_lock\n"
        "with run_dir_lock(sys.argv[1]):\n    print('locked', flush=True)\n    time.sleep(120)\n"
    )
    env = dict(os.environ, PYTHONPATH=str(REPO))
    holder = subprocess.Popen([sys.executable, "-c", code, str(run)], stdout=subprocess.PIPE, env=env)
    try:
        assert holder.stdout.readline().strip() == b"locked"
        res = runner.invoke(app, ["train", "--max-samples", "64", "--out-dir", str(run), "--no-progress"])
        _one_line_exit_2(res, f"in use by another process (PID {holder.pid})")
        assert str(run) in _flat(res.output)
        assert not (run / "config.yaml").exists()  # the first run's files are untouched
    finally:
        holder.kill()
        holder.wait(timeout=30)


@pytest.mark.parametrize(
    "name", ["dtype_build", "array_no_data", "reduce_amplifier", "deep_nesting", "shared_rows"]
)
def test_inspect_crafted_pickles(tmp_path, name):
    p = tmp_path / f"{name}.pkl"
    p.write_bytes(crafted.pickles()[name])
    res = runner.invoke(app, ["motion", "inspect", str(p)])
    assert res.exit_code == 2 and "Traceback" not in res.output, res.output
    assert p.name in _flat(res.output)


def _clip(tmp_path, frames) -> Path:
    p = tmp_path / "in.pkl"
    p.write_bytes(pickle.dumps({"loop_mode": 0, "fps": 30, "frames": frames}, protocol=4))
    return p


def test_convert_refuses_non_finite_frames(tmp_path):
    frames = np.zeros((4, 34), dtype=np.float32)
    frames[2, 7] = np.inf
    out = tmp_path / "out.pkl"
    res = runner.invoke(app, ["motion", "convert", str(_clip(tmp_path, frames.tolist())), "-o", str(out)])
    _one_line_exit_2(res, "frame 2 column 7 is inf")
    assert not out.exists()


@pytest.mark.parametrize("fps", ["999999", "1e308", "0", "nan"])
def test_convert_fps_range(tmp_path, fps):
    res = runner.invoke(
        app,
        [
            "motion",
            "convert",
            str(_clip(tmp_path, [[0.0] * 34] * 3)),
            "-o",
            str(tmp_path / "o.pkl"),
            "--fps",
            fps,
        ],
    )
    _one_line_exit_2(res, "--fps")


def test_convert_respects_the_umask(tmp_path):
    src = _clip(tmp_path, [[0.0] * 34] * 3)
    old = os.umask(0o077)
    try:
        res = runner.invoke(app, ["motion", "convert", str(src), "-o", str(tmp_path / "o.pkl")])
    finally:
        os.umask(old)
    assert res.exit_code == 0, res.output
    assert (tmp_path / "o.pkl").stat().st_mode & 0o777 == 0o600
    assert load_motion(tmp_path / "o.pkl").num_frames == 3


def test_disk_full_while_converting_says_so(tmp_path, monkeypatch):
    import errno

    from mimictools import io_util

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(io_util.os, "fsync", full)
    res = runner.invoke(
        app, ["motion", "convert", str(_clip(tmp_path, [[0.0] * 34] * 3)), "-o", str(tmp_path / "o.pkl")]
    )
    _one_line_exit_2(res, "the disk is full")


def test_disk_full_while_checkpointing_says_so(tmp_path, monkeypatch, train_no_probe):
    """A full disk during `mimic train`'s first checkpoint: one line saying so, exit 2, no temp left."""
    import errno

    import mimictools.rl.checkpoint as ckpt

    def full(obj, f, *args, **kwargs):
        f.write(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(ckpt.torch, "save", full)
    run = tmp_path / "run"
    res = train_no_probe(
        "--max-samples", "64", "--num-envs", "2", "--out-dir", str(run), "--set", "test_episodes=2"
    )  # the first checkpoint follows the first test episodes
    _one_line_exit_2(res, "the disk is full")
    assert not [p for p in run.iterdir() if p.name.endswith(".tmp")]


def test_read_only_out_dir_is_one_line(tmp_path, monkeypatch):
    """(Root ignores permission bits, so the refusal is simulated where the lock file is created.)"""
    import errno

    from mimictools import io_util

    real_open = io_util.os.open

    def ro(path, flags, *args):
        if str(path).endswith(io_util.LOCK_NAME):
            raise PermissionError(errno.EACCES, "Permission denied")
        return real_open(path, flags, *args)

    monkeypatch.setattr(io_util.os, "open", ro)
    res = runner.invoke(
        app, ["train", "--max-samples", "64", "--out-dir", str(tmp_path / "r"), "--no-progress"]
    )
    _one_line_exit_2(res, "cannot write (Permission denied)")


@pytest.mark.parametrize(
    "args",
    [
        ["motion", "inspect", "a" * 5000 + ".pkl"],
        ["eval", "--model", "a" * 5000 + ".pt"],
        ["train", "--max-samples", "64", "--out-dir", "/tmp/" + "a" * 5000],
        ["train", "--max-samples", "64", "--motion", "a" * 5000 + ".pkl"],
    ],
)
def test_os_refusing_a_path_is_one_line(args):
    res = runner.invoke(app, args)
    _one_line_exit_2(res, "File name too long")
    assert len(res.output) < 400


def test_file_names_that_look_like_markup(tmp_path):
    """A file named '[/x].pkl' is text, not Rich markup (it raised MarkupError, a traceback)."""
    res = runner.invoke(app, ["motion", "inspect", str(tmp_path / "[" / "x].pkl")])
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert "[/x].pkl: no such file" in _flat(res.output)
    folder = tmp_path / "[b]"
    (folder / "[").mkdir(parents=True)
    clip = folder / "[" / "x].pkl"
    clip.write_bytes(pickle.dumps({"loop_mode": 0, "fps": 30, "frames": [[0.0] * 34] * 3}, protocol=4))
    res = runner.invoke(app, ["motion", "inspect", str(clip)])
    assert res.exit_code == 0, res.output
    # whitespace removed: Rich folds a long path at the terminal width (a longer tmp path under xdist)
    assert "[b]/[/x].pkl" in re.sub(r"\s+", "", res.output), res.output
    res = runner.invoke(
        app, ["train", "--max-samples", "64", "--out-dir", str(tmp_path / "[/r]"), "--seed", "-3"]
    )
    _one_line_exit_2(res, "--seed")


def test_training_memory_estimate_by_hand_and_refusal():
    from mimictools.app.run import check_training_memory, training_memory_bytes
    from mimictools.config.schema import AgentConfig, ModelConfig
    from mimictools.errors import ConfigError

    agent = AgentConfig(
        steps_per_iter=10, model=ModelConfig(actor_net="fc_1layers_4units", critic_net="fc_1layers_4units")
    )
    # per sample: obs 3 + 2 x action 2 + 8 = 15 floats; rollout 10 x 5 envs x 15 x 4 B x 3 = 9000 B.
    # fc_1layers_4units = one hidden layer of 2 units: actor (3+1)*2 + (2+1)*2 = 14, critic (3+1)*2 + (2+1)*1 = 11
    # params; 25 params x 4 B x 4 (weights, grads, two moments) = 400 B.
    assert training_memory_bytes(agent, num_envs=5, obs_dim=3, action_dim=2) == 9000 + 400
    huge = AgentConfig(steps_per_iter=100_000)
    with pytest.raises(ConfigError, match=r"training would need ~\d+.* GiB .*lower --num-envs"):
        check_training_memory(huge, num_envs=1 << 20, obs_dim=1000, action_dim=30, device="cpu")
    check_training_memory(agent, num_envs=5, obs_dim=3, action_dim=2, device="cpu")
