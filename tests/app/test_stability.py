"""The physics stability probe that `mimic train` runs before training (`mimictools.app.stability`)."""

from __future__ import annotations

import pytest
import torch

from mimictools.app.run import resolve_run
from mimictools.app.stability import SPEED_LIMIT_RAD_S, PhysicsWatch, StabilityProbe, probe_stability

pytest.importorskip("mujoco")


def _probe(sim_freq: int, **kw):
    cfg, spec = resolve_run(overrides=[f"engine.sim_freq={sim_freq}"])  # the bundled demo
    return probe_stability(cfg.env, cfg.engine, spec.motion_file, spec.char_file, **kw)


def test_bundled_humanoid_is_stable_at_240_hz_and_blows_up_at_60():
    """Measured 2026-11-24: ~28 rad/s at 240 Hz, ~71 at 120 Hz, ~3e7 at 60 Hz (explicit PD, too coarse a step);
    the bundled demo clip (a squat), not the spinkick."""
    fine = _probe(240)
    assert fine.stable and 1.0 < fine.max_speed_rad_s < SPEED_LIMIT_RAD_S  # it moved, within human speeds
    assert "stable at 240 Hz" in fine.message()
    coarse = _probe(60)
    assert not coarse.stable and coarse.max_speed_rad_s > 10 * SPEED_LIMIT_RAD_S
    msg = coarse.message()
    assert "UNSTABLE at 60 Hz" in msg
    # the advice names a rate that was probed and found stable, never the rate already set
    assert coarse.higher and coarse.higher[-1].stable and coarse.higher[-1].sim_freq > 60
    assert f"engine.sim_freq={coarse.higher[-1].sim_freq:g}" in msg and "engine.sim_freq=60" not in msg


def test_mujoco_resets_make_a_probe_unstable_whatever_the_speed():
    probe = StabilityProbe(240.0, 50.0, unstable_steps=3, env_steps=2000)  # > 1e-3 of the env-steps
    assert StabilityProbe(240.0, 50.0, unstable_steps=2, env_steps=9600).stable  # rare: tolerated
    assert not probe.stable and "3 MuJoCo instability resets" in probe.message()
    assert "engine.sim_freq=240" not in probe.message()


def test_advice_follows_from_the_probes():
    """Each branch of the advice names only what was measured: a doubled rate that was probed stable, or (when
    every doubled rate up to `MAX_ADVICE_HZ` blew up too, or none could be probed) no rate at all."""
    from mimictools.app.stability import MAX_ADVICE_HZ

    blown = dict(max_speed_rad_s=5e6, env_steps=2400)
    p240, p480 = StabilityProbe(240.0, **blown), StabilityProbe(480.0, **blown)
    ok960 = StabilityProbe(960.0, 40.0, env_steps=2400)
    msg = StabilityProbe(120.0, **blown, higher=(p240, p480, ok960)).message()
    assert "It is stable at 960 Hz" in msg and "--set engine.sim_freq=960" in msg
    assert "sim_freq=120" not in msg and "sim_freq=240" not in msg and "sim_freq=480" not in msg
    msg = StabilityProbe(240.0, **blown, higher=(p480, StabilityProbe(960.0, **blown))).message()
    assert "unstable at 480, 960 Hz too" in msg and "engine.sim_freq=" not in msg and "joint_gains" in msg
    top = StabilityProbe(MAX_ADVICE_HZ, **blown)  # nothing above it was probed: no rate to advise
    assert "engine.sim_freq=" not in top.message() and "PD gains" in top.message()
    assert "stable at 240 Hz" in StabilityProbe(240.0, 40.0, env_steps=2400).message()


