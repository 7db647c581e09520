"""Solver caps and tolerance (``engine.solver_iterations`` / ``ls_iterations`` / ``solver_tolerance``): config ->
EngineSpec -> MjModel; the solver iterations MuJoCo Warp reports per env, and the training log's columns of them."""

from __future__ import annotations

import json

import mujoco
import pytest
from engine_testlib import HUMANOID_INIT_POSE, pose_state, step
from typer.testing import CliRunner

from mimictools.cli.app import app
from mimictools.config.load import config_from_dict
from mimictools.config.schema import EngineConfig
from mimictools.engines.base import EngineSpec, set_state
from mimictools.engines.mjcf_build import build_sim_model
from mimictools.engines.mujoco import MuJoCoEngine
from mimictools.errors import ConfigError, EngineError


def test_zero_keeps_the_mjcf_values_and_caps_replace_them(humanoid):
    default = mujoco.MjModel.from_xml_path(humanoid.source).opt
    kept = build_sim_model(humanoid, EngineSpec(num_envs=1)).model.opt
    assert (kept.iterations, kept.ls_iterations) == (default.iterations, default.ls_iterations) == (100, 50)
    capped = build_sim_model(humanoid, EngineSpec(num_envs=1, solver_iterations=4, ls_iterations=8)).model.opt
    assert (capped.iterations, capped.ls_iterations) == (4, 8)
    only_ls = build_sim_model(humanoid, EngineSpec(num_envs=1, ls_iterations=8)).model.opt
    assert (only_ls.iterations, only_ls.ls_iterations) == (100, 8)


def test_negative_caps_are_refused(humanoid):
    with pytest.raises(EngineError, match="solver_iterations"):
        build_sim_model(humanoid, EngineSpec(num_envs=1, solver_iterations=-1))
    with pytest.raises(ConfigError, match="ls_iterations"):
        config_from_dict(EngineConfig, {"ls_iterations": -3}, "engine.yaml")
    assert config_from_dict(EngineConfig, {"solver_iterations": 10}, "e.yaml").solver_iterations == 10


def _held_pose_error(humanoid, **caps) -> float:
    eng = MuJoCoEngine(humanoid, EngineSpec(num_envs=1, num_threads=1, **caps))
    start = pose_state(HUMANOID_INIT_POSE, 1)
    set_state(eng, None, start)
    for _ in range(30):  # 1 s at 30 Hz control, 240 Hz physics
        step(eng, start.dof_pos.float())
    err = (eng.get_state().dof_pos.double() - start.dof_pos).abs().max().item()
    eng.close()
    return err


def test_a_low_cap_still_holds_a_standing_pose_like_the_default(humanoid):
    """The capped solver is a coarser contact solve, not a different controller: the stand is the same to 1 cm-rad."""
    assert (
        abs(_held_pose_error(humanoid, solver_iterations=2, ls_iterations=4) - _held_pose_error(humanoid))
        < 0.01
    )


