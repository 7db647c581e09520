"""Robot MJCFs: <include>, PD gains and torque limits from actuators (Menagerie's G1 and synthetic files)."""

from __future__ import annotations

from pathlib import Path

import mujoco
import numpy as np
import pytest

from mimictools.character.mjcf import load_character, load_character_from_string
from mimictools.errors import CharacterError


@pytest.fixture(scope="module")
def g1_dir(shared_dir: Path) -> Path:
    d = shared_dir / "robots" / "unitree_g1"
    if not d.is_dir():
        pytest.skip(f"{d} not found (the shared robot data)")
    return d


def _arm(joint: str = "", actuator: str = "", default: str = "") -> str:
    return f"""<mujoco><compiler angle="radian"/><default>{default}</default><worldbody>
      <body name="root"><freejoint/><geom size="0.1"/>
        <body name="arm" pos="0 0 -0.2"><joint name="elbow" axis="0 1 0" range="-1 1" {joint}/>
          <geom type="capsule" fromto="0 0 0 0 0 -0.3" size="0.04"/></body></body></worldbody>
      <actuator>{actuator}</actuator></mujoco>"""


def test_position_actuator_gains_and_forcerange():
    c = load_character_from_string(
        _arm(actuator='<position joint="elbow" kp="80" kv="3" forcerange="-12 12" gear="2"/>')
    )
    j = c.joints[0]
    # joint torque = gear * (kp * (ctrl - gear q) - kv * gear qdot): kp_joint = kp g^2, limit = 12 g
    assert j.stiffness.tolist() == [320.0] and j.damping.tolist() == [12.0]
    assert j.effort_limit.tolist() == [24.0]
    assert j.gain_source == ("position actuator",)


def test_joint_gains_win_and_motor_gives_a_torque_limit():
    c = load_character_from_string(
        _arm(
            joint='stiffness="50" damping="5"', actuator='<motor joint="elbow" gear="200" ctrlrange="-1 1"/>'
        )
    )
    j = c.joints[0]
    assert j.stiffness.tolist() == [50.0] and j.damping.tolist() == [5.0]
    assert j.effort_limit.tolist() == [200.0] and j.gain_source == ("joint",)


def test_actuatorfrcrange_wins_over_actuator_forcerange_and_defaults_apply():
    c = load_character_from_string(
        _arm(
            joint='actuatorfrcrange="-7 7"',
            actuator='<position class="servo" joint="elbow" forcerange="-30 30"/>',
            default='<default class="servo"><position kp="40" dampratio="1"/></default>',
        )
    )
    j = c.joints[0]
    assert j.stiffness.tolist() == [40.0] and j.damping_ratio.tolist() == [1.0]
    assert j.effort_limit.tolist() == [7.0]


def test_general_affine_actuator_is_a_pd():
    c = load_character_from_string(
        _arm(actuator='<general joint="elbow" gainprm="60" biastype="affine" biasprm="0 -60 -4"/>')
    )
    assert c.joints[0].stiffness.tolist() == [60.0] and c.joints[0].damping.tolist() == [4.0]


def test_no_gains_anywhere_is_recorded_as_none():
    c = load_character_from_string(_arm(actuator='<motor joint="elbow" gear="10"/>'))
    assert c.joints[0].stiffness.tolist() == [0.0] and c.joints[0].gain_source == ("none",)


def test_include_resolves_relative_to_the_including_file(tmp_path: Path):
    (tmp_path / "parts").mkdir()
    (tmp_path / "parts" / "robot.xml").write_text(_arm(actuator='<position joint="elbow" kp="9"/>'))
    scene = tmp_path / "scene.xml"
    scene.write_text(
        '<mujoco model="s"><include file="parts/robot.xml"/>'
        '<worldbody><geom name="floor" type="plane" size="0 0 1"/></worldbody></mujoco>'
    )
    c = load_character(scene)
    assert c.body_names == ("root", "arm") and c.joints[0].stiffness.tolist() == [9.0]


def test_include_cycle_and_missing_file_are_errors(tmp_path: Path):
    a = tmp_path / "a.xml"
    a.write_text('<mujoco><include file="a.xml"/></mujoco>')
    with pytest.raises(CharacterError, match="includes itself"):
        load_character(a)
    b = tmp_path / "b.xml"
    b.write_text('<mujoco><include file="nope.xml"/></mujoco>')
    with pytest.raises(CharacterError, match="nope.xml"):
        load_character(b)
    with pytest.raises(CharacterError, match="load_character"):
        load_character_from_string('<mujoco><include file="x.xml"/></mujoco>')


@pytest.mark.parametrize("name", ["g1.xml", "scene.xml", "g1_mjx.xml", "scene_mjx.xml"])
def test_g1_loads_with_gains_and_limits_matching_mujoco(g1_dir: Path, name: str):
    """Every joint's kp, torque limit and (where the file says kv) kd equal MuJoCo's compiled actuator."""
    c = load_character(g1_dir / name)
    m = mujoco.MjModel.from_xml_path(str(g1_dir / name))
    assert c.num_bodies == 30 and c.num_dofs == 29 and len(c.joints) == 29
    for j in c.joints:
        (name_,) = j.mjcf_joints
        a = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_ACTUATOR, name_)
        jid = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_JOINT, name_)
        assert j.stiffness[0] == pytest.approx(m.actuator_gainprm[a, 0])
        assert j.effort_limit[0] == pytest.approx(m.jnt_actfrcrange[jid, 1])
        if j.damping_ratio[0] == 0:
            assert j.damping[0] == pytest.approx(-m.actuator_biasprm[a, 2])
    assert np.all([j.stiffness[0] > 0 for j in c.joints])
