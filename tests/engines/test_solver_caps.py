"""Solver iteration caps (``engine.solver_iterations`` / ``engine.ls_iterations``): config -> EngineSpec -> MjModel."""

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
