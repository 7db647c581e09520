"""DeepMimicEnv logic on a kinematic stand-in engine (no physics): resets, obs, reward, done flags.

The physics end-to-end test (MuJoCo) is in test_task_deepmimic_mujoco.py.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from mimictools.config.schema import EnvConfig
from mimictools.engines.base import SimState, set_state
from mimictools.errors import ConfigError
from mimictools.tasks.deepmimic import DeepMimicEnv
from mimictools.tasks.env_api import DoneFlag
from mimictools.tasks.tracking import TRACKING_ERROR_KEYS, compute_tracking_error


@pytest.fixture(scope="module")
def humanoid(shared_dir):
    from mimictools.character.mjcf import load_character

    return load_character(shared_dir / "mimickit/data/assets/humanoid/humanoid.xml")


def _lib(shared_dir, char, clip="humanoid_spinkick.pkl"):
    from mimictools.motion.library import MotionLib

    return MotionLib.from_path(shared_dir / "mimickit/data/motions/humanoid" / clip, char=char)


@pytest.fixture
def make_env(shared_dir, humanoid, kinematic_engine):
    """``make_env(n, clip, **env_config_changes) -> (env, engine)`` on the kinematic stand-in engine."""

    def make(n=4, clip="humanoid_spinkick.pkl", **cfg):
        engine = kinematic_engine(humanoid, n)
        env = DeepMimicEnv(dataclasses.replace(EnvConfig(), **cfg), engine, _lib(shared_dir, humanoid, clip))
        return env, engine

    return make


def test_reset_observation_and_reference_state_init(shared_dir, humanoid, make_env):
    torch.manual_seed(0)
    env, engine = make_env(n=6)
    assert (env.obs_dim, env.action_dim, env.num_envs) == (464, 28, 6)
    obs = env.reset()
    assert obs.shape == (6, 464) and obs.dtype == torch.float32
    assert torch.isfinite(obs).all()
    assert (env.motion_time_offset > 0).all()  # rand_reset: random start times
    # The simulated character starts exactly on the reference.
    errs = compute_tracking_error(env.read_sim_state(), env.ref_state)
    for key in TRACKING_ERROR_KEYS:
        assert errs[key].abs().max() < 1e-5, key


def test_reset_subset_touches_only_those_envs(shared_dir, humanoid, make_env):
    torch.manual_seed(1)
    env, engine = make_env(n=5)
    env.reset()
    env.step(torch.zeros(5, 28))
    env.step(torch.zeros(5, 28))
    before_offset = env.motion_time_offset.clone()
    ids = torch.tensor([1, 3])
    obs = env.reset(ids)
    assert obs.shape == (2, 464)
    # The reset observation equals the one computed from the engine's state after the reset.
    env.sim_state = env.read_sim_state()
    torch.testing.assert_close(
        obs,
        env._obs(
            env.sim_state.index(ids),
            env._ref_frames(
                env.motion_ids[ids], env.motion_time_offset[ids], env.timestep[ids], env._ref_steps
            ).split(env.key_body_ids)[2],
            env.motion_time_s[ids],
            env.motion_ids[ids],
        ),
        atol=1e-5,
        rtol=0,
    )
    assert env.timestep.tolist() == [2, 0, 2, 0, 2]
    keep = torch.tensor([0, 2, 4])
    assert torch.equal(env.motion_time_offset[keep], before_offset[keep])
    assert torch.equal(engine.set_state_calls[-1], ids)
    assert env.reset(torch.zeros(0, dtype=torch.long)).shape == (0, 464)


def test_tracking_the_reference_gives_reward_near_one(shared_dir, humanoid, make_env):
    # A perfect tracker: before each step put the engine on the reference at the next time.
    torch.manual_seed(2)
    env, engine = make_env(n=4)
    env.reset()
    lib = env.motion_lib
    for _ in range(5):
        t = env.motion_time_s + env.control_dt
        f = lib.calc_motion_frame(env.motion_ids, t)
        set_state(
            engine,
            torch.arange(4),
            SimState(f.root_pos, f.root_rot, f.root_vel, f.root_ang_vel, f.dof_pos, f.dof_vel),
        )
        obs, reward, done, info = env.step(f.dof_pos)
        assert torch.isfinite(obs).all()
        torch.testing.assert_close(reward, torch.ones(4), atol=1e-4, rtol=0)
        assert (done == DoneFlag.NULL).all()
        assert set(info) == set(TRACKING_ERROR_KEYS) | {"Nonfinite_Frac"}
        assert info["Body_Pos_Err"].max() < 1e-4
        assert (info["Nonfinite_Frac"] == 0).all()


def test_a_world_whose_physics_blew_up_fails_instead_of_poisoning_the_batch(shared_dir, humanoid, make_env):
    """One non-finite world (seen once in 4096 on MJWarp) ends as FAIL with finite obs and zero reward;
    the other envs are untouched."""
    torch.manual_seed(3)
    env, engine = make_env(n=3)
    env.reset()
    state = engine.get_state()
    state.dof_vel[1, 0] = float("nan")
    set_state(engine, torch.arange(3), state)
    obs, reward, done, info = env.step(env.sim_state.root_pos.new_zeros(3, 28))
    assert torch.isfinite(obs).all() and torch.isfinite(reward).all()
    assert int(done[1]) == DoneFlag.FAIL and float(reward[1]) == 0.0 and (obs[1] == 0).all()
    assert info["Nonfinite_Frac"].tolist() == [0.0, 1.0, 0.0]
    assert all(torch.isfinite(v).all() for v in info.values())
    assert (obs[[0, 2]] != 0).any(dim=-1).all()


def test_time_limit(shared_dir, humanoid, make_env):
    env, engine = make_env(n=2, episode_length=0.2, enable_early_termination=False)
    env.reset()
    flags = [env.step(torch.zeros(2, 28))[2].tolist() for _ in range(6)]
    assert flags == [[0, 0]] * 5 + [[int(DoneFlag.TIME)] * 2]


def test_end_of_clamp_clip_is_success(shared_dir, humanoid, make_env):
    # kick: clamp clip of 46 frames at 30 fps = 1.5 s -> SUCC at step 45 when starting at t = 0.
    env, engine = make_env(n=2, clip="humanoid_kick.pkl", rand_reset=False, enable_early_termination=False)
    env.reset()
    assert (env.motion_time_offset == 0).all()
    length = float(env.motion_lib.motion_length(torch.tensor([0])))
    done_at = None
    for i in range(1, 80):
        done = env.step(torch.zeros(2, 28))[2]
        if (done != 0).any():
            done_at = i
            assert (done == DoneFlag.SUCC).all()
            break
    assert done_at == round(length * 30)


def test_ground_contact_of_a_non_contact_body_fails(shared_dir, humanoid, make_env):
    env, engine = make_env(n=3, pose_termination=False)
    env.reset()
    hand, foot = humanoid.body_index("right_hand"), humanoid.body_index("left_foot")
    engine.forces[0, hand, 2] = 100.0
    engine.forces[1, foot, 2] = 100.0
    done = env.step(torch.zeros(3, 28))[2]
    assert done.tolist() == [int(DoneFlag.FAIL), 0, 0]


def test_actions_are_clipped_to_bounds_before_the_engine(shared_dir, humanoid, make_env):
    env, engine = make_env(n=2)
    env.reset()
    big = torch.full((2, 28), 100.0)
    big[1] = -float("inf")
    env.step(big)
    assert torch.equal(engine.targets[0], env.action_high)
    assert torch.equal(engine.targets[1], env.action_low)


def test_test_mode_can_start_at_time_zero(shared_dir, humanoid, kinematic_engine):
    engine = kinematic_engine(humanoid, 3)
    env = DeepMimicEnv(EnvConfig(), engine, _lib(shared_dir, humanoid), test_rand_reset=False)
    env.set_mode(True)
    env.reset()
    assert (env.motion_time_offset == 0).all()
    env.set_mode(False)
    env.reset()
    assert (env.motion_time_offset > 0).all()


def test_bad_body_names_are_config_errors(shared_dir, humanoid, make_env):
    with pytest.raises(ConfigError, match="key_bodies.*no body named 'hed'"):
        make_env(key_bodies=("hed",))
    with pytest.raises(ConfigError, match="joint_err_w"):
        make_env(joint_err_w=(1.0, 2.0))


@pytest.mark.parametrize(
    "cfg",
    [
        dict(global_obs=False, enable_phase_obs=True),
        dict(enable_tar_obs=False, root_height_obs=False),
        dict(tar_obs_steps=(1, 5), key_bodies=(), contact_bodies=()),
    ],
)
def test_obs_width_matches_obs_dim_for_other_configs(shared_dir, humanoid, cfg, make_env):
    env, engine = make_env(n=3, **cfg)
    obs = env.reset()
    assert obs.shape == (3, env.obs_dim) and torch.isfinite(obs).all()
    obs, reward, done, _ = env.step(torch.zeros(3, 28))
    assert obs.shape == (3, env.obs_dim) and torch.isfinite(obs).all() and torch.isfinite(reward).all()


@pytest.mark.parametrize(
    "clip, cfg",
    [
        ("humanoid_spinkick.pkl", {}),  # tar_obs_steps (1, 2, 3): 3 of 4 frames reused per step
        ("humanoid_kick.pkl", {"tar_obs_steps": (1, 3, 4)}),  # clamp clip, past its end; gaps
        ("humanoid_run.pkl", {"tar_obs_steps": (2, 4)}),  # wrap clip; nothing to reuse
        ("humanoid_spinkick.pkl", {"enable_tar_obs": False}),  # the current frame only
    ],
)
def test_reused_reference_frames_are_bitwise_a_full_evaluation(shared_dir, humanoid, make_env, clip, cfg):
    """``step`` shifts the reference frames of the previous time and evaluates only the new ones; resets
    (by index and by mask) store theirs. After every operation the kept frames and the step's
    observation must equal a full evaluation exactly (frame times count control steps as integers)."""
    torch.manual_seed(4)
    n = 5
    env, engine = make_env(n=n, clip=clip, **cfg)
    gen = torch.Generator().manual_seed(5)

    def check(obs=None):
        full = env._ref_frames(env.motion_ids, env.motion_time_offset, env.timestep, env._ref_steps)
        for name, kept, want in zip(
            type(env._frames)._FIELDS,
            env._frames.fields(),
            full.fields(),
        ):
            assert torch.equal(kept, want), name
        if obs is not None:
            _, _, tar = full.split(env.key_body_ids)
            assert torch.equal(obs, env._obs(env.sim_state, tar, env.motion_time_s, env.motion_ids))

    env.reset()
    check()
    for t in range(60):
        obs, _, done, _ = env.step(0.3 * torch.randn(n, 28, generator=gen))
        check(obs)
        if t % 7 == 3:
            env.reset(torch.tensor([t % n]))
            check()
        if t % 11 == 5:
            mask = torch.rand(n, generator=gen) < 0.5
            env.reset_by_blend = t % 2 == 0  # both ways of writing the reset rows
            env.reset_where(mask, obs)
            check()
    assert env.timestep.max() > 8  # some envs advanced far without resets


def test_training_steps_can_skip_the_tracking_errors(shared_dir, humanoid, make_env):
    """``tracking_errors_in_training=False`` (what the Runner sets): training-mode steps leave the
    tracking errors out of ``info`` and nothing else changes; test-mode steps still compute them."""
    a, _ = make_env(n=3)
    b, _ = make_env(n=3)
    b.tracking_errors_in_training = False
    ids = torch.zeros(3, dtype=torch.long)
    t0 = torch.tensor([0.1, 0.5, 0.9], dtype=torch.float64)
    a.reset(None, motion_ids=ids, start_time_s=t0)
    b.reset(None, motion_ids=ids, start_time_s=t0)
    gen = torch.Generator().manual_seed(6)
    for test in (False, True):
        a.set_mode(test)
        b.set_mode(test)
        for _ in range(3):
            act = 0.3 * torch.randn(3, 28, generator=gen)
            obs_a, rew_a, done_a, info_a = a.step(act)
            obs_b, rew_b, done_b, info_b = b.step(act)
            assert torch.equal(obs_a, obs_b) and torch.equal(rew_a, rew_b) and torch.equal(done_a, done_b)
            assert set(info_a) == set(TRACKING_ERROR_KEYS) | {"Nonfinite_Frac"}
            if test:
                assert set(info_b) == set(info_a)
                for k in info_a:
                    assert torch.equal(info_a[k], info_b[k]), k
            else:
                assert set(info_b) == {"Nonfinite_Frac"}


def test_action_ref_offset_adds_the_reference_one_step_ahead(make_env):
    """action_ref_offset: PD targets = the reference DoFs at the next control step + the (clipped) action; off, the
    action is the target itself (MimicKit). With the kinematic engine (DoFs jump to the targets), zero actions
    then put the character exactly on the reference's DoFs after the step."""
    torch.manual_seed(0)
    env, engine = make_env(n=3, action_ref_offset=True)
    env.reset()
    nxt = env._frames.dof_pos[:, env._ref_steps.tolist().index(1)].clone()
    a = torch.zeros(3, env.action_dim)
    a[:, 0] = 0.1
    env.apply_actions(a)
    torch.testing.assert_close(engine.targets, nxt + a)
    env.apply_actions(torch.zeros(3, env.action_dim))
    env.step_physics()
    env.observe()
    torch.testing.assert_close(engine.state.dof_pos, env._frames.dof_pos[:, 0])  # the reference now

    env, engine = make_env(n=3)
    env.reset()
    env.apply_actions(a)
    torch.testing.assert_close(engine.targets, a)
