"""joint_gains overrides (character/gains.py) and the zero-gain error they fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from mimictools.character.gains import apply_joint_gains, parse_joint_gain
from mimictools.character.mjcf import load_character_from_string
from mimictools.errors import ConfigError

XML = """<mujoco><worldbody><body name="root"><freejoint/><geom size="0.1"/>
  <body name="a"><joint name="left_knee" axis="0 1 0"/><geom size="0.05"/>
    <body name="b"><joint name="right_knee" axis="0 1 0" stiffness="10" damping="1"/><geom size="0.05"/></body>
  </body></body></worldbody></mujoco>"""


def test_patterns_apply_in_order_and_set_limits():
    c = load_character_from_string(XML)
    assert c.joints[0].gain_source == ("none",)
    g = apply_joint_gains(c, ["*_knee: 100 5", "right_*: 40 2 30"])
    assert g.joints[0].stiffness.tolist() == [100.0] and g.joints[0].damping.tolist() == [5.0]
    assert g.joints[1].stiffness.tolist() == [40.0] and g.joints[1].effort_limit.tolist() == [30.0]
    assert g.joints[0].gain_source == ("override",) and c.joints[0].stiffness.tolist() == [0.0]


@pytest.mark.parametrize("bad", ["knee 100 5", "*: 100", "*: -1 2", "*: a b"])
def test_malformed_entries_are_config_errors(bad: str):
    with pytest.raises(ConfigError, match="joint_gains entry"):
        parse_joint_gain(bad)


def test_pattern_matching_nothing_is_an_error():
    with pytest.raises(ConfigError, match="matches no joint.*left_knee, right_knee"):
        apply_joint_gains(load_character_from_string(XML), ["*elbow*: 1 1"])


def test_override_lets_a_gainless_mjcf_build(tmp_path: Path):
    pytest.importorskip("mujoco")
    from mimictools.character.mjcf import load_character
    from mimictools.engines.base import EngineSpec
    from mimictools.engines.mjcf_build import build_sim_model

    xml = tmp_path / "c.xml"
    xml.write_text(XML)
    spec = EngineSpec(
        num_envs=1, control_freq=30, sim_freq=240, control_mode="pos", device="cpu", num_threads=1
    )
    sim = build_sim_model(apply_joint_gains(load_character(xml), ["left_knee: 50 3"]), spec)
    assert sim.kp.tolist() == [50.0, 10.0] and sim.kd.tolist() == [3.0, 1.0]
