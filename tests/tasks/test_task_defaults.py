"""Task defaults fitted to the character (tasks/defaults.py) and how a run resolves them (run.resolve_run)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mimictools.character.mjcf import load_character
from mimictools.config.schema import EnvConfig
from mimictools.errors import ConfigError
from mimictools.tasks.defaults import fit_env_to_character


def test_g1_gets_feet_hands_torso_and_a_rest_pose(g1_xml: Path):
    g1 = load_character(g1_xml)
    env, notes = fit_env_to_character(EnvConfig(), g1)
    assert env.contact_bodies == ("left_ankle_roll_link", "right_ankle_roll_link")
    assert set(env.key_bodies) == {
        "left_ankle_roll_link",
        "right_ankle_roll_link",
        "left_wrist_yaw_link",
        "right_wrist_yaw_link",
        "torso_link",
    }
    assert env.joint_err_w == (1.0,) * 29
    assert len(env.init_pose) == 35 and env.init_pose[:3] == pytest.approx((0.0, 0.0, 0.793))
    assert len(notes) == 4 and any("contact_bodies" in n for n in notes)


def test_mimickit_humanoid_keeps_mimickit_values(shared_dir: Path):
    hum = load_character(shared_dir / "mimickit/data/assets/humanoid/humanoid.xml")
    env, notes = fit_env_to_character(EnvConfig(), hum)
    assert env == EnvConfig() and notes == []


def test_named_values_are_kept_and_a_wrong_init_pose_is_an_error(g1_xml: Path):
    g1 = load_character(g1_xml)
    env, notes = fit_env_to_character(EnvConfig(), g1, ["key_bodies=[head]", "env.contact_bodies=[]"])
    assert env.key_bodies == EnvConfig().key_bodies  # named by the user: kept (and refused later by the env)
    assert env.contact_bodies == EnvConfig().contact_bodies
    with pytest.raises(ConfigError, match="init_pose has 34 values.*needs 3 .* or 35"):
        fit_env_to_character(EnvConfig(), g1, ["init_pose=[...]"])


def test_resolve_run_records_files_and_reports_defaults(g1_xml: Path, shared_dir: Path):
    from mimictools.app import run as runlib

    clip = shared_dir / "robots/motions/g1_moves/B_HandsUp/B_HandsUp.npz"
    lines = []
    cfg, spec = runlib.resolve_run(motion=clip, char=g1_xml, report=lines.append)
    assert cfg.env.char_file == spec.char_file == str(g1_xml.resolve())
    assert cfg.env.motion_file == spec.motion_file == str(clip.resolve())
    assert len(lines) == 4 and cfg.env.contact_bodies == ("left_ankle_roll_link", "right_ankle_roll_link")
