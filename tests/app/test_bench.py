"""`mimic bench` and mimictools.app.bench: rows and JSON are well-formed (timings are never asserted)."""

from __future__ import annotations

import json
import math

import pytest
from typer.testing import CliRunner

from mimictools.app.bench import BenchResult, measure_training, run_bench, standing_state, training_rate
from mimictools.character import kinematics
from mimictools.cli.app import app
from mimictools.engines.base import EngineSpec
from mimictools.rl.results import IterationStats


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


def test_training_rate_arithmetic():
    """What the bench reports from the runner's own iteration timings (worked out by hand)."""
    stats = [
        IterationStats(samples=100, rollout_s=1.0, update_s=0.25),
        IterationStats(samples=100, rollout_s=0.5, update_s=0.25),
    ]
    rate = training_rate(stats)
    assert rate.samples_per_s == pytest.approx(200 / 2.0)  # 200 samples in 1.5 s rollout + 0.5 s update
    assert rate.rollout_samples_per_s == pytest.approx(200 / 1.5)
    assert rate.update_s_per_iter == pytest.approx(0.25)
    assert rate.iterations == 2 and not rate.graphed
    with pytest.raises(ValueError):
        training_rate([])


def test_training_loop_runs_the_runner_iteration(humanoid):
    """measure_training times Runner.iterate on the bundled demo (rates are not asserted, only their form)."""
    rate = measure_training("mujoco", humanoid, EngineSpec(num_envs=2), seconds=0.2)
    assert rate.iterations >= 1 and not rate.graphed  # CUDA graphs only on a GPU
    for v in (rate.samples_per_s, rate.rollout_samples_per_s, rate.update_s_per_iter):
        assert math.isfinite(v)


def test_training_loop_takes_the_agent_file(humanoid, tmp_path, monkeypatch):
    """--agent-config: the runner is built with that file's agent, not the default one."""
    from mimictools.app import run as runlib
    from mimictools.paths import bundled_data_dir

    agent = tmp_path / "agent.yaml"
    text = (bundled_data_dir() / "configs" / "demo_agent.yaml").read_text()
    text = text.replace("steps_per_iter: 32", "steps_per_iter: 3").replace("actor_batch_size: 4", "actor_batch_size: 0.5")
    agent.write_text(text)
    built = []
    make_runner = runlib.make_runner

    def spy(cfg, *args, **kw):
        built.append(cfg.agent)
        return make_runner(cfg, *args, **kw)

    monkeypatch.setattr(runlib, "make_runner", spy)
    measure_training("mujoco", humanoid, EngineSpec(num_envs=2), seconds=0.05, agent_config=agent)
    assert [(a.steps_per_iter, a.actor_batch_size) for a in built] == [(3, 0.5)]


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
    assert list(row["step_ms"]) == ["record", "act", "physics", "post", "storage"]  # the rollout step by phase
    assert all(v >= 0 for v in row["step_ms"].values())
    # the share of the loop that is physics, timed inside the training rollout
    physics_rate = row["num_envs"] / (row["step_ms"]["physics"] / 1000.0)
    assert row["train_over_rollout_physics_rate"] == pytest.approx(row["samples_per_s"] / physics_rate)
    assert 0 < row["train_over_rollout_physics_rate"] < 1  # physics is one phase of the loop, not all of it
    no_train = CliRunner().invoke(
        app, ["bench", "--num-envs", "2", "--seconds", "0.05", "--char", str(humanoid_xml), "--json"]
    )
    assert json.loads(no_train.stdout)["results"][0]["train_over_raw_control_rate"] is None
    assert json.loads(no_train.stdout)["results"][0]["step_ms"] is None
    assert json.loads(no_train.stdout)["results"][0]["train_over_rollout_physics_rate"] is None


@pytest.mark.slow  # starts 2 ranks (processes that import torch) through torch's launcher
def test_cli_json_train_nproc(humanoid_xml):
    """--train --nproc 2: each rank's samples/s, their total and the scaling efficiency against the single-process
    rate (its arithmetic; the rates themselves are not asserted)."""
    res = CliRunner().invoke(
        app,
        [
            "bench",
            "--num-envs",
            "2",
            "--seconds",
            "0.3",
            "--char",
            str(humanoid_xml),
            "--train",
            "--nproc",
            "2",
        ]
        + ["--json"],
    )
    assert res.exit_code == 0, res.output
    (row,) = json.loads(res.stdout)["results"]
    assert row["nproc"] == 2 and len(row["rank_samples_per_s"]) == 2
    assert all(x > 0 for x in row["rank_samples_per_s"])
    assert row["total_samples_per_s"] == pytest.approx(sum(row["rank_samples_per_s"]))
    assert row["scaling_efficiency"] == pytest.approx(row["total_samples_per_s"] / (2 * row["samples_per_s"]))


def test_cli_nproc_needs_train(humanoid_xml):
    res = CliRunner().invoke(app, ["bench", "--num-envs", "2", "--nproc", "2", "--char", str(humanoid_xml)])
    assert res.exit_code == 2 and "add --train" in res.output


def test_cli_agent_config_errors(humanoid_xml, tmp_path):
    base = ["bench", "--num-envs", "2", "--seconds", "0.05", "--char", str(humanoid_xml)]
    res = CliRunner().invoke(app, base + ["--agent-config", str(tmp_path / "a.yaml")])
    assert res.exit_code == 2 and "add --train" in res.output
    res = CliRunner().invoke(app, base + ["--train", "--agent-config", str(tmp_path / "missing.yaml")])
    assert res.exit_code == 2 and "missing.yaml: no such file" in res.output
