"""`mimic bench` and mimictools.app.bench: rows and JSON are well-formed (timings are never asserted)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from mimictools.app.bench import BenchResult, measure_training, run_bench, standing_state
from mimictools.character import kinematics
from mimictools.cli.app import app
from mimictools.engines.base import EngineSpec


def test_standing_state_touches_the_ground(humanoid):
    s = standing_state(humanoid, 2)
    pos, rot = kinematics.forward_kinematics(
        humanoid, s.root_pos, s.root_rot, kinematics.dof_to_local_rot(humanoid, s.dof_pos)
    )
    assert kinematics.geom_lowest_z(humanoid, pos, rot).min().item() == pytest.approx(0.0, abs=1e-9)


def test_run_bench_rows(humanoid):
    seen = []
    rows = run_bench("mujoco", humanoid, [1, 3], EngineSpec(num_envs=1), seconds=0.05, on_result=seen.append)
    assert [r.num_envs for r in rows] == [1, 3] and seen == rows
    for r in rows:
        assert isinstance(r, BenchResult) and r.engine == "mujoco" and r.substeps == 8 and r.device == "cpu"
        assert r.raw_physics_steps_per_s > 0 and r.control_steps_per_s > 0
        assert r.physics_steps_per_s == pytest.approx(r.control_steps_per_s * 8)
        assert r.samples_per_s is None and r.peak_memory_mb is None


def test_training_loop_samples_per_second(humanoid):
    """The full loop (rollout + PPO update) runs on the bundled demo and reports a positive rate."""
    rate = measure_training("mujoco", humanoid, EngineSpec(num_envs=2), seconds=0.5)
    assert rate.samples_per_s > 0.0 and rate.update_s_per_iter > 0.0
    # the rollout alone is faster than rollout + update
    assert rate.rollout_samples_per_s > rate.samples_per_s
    assert not rate.graphed  # CUDA graphs only on a GPU


def test_cli_json(humanoid_xml):
    res = CliRunner().invoke(
        app,
        [
            "bench",
            "--engine",
            "mujoco",
            "--num-envs",
            "1,2",
            "--seconds",
            "0.05",
            "--char",
            str(humanoid_xml),
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["engine"] == "mujoco" and [r["num_envs"] for r in doc["results"]] == [1, 2]
    assert all(r["raw_physics_steps_per_s"] > 0 for r in doc["results"])


def test_cli_table_and_errors(humanoid_xml):
    runner = CliRunner()
    res = runner.invoke(app, ["bench", "--num-envs", "2", "--seconds", "0.05", "--char", str(humanoid_xml)])
    assert res.exit_code == 0, res.output
    assert "mimic bench: mujoco" in res.stdout and "envs" in res.stdout
    res = runner.invoke(app, ["bench", "--num-envs", "1,x", "--char", str(humanoid_xml)])
    assert res.exit_code == 2 and "not an integer" in res.output
    res = runner.invoke(
        app,
        ["bench", "--engine", "physx", "--num-envs", "1", "--seconds", "0.05", "--char", str(humanoid_xml)],
    )
    assert res.exit_code == 2 and "unknown engine" in res.output


def test_cli_json_train_ratio(humanoid_xml):
    """With --train each row carries the issue-3 ratio: training samples/s over raw physics steps/s / substeps."""
    res = CliRunner().invoke(
        app,
        ["bench", "--num-envs", "2", "--seconds", "0.3", "--char", str(humanoid_xml), "--train", "--json"],
    )
    assert res.exit_code == 0, res.output
    (row,) = json.loads(res.stdout)["results"]
    want = row["samples_per_s"] / (row["raw_physics_steps_per_s"] / row["substeps"])
    assert row["train_over_raw_control_rate"] == pytest.approx(want)
    assert 0.0 < row["train_over_raw_control_rate"] < 1.0  # the loop cannot beat the raw engine
    no_train = CliRunner().invoke(
        app, ["bench", "--num-envs", "2", "--seconds", "0.05", "--char", str(humanoid_xml), "--json"]
    )
    assert json.loads(no_train.stdout)["results"][0]["train_over_raw_control_rate"] is None
