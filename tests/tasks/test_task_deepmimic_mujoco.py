"""DeepMimicEnv end to end on the MuJoCo CPU engine with MimicKit's humanoid, configs and clips."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from mimictools.config.schema import EngineConfig, EnvConfig
from mimictools.tasks.env_api import DoneFlag
from mimictools.tasks.tracking import TRACKING_ERROR_KEYS, compute_tracking_error

pytest.importorskip("mujoco")


def _build(shared_dir, env_cfg=None, clip=None, n=8):
    from mimictools.config.load import resolve_data_path
    from mimictools.tasks.deepmimic import build_env

    base = shared_dir / "mimickit"
    env_cfg = env_cfg or EnvConfig()
    motion = (
        resolve_data_path(env_cfg.motion_file, base)
        if clip is None
        else base / "data/motions/humanoid" / clip
    )
    char = resolve_data_path(env_cfg.char_file, base)
    return build_env(env_cfg, EngineConfig(), n, motion_path=motion, char_path=char, device="cpu")


def test_mimickit_yaml_resets_onto_the_reference(shared_dir):
    from mimictools.config.load import load_env_config

    torch.manual_seed(0)
    cfg = load_env_config(shared_dir / "mimickit/configs/deepmimic_humanoid_env.yaml")
    env = _build(shared_dir, cfg)
    try:
        obs = env.reset()
        assert obs.shape == (8, 464) and torch.isfinite(obs).all()
        # Right after reset the engine's state (read back from MuJoCo) is the reference state.
        errs = compute_tracking_error(env.read_sim_state(), env.ref_state)
        for key in TRACKING_ERROR_KEYS:
            assert errs[key].max() < 1e-4, (key, errs[key])
        # Stepping with PD targets = reference poses keeps the character near the reference.
        lib = env.motion_lib
        for _ in range(3):
            f = lib.calc_motion_frame(env.motion_ids, env.motion_time_s + env.control_dt)
            obs, reward, done, info = env.step(f.dof_pos)
            assert obs.shape == (8, 464) and torch.isfinite(obs).all()
            assert torch.isfinite(reward).all() and (reward > 0).all() and (reward <= 1.0 + 1e-6).all()
            assert (done == DoneFlag.NULL).all()
            assert info["Body_Pos_Err"].max() < 0.25
    finally:
        env.close()


def test_tracking_a_calm_clip_gives_reward_near_one(shared_dir):
    torch.manual_seed(1)
    env = _build(shared_dir, clip="humanoid_zombie_walk.pkl")
    try:
        env.reset()
        f = env.motion_lib.calc_motion_frame(env.motion_ids, env.motion_time_s + env.control_dt)
        _, reward, _, info = env.step(f.dof_pos)
        # PD targets = reference lag the reference a little (joint velocities mostly): ~0.97 measured.
        assert reward.mean() > 0.9
        assert info["Root_Pos_Err"].max() < 0.02 and info["Body_Pos_Err"].max() < 0.03
        env.reset()
        _, reward_zero, _, _ = env.step(torch.zeros(8, 28))
        assert reward.mean() > reward_zero.mean() + 0.05
    finally:
        env.close()


def test_a_falling_character_fails_by_ground_contact(shared_dir):
    # Zero PD targets (T-pose, no balance): within 2 s some non-foot body touches the ground.
    torch.manual_seed(2)
    cfg = dataclasses.replace(EnvConfig(), pose_termination=False)
    env = _build(shared_dir, cfg)
    try:
        env.reset()
        failed = torch.zeros(8, dtype=torch.bool)
        for _ in range(60):
            _, _, done, _ = env.step(torch.zeros(8, 28))
            failed |= done == DoneFlag.FAIL
            assert not (done == DoneFlag.TIME).any()
        assert failed.all()
    finally:
        env.close()
