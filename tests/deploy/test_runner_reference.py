"""The reference runner: its import rule, its observation vs the task's, and its tracking vs `mimic eval`."""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from mimictools.deploy import runner_reference as rr

RUNNER = Path(rr.__file__)
ALLOWED = {"mujoco", "onnxruntime", "numpy"}


def test_runner_imports_only_mujoco_onnxruntime_numpy_and_stdlib():
    tree = ast.parse(RUNNER.read_text(encoding="utf-8"))
    top = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            top |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "no relative imports: the file must work when copied alone"
            top.add(node.module.split(".")[0])
    outside = top - ALLOWED - set(sys.stdlib_module_names)
    assert not outside, f"runner_reference.py imports {outside}"
    assert ALLOWED <= top | {"mujoco"}


def test_runner_runs_as_a_copied_script_without_torch_or_mimictools(tiny_export, tmp_path):
    """Copied next to the export and run with torch and mimictools made unimportable."""
    script = tmp_path / "runner_reference.py"
    shutil.copy(RUNNER, script)
    code = (
        "import sys; sys.modules['torch'] = None; sys.modules['mimictools'] = None\n"
        f"sys.argv = ['runner', {str(tiny_export.contract_path)!r}, '--max-steps', '5']\n"
        f"import runpy; runpy.run_path({str(script)!r}, run_name='__main__')\n"
    )
    res = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    assert res.returncode == 0, res.stderr
    assert "episode 0: 5 steps" in res.stdout


def test_runner_reports_a_bad_contract(tmp_path):
    bad = tmp_path / "policy.json"
    bad.write_text(json.dumps({"format": "something else"}))
    res = subprocess.run(
        [sys.executable, str(RUNNER), str(bad)], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert res.returncode == 2 and "not a mimic policy contract" in res.stderr


def test_runner_observation_matches_the_task(tiny_run, tiny_export):
    """The runner's numpy observation of a MuJoCo state vs DeepMimicEnv's on the same state.

    Each step the env's simulated state (random PD targets) is copied into the runner's MjData, so only the
    observation code is compared. Start times include 1.9 s on the 2 s wrap clip, so the reference crosses a
    wrap (whole-cycle root offset). Tolerance: the task computes in float32 (values up to ~40, rounding
    ~2e-6 at that size), the runner in float64; measured max 1.6e-6.
    """
    from mimictools.app import run as runlib

    cfg, spec = runlib.load_run_files(tiny_run)
    env = runlib.build_env(cfg, spec, num_envs=1, num_threads=1)
    runner = rr.ReferenceRunner(tiny_export.contract_path)
    g = torch.Generator().manual_seed(0)
    worst = 0.0
    try:
        for start in (0.0, 0.37, 1.9):
            obs = env.reset(
                torch.tensor([0]), motion_ids=torch.tensor([0]), start_time_s=torch.tensor([start])
            )
            mine = runner.reset(start)
            worst = max(worst, float(np.abs(mine - obs[0].numpy()).max()))
            for k in range(1, 21):
                u = torch.rand(1, env.action_dim, generator=g)
                obs = env.step(env.action_low + (env.action_high - env.action_low) * u)[0]
                snap = env.engine.mj_data(0)
                runner.data.qpos[:] = snap.qpos
                runner.data.qvel[:] = snap.qvel
                runner.steps, runner.time_s = k, k * runner.control_dt
                mine = runner.observation(runner.read_state())
                worst = max(worst, float(np.abs(mine - obs[0].numpy()).max()))
    finally:
        env.close()
    assert worst < 1e-5


def _eval(run_dir: Path, engine=None, episode_length=None):
    from mimictools.app.evaluate import EvalOptions, evaluate

    opts = EvalOptions(episodes=1, num_envs=1, num_threads=1, engine=engine, episode_length_s=episode_length)
    return evaluate(run_dir / ("best.pt" if (run_dir / "best.pt").is_file() else "latest.pt"), opts).metrics


def test_runner_tracks_like_mimic_eval(tiny_run, tiny_export):
    """One episode from clip time 0: the runner's tracking error and episode length vs `mimic eval`'s on
    the same checkpoint. The two differ only by float rounding (float32 task vs float64 runner, ~1e-6 in the
    observation) and MuJoCo's solver warm start (the engine restarts it every control step); over the
    150-step episode that moved Body_Pos_Err by < 0.1 % (18.91 vs 18.91 cm). 2 % allows for other BLAS/CPU
    rounding while still catching any real difference (a wrong sign, frame or gain changes it by far more)."""
    m = _eval(tiny_run)
    ep = rr.ReferenceRunner(tiny_export.contract_path).run_episode(0.0)
    assert ep.num_steps == m["episode_length"]["mean_steps"]
    ref_err = m["tracking_errors"]["Body_Pos_Err"]
    assert ep.body_pos_err_m().mean() == pytest.approx(ref_err, rel=0.02)
    assert ep.root_pos_err_m().mean() == pytest.approx(m["tracking_errors"]["Root_Pos_Err"], rel=0.02)


@pytest.mark.slow
def test_runner_tracks_the_gpu_spinkick_policy_like_mimic_eval(shared_dir, repo_dir, tmp_path):
    """The shipped GPU policy (docs/results/spinkick_h100_graphs), exported and run by the runner on CPU
    MuJoCo, vs `mimic eval --engine mujoco` on the same checkpoint: 4 s of the 10 s episode (the cost of a
    CPU test). Same justification and tolerance as above."""
    from mimictools.deploy.export import export_policy

    src = repo_dir / "docs" / "results" / "spinkick_h100_graphs"
    run = tmp_path / "spinkick"
    run.mkdir()
    shutil.copy(src / "best_policy.pt", run / "best.pt")
    shutil.copy(src / "config.yaml", run / "config.yaml")
    mk = shared_dir / "mimickit" / "data"
    spec = {
        "motion_file": str(mk / "motions" / "humanoid" / "humanoid_spinkick.pkl"),
        "char_file": str(mk / "assets" / "humanoid" / "humanoid.xml"),
        "num_envs": 1,
        "device": "cpu",
        "seed": 0,
        "num_threads": 1,
    }
    (run / "run.json").write_text(json.dumps(spec))
    res = export_policy(run / "best.pt", tmp_path / "export" / "policy.onnx")
    assert res.contract["checkpoint"]["trained_engine"] == "mjwarp"
    m = _eval(run, engine="mujoco", episode_length=4.0)
    assert (m["engine"], m["trained_engine"]) == ("mujoco", "mjwarp")  # sim2sim
    runner = rr.ReferenceRunner(res.contract_path)
    runner.term["episode_length_s"] = 4.0
    ep = runner.run_episode(0.0)
    assert ep.num_steps == m["episode_length"]["mean_steps"] == 120
    assert ep.body_pos_err_m().mean() == pytest.approx(m["tracking_errors"]["Body_Pos_Err"], rel=0.02)
    assert ep.body_pos_err_m().mean() < 0.08  # it tracks: MimicKit's published policy is at 3.0 cm