def test_bench_passes_the_caps_and_reports_them(humanoid_xml, monkeypatch):
    from mimictools.app import bench as benchlib

    seen = []
    measure = benchlib.measure_engine

    def spy(name, character, spec, **kw):
        seen.append((spec.solver_iterations, spec.ls_iterations))
        return measure(name, character, spec, **kw)

    monkeypatch.setattr(benchlib, "measure_engine", spy)
    base = ["bench", "--num-envs", "1", "--seconds", "0.05", "--char", str(humanoid_xml), "--json"]
    res = CliRunner().invoke(app, base + ["--solver-iterations", "5", "--ls-iterations", "10"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert (doc["solver_iterations"], doc["ls_iterations"]) == (5, 10) and seen == [(5, 10)]
    bad = CliRunner().invoke(app, base + ["--solver-iterations", "-1"])
    assert bad.exit_code == 2 and "--solver-iterations" in bad.output


def test_the_task_builds_its_engine_with_the_configs_caps():
    from mimictools.config.schema import EnvConfig
    from mimictools.paths import bundled_data_dir, bundled_humanoid_xml
    from mimictools.tasks.deepmimic import build_env

    env = build_env(
        EnvConfig(),
        EngineConfig(solver_iterations=3, ls_iterations=6),
        1,
        bundled_data_dir() / "motions" / "demo_squat.pkl",
        bundled_humanoid_xml(),
        num_threads=1,
    )
    try:
        assert env.engine.spec.solver_iterations == 3 and env.engine.spec.ls_iterations == 6
        assert (env.engine.mj_model.opt.iterations, env.engine.mj_model.opt.ls_iterations) == (3, 6)
    finally:
        env.close()


def test_the_tolerance_replaces_the_mjcf_value_and_bad_ones_are_refused(humanoid):
    assert build_sim_model(humanoid, EngineSpec(num_envs=1)).model.opt.tolerance == 1e-8  # MuJoCo's default
    assert (
        build_sim_model(humanoid, EngineSpec(num_envs=1, solver_tolerance=1e-5)).model.opt.tolerance == 1e-5
    )
    for bad in (-1e-6, 1.0, float("nan")):
        with pytest.raises(EngineError, match="solver_tolerance"):
            build_sim_model(humanoid, EngineSpec(num_envs=1, solver_tolerance=bad))
    with pytest.raises(ConfigError, match="solver_tolerance = 2"):
        config_from_dict(EngineConfig, {"solver_tolerance": 2}, "engine.yaml")
    assert config_from_dict(EngineConfig, {"solver_tolerance": "1e-5"}, "e.yaml").solver_tolerance == 1e-5


def test_bench_passes_the_tolerance_and_refuses_a_bad_one(humanoid_xml, monkeypatch):
    from mimictools.app import bench as benchlib

    seen = []
    measure = benchlib.measure_engine

    def spy(name, character, spec, **kw):
        seen.append(spec.solver_tolerance)
        return measure(name, character, spec, **kw)

    monkeypatch.setattr(benchlib, "measure_engine", spy)
    base = ["bench", "--num-envs", "1", "--seconds", "0.05", "--char", str(humanoid_xml), "--json"]
    res = CliRunner().invoke(app, base + ["--solver-tolerance", "1e-5"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["solver_tolerance"] == 1e-5 and seen == [1e-5]
    bad = CliRunner().invoke(app, base + ["--solver-tolerance", "-1"])
    assert bad.exit_code == 2 and "--solver-tolerance" in bad.output


def test_solver_iteration_stats_are_the_mean_and_the_mean_slowest_env():
    import torch

    from mimictools.rl.runner import solver_iteration_stats

    iters = torch.tensor([[1, 2, 3, 6], [2, 2, 2, 2]], dtype=torch.int32)  # (steps, envs)
    assert solver_iteration_stats(iters) == {"Solver_Iters_Mean": 2.5, "Solver_Iters_Slowest": 4.0}


def test_mjwarp_reports_solver_iterations_and_training_logs_them(tmp_path):
    """MuJoCo Warp (its CPU device here) reports each env's solver iterations of the last physics step; a
    training iteration on it carries Solver_Iters_Mean / _Slowest, the counts of its rollout steps."""
    pytest.importorskip("mujoco_warp", reason="mjwarp needs the 'gpu' extra (mujoco-warp, warp-lang)")
    import torch

    from mimictools.app.run import build_env, resolve_run
    from mimictools.rl.runner import Runner

    cfg, spec = resolve_run(engine="mjwarp", num_envs=3, device="cpu", num_threads=1)
    env = build_env(cfg, spec)
    try:
        niter = env.engine.solver_iterations()
        assert niter.shape == (3,) and niter.dtype == torch.int32
        agent = cfg.agent.__class__(**{**cfg.agent.__dict__, "steps_per_iter": 4})
        runner = Runner(env, agent, tmp_path, seed=0, tensorboard=False)
        stats = runner.iterate()
        mean, slowest = stats.update["Solver_Iters_Mean"], stats.update["Solver_Iters_Slowest"]
        seen = runner._solver_iters_buf  # (4 steps, 3 envs): what the last rollout sampled
        # the demo starts standing on the ground: every physics step has contacts to solve
        assert seen.shape == (4, 3) and int(seen.min()) >= 1
        assert (mean, slowest) == (seen.float().mean().item(), seen.max(dim=1).values.float().mean().item())
        assert 1 <= mean <= slowest <= env.engine.sim_model.model.opt.iterations
        assert torch.equal(seen[-1], env.engine.solver_iterations())  # the last sample is the engine's now
    finally:
        env.close()


def test_the_cpu_engine_reports_no_solver_columns(tmp_path):
    """MuJoCo on the CPU steps through ``mujoco.rollout``, which keeps no per-env solver counts: no columns."""
    from mimictools.app.run import build_env, resolve_run
    from mimictools.rl.runner import Runner

    cfg, spec = resolve_run(engine="mujoco", num_envs=2, device="cpu", num_threads=1)
    env = build_env(cfg, spec)
    try:
        agent = cfg.agent.__class__(**{**cfg.agent.__dict__, "steps_per_iter": 8})
        stats = Runner(env, agent, tmp_path, seed=0, tensorboard=False).iterate()
        assert not any(k.startswith("Solver_Iters") for k in stats.update)
    finally:
        env.close()
