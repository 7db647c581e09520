"""`mimic bench` and mimictools.app.bench: rows and JSON are well-formed (timings are never asserted)."""

from __future__ import annotations

import json
import math

import pytest
import torch
from typer.testing import CliRunner

from mimictools.app.bench import (
    BenchResult,
    BenchTask,
    measure_training,
    run_bench,
    standing_state,
    training_rate,
)
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
    text = text.replace("steps_per_iter: 32", "steps_per_iter: 3").replace(
        "actor_batch_size: 4", "actor_batch_size: 0.5"
    )
    agent.write_text(text)
    built = []
    make_runner = runlib.make_runner

    def spy(cfg, *args, **kw):
        built.append(cfg.agent)
        return make_runner(cfg, *args, **kw)

    monkeypatch.setattr(runlib, "make_runner", spy)
    measure_training(
        "mujoco", humanoid, EngineSpec(num_envs=2), seconds=0.05, task=BenchTask(agent_config=agent)
    )
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
    assert list(row["step_ms"]) == [
        "record",
        "act",
        "physics",
        "post",
        "storage",
    ]  # the rollout step by phase
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


def _bundled():
    from mimictools.character.mjcf import load_character
    from mimictools.paths import bundled_data_dir, bundled_humanoid_xml

    return load_character(bundled_humanoid_xml()), bundled_data_dir() / "motions" / "demo_squat.pkl"


def test_clip_ceiling_plays_the_clip_open_loop_from_the_tasks_starts(monkeypatch):
    """The clip ceiling resets every env to where the task's reset put it every `reset_every` control steps and in
    between sets the clip's pose one control step ahead as PD targets (recorded from the engine's calls)."""
    from mimictools.app import run as runlib
    from mimictools.app.bench import measure_clip_ceiling

    char, squat = _bundled()
    seen = {}
    build = runlib.build_env

    def spy(cfg, spec, **kw):
        env = build(cfg, spec, **kw)
        eng, calls = env.engine, []
        set_targets, set_state = eng.set_targets, eng.set_state_where
        eng.set_targets = lambda t: (calls.append(("targets", t.clone())), set_targets(t))[1]
        eng.set_state_where = lambda m, s: (calls.append(("reset", s.dof_pos.clone())), set_state(m, s))[1]
        seen.update(env=env, calls=calls, cfg=cfg)
        return env

    monkeypatch.setattr(runlib, "build_env", spy)
    k = 4
    rate = measure_clip_ceiling(
        "mujoco", char, EngineSpec(num_envs=3), BenchTask(motion=squat), seconds=0.05, reset_every=k
    )
    assert math.isfinite(rate) and rate > 0
    env, calls = seen["env"], seen["calls"]
    (kind, start), loop = calls[0], calls[1:]  # the task's own reset, then the timed playback
    assert kind == "reset" and len(loop) >= 2 * (
        k + 1
    )  # warm-up and timed windows (the last may be cut short)
    dt = 1.0 / seen["cfg"].engine.control_freq
    want = [
        env.motion_lib.calc_motion_frame(
            env.motion_ids, env.motion_time_s + (i + 1) * dt, bodies=False
        ).dof_pos
        for i in range(k)
    ]
    assert not torch.allclose(want[0], want[-1])  # the clip moves within a window
    for b in range(0, len(loop), k + 1):
        block = loop[b : b + k + 1]
        assert block[0][0] == "reset" and torch.equal(block[0][1], start)
        for i, (kind, targets) in enumerate(block[1:]):
            assert kind == "targets"
            torch.testing.assert_close(targets, want[i].to(targets.dtype))
    with pytest.raises(ValueError, match="needs a clip"):
        measure_clip_ceiling("mujoco", char, EngineSpec(num_envs=1), BenchTask(), seconds=0.01)


def test_cli_motion_adds_the_clip_ceiling_and_trains_on_the_clip(tmp_path, monkeypatch):
    """--motion / --env-config: each row carries the clip ceiling and train / clip ctrl; the loop is built with
    the given clip and env file."""
    from mimictools.app import run as runlib
    from mimictools.paths import bundled_data_dir, bundled_humanoid_xml

    _, squat = _bundled()
    env_file = tmp_path / "env.yaml"
    env_file.write_text((bundled_data_dir() / "configs" / "demo_env.yaml").read_text())
    built = []
    make_runner = runlib.make_runner

    def spy(cfg, spec, *args, **kw):
        built.append((spec.motion_file, spec.num_envs))
        return make_runner(cfg, spec, *args, **kw)

    monkeypatch.setattr(runlib, "make_runner", spy)
    args = ["bench", "--num-envs", "2", "--seconds", "0.2", "--char", str(bundled_humanoid_xml())]
    res = CliRunner().invoke(
        app, args + ["--motion", str(squat), "--env-config", str(env_file), "--train", "--json"]
    )
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["motion"] == str(squat) and doc["env_config"] == str(env_file)
    (row,) = doc["results"]
    assert row["clip_control_steps_per_s"] > 0
    assert row["train_over_clip_control_rate"] == pytest.approx(
        row["samples_per_s"] / row["clip_control_steps_per_s"]
    )
    assert built == [(str(squat.resolve()), 2)]
    res = CliRunner().invoke(app, args + ["--motion", str(squat)])  # the table, without --train
    assert res.exit_code == 0 and "clip control/s" in res.stdout and "samples/s (train)" not in res.stdout
    res = CliRunner().invoke(app, args + ["--env-config", str(env_file)])
    assert res.exit_code == 2 and "add --motion" in res.output
    res = CliRunner().invoke(app, args + ["--motion", str(tmp_path / "missing.pkl")])
    assert res.exit_code == 2 and "missing.pkl: no such file" in res.output
