"""``<position dampratio>`` -> kd (`mimictools.engines.pd_gains`): our formula against MuJoCo's own compiled
gains (``-actuator_biasprm[2]`` x gear^2 is MuJoCo's kd for a dampratio actuator), and the same kd in the
MuJoCo simulation model and in the Isaac Gym adapter's DoF properties."""

from __future__ import annotations

from pathlib import Path

import mujoco
import numpy as np
import pytest

from mimictools.character.mjcf import load_character
from mimictools.engines.base import EngineSpec
from mimictools.engines.mjcf_build import build_sim_model
from mimictools.engines.pd_gains import damping_from_ratio, reflected_inertia, resolve_damping_ratios

SPEC = EngineSpec(num_envs=1, control_freq=30, sim_freq=240, control_mode="pos", device="cpu", num_threads=1)

# A floating base with a geared, off-axis two-link arm: the reflected inertia of the shoulder differs from its
# M diagonal (the base swings back), a gear of 3 and an armature are in play, and the elbow uses kv instead.
ARM_XML = """<mujoco>
  <worldbody><body name="base" pos="0 0 1"><freejoint/><geom type="box" size="0.2 0.1 0.1" mass="4"/>
    <body name="upper" pos="0.2 0 0"><joint name="shoulder" axis="0 1 0" armature="0.02"/>
      <geom type="capsule" fromto="0 0 0 0.3 0 0" size="0.04" mass="1.5"/>
      <body name="lower" pos="0.3 0 0"><joint name="elbow" axis="0 0 1" armature="0.01"/>
        <geom type="capsule" fromto="0 0 0 0.25 0 0.05" size="0.03" mass="0.7"/></body></body></body>
  </worldbody>
  <actuator>
    <position joint="shoulder" kp="40" dampratio="0.8" gear="3"/>
    <position joint="elbow" kp="30" kv="2"/>
  </actuator>
</mujoco>"""


def _mujoco_kd(path: Path) -> dict:
    """MuJoCo's own joint-space kd per joint: -biasprm[2] * gear^2 of the compiled model."""
    model = mujoco.MjModel.from_xml_path(str(path))
    out = {}
    for a in range(model.nu):
        name = mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_JOINT, int(model.actuator_trnid[a, 0]))
        gear = float(model.actuator_gear[a, 0])
        out[name] = -float(model.actuator_biasprm[a, 2]) * gear * gear
    return out


def _our_kd(char) -> dict:
    return {n: float(j.damping[k]) for j in char.joints for k, n in enumerate(j.mjcf_joints)}


def test_small_model_matches_mujoco_and_is_not_the_m_diagonal(tmp_path: Path):
    xml = tmp_path / "arm.xml"
    xml.write_text(ARM_XML)
    char = load_character(xml)
    assert char.joints[0].damping_ratio is not None and char.joints[0].damping_ratio[0] == 0.8
    ours = _our_kd(resolve_damping_ratios(char))
    theirs = _mujoco_kd(xml)
    assert ours["shoulder"] == pytest.approx(theirs["shoulder"], rel=1e-12)
    # kv given: kept as it is
    assert ours["elbow"] == 2.0 and theirs["elbow"] == pytest.approx(2.0, rel=1e-12)
    # the reflected inertia is not the diagonal of M: with M_jj the kd would be visibly larger
    model = mujoco.MjModel.from_xml_path(str(xml))
    m_diag = float(model.dof_M0[6])
    assert reflected_inertia(char)["shoulder"] < 0.9 * m_diag
    wrong = damping_from_ratio(40.0 * 9.0, 0.8, m_diag)
    assert wrong > 1.05 * theirs["shoulder"]


@pytest.mark.parametrize("name", ["g1.xml", "scene.xml"])
def test_g1_dampratio_gains_match_mujoco_for_every_joint(shared_dir: Path, name: str):
    """All 29 G1 joints (kp 500 / dampratio 1 in Menagerie's g1.xml): ours vs MuJoCo's, to 1e-9 relative."""
    path = shared_dir / "robots" / "unitree_g1" / name
    if not path.is_file():
        pytest.skip(f"{path} not found (shared robot data)")
    char = load_character(path)
    assert sum(int(np.sum(j.damping_ratio > 0)) for j in char.joints if j.damping_ratio is not None) == 29
    ours, theirs = _our_kd(resolve_damping_ratios(char)), _mujoco_kd(path)
    assert set(ours) == set(theirs)
    for joint, kd in theirs.items():
        assert ours[joint] == pytest.approx(kd, rel=1e-9), joint
    # the MuJoCo simulation model uses the same kd
    sim = build_sim_model(char, SPEC)
    np.testing.assert_allclose(sim.kd, [theirs[n] for n in char.dof_names], rtol=1e-9)


def test_isaacgym_dof_properties_get_mujocos_kd(shared_dir: Path):
    """The Isaac Gym adapter's drive damping for the G1 (no isaacgym needed: a pure function)."""
    from mimictools.engines.isaacgym import dof_properties

    path = shared_dir / "robots" / "unitree_g1" / "g1.xml"
    if not path.is_file():
        pytest.skip(f"{path} not found (shared robot data)")
    char = load_character(path)
    gym_names = list(reversed(char.dof_names))  # Isaac Gym's order need not be ours
    props = dof_properties(char, gym_names)
    theirs = _mujoco_kd(path)
    np.testing.assert_allclose(props["damping"], [theirs[n] for n in gym_names], rtol=1e-6)  # float32
    assert np.all(props["damping"] > 0)
    np.testing.assert_allclose(props["stiffness"], 500.0)


def test_no_pending_ratio_is_a_no_op(humanoid):
    """MimicKit's humanoid has joint stiffness/damping: nothing to resolve, nothing compiled."""
    assert resolve_damping_ratios(humanoid) is humanoid