def test_physics_watch_warns_once_and_sums():
    class FakeEngine:
        counts = [5, 0, 2, 4]  # the first read (at construction) is the probe's, not the run's

        def unstable_steps(self, reset=False):
            return self.counts.pop(0)

    class FakeEnv:  # MuJoCo Warp's case is the env's speed counter alone
        engine = FakeEngine()
        counts = [9, 0, 0, 3]

        def unstable_speed_steps(self, reset=False):
            return self.counts.pop(0)

    lines = []
    watch = PhysicsWatch(FakeEnv(), 120, lines.append)
    seen = []
    update = watch.wrap(seen.append)
    for it in range(3):
        update(type("Rep", (), {"iteration": it})())
    assert len(seen) == 3 and len(lines) == 1
    assert "120 Hz" in lines[0] and "2 env-steps with NaN/Inf/huge" in lines[0] and "iteration 1" in lines[0]
    assert "above 200 rad/s" not in lines[0]
    assert watch.total == 9 and (watch.total_speed, watch.total_resets) == (3, 6)
    assert (
        "3 env-steps with joint speeds above 200 rad/s" in watch.summary()
        and "6 env-steps" in watch.summary()
    )
    assert PhysicsWatch(object(), 240, lines.append).summary() is None  # envs/engines without a counter


def test_env_counts_blown_up_speeds_on_the_device_and_the_watch_reads_them():
    """The env's own check (the one MuJoCo Warp relies on: it has no instability warning), run here on the
    CPU MuJoCo engine through the same `observe` path: an env teleported to 500 rad/s on one joint, or to
    NaN speeds, counts once per env-step; stable envs count nothing."""
    from dataclasses import replace as dc_replace

    from mimictools.tasks.deepmimic import build_env

    cfg, spec = resolve_run()  # the bundled demo
    env = build_env(
        cfg.env, cfg.engine, num_envs=3, motion_path=spec.motion_file, char_path=spec.char_file, device="cpu"
    )
    try:
        env.reset()
        env.step(torch.zeros(3, env.action_dim) + (env.action_low + env.action_high) / 2)
        assert env.unstable_speed_steps(reset=True) == 0
        s = env.engine.get_state()
        dof_vel = s.dof_vel.clone()
        dof_vel[1, 4] = 500.0  # rad/s
        env.engine.set_state_where(torch.tensor([False, True, False]), dc_replace(s, dof_vel=dof_vel))
        watch = PhysicsWatch(env, 240, lambda m: None)  # clears the count
        env.engine.set_state_where(torch.tensor([False, True, False]), dc_replace(s, dof_vel=dof_vel))
        env.observe()  # what the step reads after the physics
        assert env.unstable_speed_steps() == 1
        watch.check(0)
        assert watch.total_speed == 1 and env.unstable_speed_steps() == 0
    finally:
        env.close()


def test_probe_leaves_the_global_rng_alone():
    torch.manual_seed(123)
    want = torch.rand(3)
    torch.manual_seed(123)
    _probe(240, num_envs=2, steps=5)
    torch.testing.assert_close(torch.rand(3), want)


@pytest.mark.parametrize("implicit_pd", ["false", "true"])
def test_mimickit_humanoid_spinkick_is_stable_at_120_hz(shared_dir, implicit_pd):
    """MimicKit's humanoid, spinkick and env config at Isaac Gym's 120 Hz. Measured 2026-12-07 (64 envs x 150
    steps): 3.7 M rad/s before the gimbal-lock fix of reference-state resets (`kinematics.solve_triple_rates`:
    the right hip's exact hinge rates at 0.5 deg from the lock were 1,176 rad/s), 99 (explicit) and 114
    (stable PD) rad/s after it, with no MuJoCo resets."""
    mk = shared_dir / "mimickit"
    cfg, spec = resolve_run(
        motion=mk / "data/motions/humanoid/humanoid_spinkick.pkl",
        char=mk / "data/assets/humanoid/humanoid.xml",
        env_config=mk / "configs/deepmimic_humanoid_env.yaml",
        agent_config=mk / "configs/deepmimic_humanoid_ppo_agent.yaml",
        overrides=["engine.sim_freq=120", "engine.control_freq=30", f"engine.implicit_pd={implicit_pd}"],
    )
    probe = probe_stability(
        cfg.env, cfg.engine, spec.motion_file, spec.char_file, num_envs=64, steps=150, try_higher=False
    )
    assert probe.stable and probe.unstable_steps == 0, probe.message()
